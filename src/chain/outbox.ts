// Crash-safe transaction sending (docs/protocol.md#node-state "tx outbox"). Order of events for every tx the node sends:
//   1. under a lock, pick the nonce: one past the highest the outbox ever stored, or the chain's pending count
//      if that is higher (the key was used elsewhere);
//   2. estimate and sign; a revert at estimation throws here, before any nonce is spent;
//   3. store the signed raw tx (and its blobs) in SQLite with synchronous=FULL, then release the lock;
//   4. broadcast. A crash between 3 and 4 leaves a signed row that `start()` rebroadcasts: no nonce is reused
//      (the store remembers it) and none is skipped (the stored tx fills it).
// `tick(head)` (run by the chain watcher's loop) then tracks receipts, rebroadcasts txs the node forgot (an RPC
// restart empties its pool), replaces txs stuck `bumpAfterBlocks` blocks with higher fees and the same nonce
// (geth: +10% for plain txs; its blob pool wants 2× on every fee cap, which is what blob txs get), and puts a
// mined tx back to pending when a reorg takes its block away (a mined tx whose nonce the chain has not reached is
// rechecked however deep it lies). A tx put back by a reorg, or forgotten by the node, is simulated before it is
// broadcast again: the txs it depended on (another node's request that a fulfil answers, the fulfil a confirm
// follows) are being replayed by their own senders, in no set order, and replaying it first would only make it
// revert. It is held (with every later nonce of the key) until it would succeed, for at most `reorgDepth` blocks (and
// `bumpAfterBlocks` polls); then it is sent anyway, so that a precondition that never comes back does not block the key
// for good. A confirmation lost that way is sent again by its node once the answer is back (node.confirmAgainIfLost).
// Blob txs are stored in the network wrapper the mempool takes (v1 with cell proofs since Osaka, v0 before;
// docs/protocol.md#blob-transactions) with its version; an open one whose version the network no longer takes is
// re-wrapped in place before it is broadcast again (same canonical tx, same hash, no key needed).
import {
  BaseError,
  ExecutionRevertedError,
  InsufficientFundsError,
  TransactionReceiptNotFoundError,
  TransactionNotFoundError,
  bytesToHex,
  concatBytes,
  hexToBytes,
  keccak256,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import type { Logger } from 'pino'
import { KeymanagerError } from '../errors.ts'
import type { OutboxEntry, OutboxParams, OutboxStore } from '../store/outbox.ts'
import { revertReason } from './blobs.ts'
import { keyManagerAbi } from './keyManagerArtifact.ts'
import { blobToCommitment, commitmentToVersionedHash } from './kzg.ts'
import { BYTES_PER_BLOB, buildBlobSidecars, signBlobTransaction, unwrapBlobTransaction, wrapBlobTransaction } from './blobTransaction.ts'
import { sidecarVersionSource, type SidecarVersionSource } from './hardfork.ts'

export type OutboxReceipt = { id: number; hash: Hex; blockNumber: bigint; status: 'success' | 'reverted' }

export type OutboxOptions = {
  walletClient: WalletClient<Transport, Chain, Account>
  publicClient: PublicClient
  store: OutboxStore
  logger: Logger
  now(): number
  /** Blocks a broadcast tx may wait before it is replaced with higher fees. Default 3. */
  bumpAfterBlocks?: number
  /** How deep below the head mined txs are re-checked against reorgs. Default 12. */
  reorgDepth?: number
  /** Receipt polling interval. Default 250 ms. */
  pollIntervalMs?: number
  /** Which blob sidecar the mempool takes (v0 or v1). Default: discovered from `publicClient` (src/chain/hardfork.ts). */
  sidecarVersion?: SidecarVersionSource
  /**
   * Fee caps (host settings `fees`, docs/protocol.md#blob-transactions): no tx is signed, and no fee bump goes, above
   * these max fee per gas and max fee per blob gas, in wei. A tx capped below the market waits in the pool.
   */
  feeCaps?: FeeCaps
  /** Test hook (devnet only): called after a signed tx is stored and before it is broadcast. */
  afterPersist?: (entry: { id: number; nonce: number; label: string }) => void
  /**
   * Test hook (devnet crash tests, src/node/killPoints.ts): called right after each durable step of a tx, with
   * `tx.<label>.stored` (signed and stored, before its first broadcast), `tx.<label>.sent` (marked broadcast) and
   * `tx.<label>.mined` (its receipt recorded).
   */
  killPoint?: (point: string, detail?: Record<string, unknown>) => void
}

export type FeeCaps = { maxFeePerGas?: bigint | undefined; maxFeePerBlobGas?: bigint | undefined }

/** Blob gas of one blob (EIP-4844 GAS_PER_BLOB). */
const GAS_PER_BLOB = 131072n

const min = (a: bigint, b: bigint | undefined) => (b !== undefined && b < a ? b : a)

function ceilMul(value: bigint, num: bigint, den: bigint): bigint {
  return (value * num + den - 1n) / den
}

function isRevert(error: unknown): boolean {
  return error instanceof BaseError && Boolean(error.walk((e) => e instanceof ExecutionRevertedError))
}

function rpcMessage(error: unknown): string {
  const e = error as { details?: string; shortMessage?: string; message?: string }
  return String(e.details ?? e.shortMessage ?? e.message ?? error).toLowerCase()
}

export function createOutbox(options: OutboxOptions) {
  const { walletClient, publicClient, store, logger } = options
  const account = walletClient.account
  if (account.type !== 'local') throw new TypeError('the outbox signs in process: walletClient needs a local account (the gas key)')
  const bumpAfter = BigInt(options.bumpAfterBlocks ?? 3)
  const reorgDepth = BigInt(options.reorgDepth ?? 12)
  const pollMs = options.pollIntervalMs ?? 250
  const sidecarVersion = options.sidecarVersion ?? sidecarVersionSource(publicClient)
  const caps = options.feeCaps ?? {}
  /** Entries whose fee bump the caps stopped (logged once each). */
  const capped = new Set<number>()
  let lock: Promise<unknown> = Promise.resolve()
  /**
   * Txs to send again that are held back because they would revert now: outbox id → the head when the hold began and
   * the ticks since. A hold ends after `holdBlocks` blocks *and* `bumpAfter` ticks: a block count alone can pass in one
   * tick (a devnet mining a burst of blocks, a node polling after a pause), before the senders of the txs it follows
   * had a poll of their own to replay them in.
   */
  const held = new Map<number, { since: bigint; ticks: number }>()
  /** Blocks a replayed tx waits for the txs it follows: as deep as mined txs are rechecked, never less than a fee bump. */
  const holdBlocks = reorgDepth > bumpAfter ? reorgDepth : bumpAfter
  /** Sent txs whose nonce the chain shows used with no receipt of ours: outbox id → the head when first seen so. */
  const nonceUsedAt = new Map<number, bigint>()

  /** Runs `fn` after every earlier locked call: nonce assignment and signing are strictly sequential. */
  function locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = lock.then(fn, fn)
    lock = run.catch(() => undefined)
    return run
  }

  function blobsOf(entry: { blobs: Uint8Array | null }): Hex[] | undefined {
    if (!entry.blobs) return undefined
    const out: Hex[] = []
    for (let i = 0; i < entry.blobs.length; i += BYTES_PER_BLOB) out.push(bytesToHex(entry.blobs.subarray(i, i + BYTES_PER_BLOB)))
    return out
  }

  /**
   * Signs `params` at `nonce`: the raw tx to broadcast and its hash. A blob tx goes out in the network form the
   * mempool takes now (v1 cell proofs since Osaka, docs/protocol.md#blob-transactions); its hash is the canonical tx's.
   */
  async function sign(params: OutboxParams, nonce: number, blobs: Hex[] | undefined): Promise<{ rawTx: Hex; hash: Hex; sidecarVersion: number | null }> {
    const base = {
      chainId: params.chainId,
      to: params.to,
      data: params.data,
      nonce,
      gas: BigInt(params.gas),
      maxFeePerGas: BigInt(params.maxFeePerGas),
      maxPriorityFeePerGas: BigInt(params.maxPriorityFeePerGas),
    }
    if (!blobs) {
      const rawTx = await account.signTransaction!({ ...base, type: 'eip1559' })
      return { rawTx, hash: keccak256(rawTx), sidecarVersion: null }
    }
    const version = await sidecarVersion.current()
    const sidecars = buildBlobSidecars(blobs, version)
    const { raw, hash } = await signBlobTransaction(account as LocalAccount, { ...base, maxFeePerBlobGas: BigInt(params.maxFeePerBlobGas!) }, sidecars)
    return { rawTx: raw, hash, sidecarVersion: version }
  }

  /**
   * A stored blob tx whose wrapper the mempool no longer takes (signed as v0 before Osaka, or stored by an older build)
   * is re-wrapped in place: same canonical tx, same hash, new sidecar; no key needed.
   */
  async function upgradeWrapper(entry: OutboxEntry): Promise<OutboxEntry> {
    if (entry.blobs === null || entry.sidecarVersion === null) return entry
    const version = await sidecarVersion.current()
    if (entry.sidecarVersion === version) return entry
    const { canonical, hash, sidecars } = unwrapBlobTransaction(entry.rawTx)
    const rawTx = wrapBlobTransaction(canonical, buildBlobSidecars(sidecars.blobs, version))
    store.rewrap(entry.id, rawTx, version, options.now())
    logger.info({ outboxId: entry.id, nonce: entry.nonce, label: entry.label, hash, from: entry.sidecarVersion, to: version }, 'blob transaction re-wrapped for the current sidecar version')
    return { ...entry, rawTx, sidecarVersion: version }
  }

  /** The versioned hashes a stored blob tx carries, read from its wrapper (no KZG work). */
  function versionedHashesOf(entry: OutboxEntry): Hex[] {
    return unwrapBlobTransaction(entry.rawTx).sidecars.versionedHashes
  }

  /** Broadcasts a stored tx; true when the node has it (or already mined its nonce). */
  async function broadcast(entry: Pick<OutboxEntry, 'id' | 'rawTx' | 'nonce' | 'label'>): Promise<boolean> {
    try {
      await publicClient.request({ method: 'eth_sendRawTransaction', params: [entry.rawTx] })
      return true
    } catch (error) {
      const message = rpcMessage(error)
      if (/already known|known transaction|already imported|already exists/.test(message)) return true
      if (/nonce too low|nonce has already been used/.test(message)) return true
      logger.warn({ outboxId: entry.id, nonce: entry.nonce, label: entry.label, error: message.slice(0, 200) }, 'broadcast failed; the tx stays in the outbox')
      return false
    }
  }

  async function findReceipt(entry: OutboxEntry) {
    for (const hash of entry.txHashes.toReversed()) {
      try {
        const receipt = await publicClient.getTransactionReceipt({ hash })
        return receipt
      } catch (error) {
        if (!(error instanceof TransactionReceiptNotFoundError)) throw error
      }
    }
    return undefined
  }

  async function checkMined(entry: OutboxEntry): Promise<OutboxReceipt | undefined> {
    const receipt = await findReceipt(entry)
    if (!receipt) return undefined
    store.markMined(entry.id, { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash, status: receipt.status }, options.now())
    options.killPoint?.(`tx.${entry.label}.mined`, { outboxId: entry.id, nonce: entry.nonce })
    if (receipt.status === 'reverted') logger.warn({ outboxId: entry.id, label: entry.label, hash: receipt.transactionHash }, 'transaction reverted')
    return { id: entry.id, hash: receipt.transactionHash, blockNumber: receipt.blockNumber, status: receipt.status }
  }

  /** Assigns a nonce, signs, stores and broadcasts. Resolves once the tx is stored and (if possible) broadcast. */
  async function send(request: { label: string; to: Address; data: Hex; blobs?: readonly Hex[] | undefined }): Promise<{ id: number; hash: Hex }> {
    const blobs = request.blobs ? [...request.blobs] : undefined
    const signed = await locked(async () => {
      // The reads that do not depend on each other go out together: a send is a few round trips to the RPC, not one
      // per read (a helper's freshness mark races the chain's next blocks). The head is read before broadcasting.
      const [chainNonce, estimated, blobBaseFee, balance, head] = await Promise.all([
        publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }),
        publicClient.estimateFeesPerGas(),
        blobs ? publicClient.getBlobBaseFee() : undefined,
        publicClient.getBalance({ address: account.address }),
        publicClient.getBlockNumber({ cacheTime: 0 }).catch(() => 0n),
      ])
      const nonce = store.nextNonce(account.address, chainNonce)
      const maxFeePerGas = min(estimated.maxFeePerGas, caps.maxFeePerGas)
      const fees = { maxFeePerGas, maxPriorityFeePerGas: min(estimated.maxPriorityFeePerGas, maxFeePerGas) }
      const maxFeePerBlobGas = blobBaseFee === undefined ? undefined : min(2n * blobBaseFee, caps.maxFeePerBlobGas)
      // Gas estimation needs only the versioned hashes (commitments); proofs are made once, when signing.
      const blobVersionedHashes = blobs?.map((blob) => bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob)))))
      let gas: bigint
      try {
        gas = await publicClient.estimateGas({
          account: account.address,
          to: request.to,
          data: request.data,
          ...(blobVersionedHashes ? { blobVersionedHashes, maxFeePerBlobGas } : {}),
        } as never)
      } catch (error) {
        if (isRevert(error))
          throw new KeymanagerError('upstream_failed', `${request.label} would revert: ${revertReason(error, keyManagerAbi)}`, { cause: error })
        // Nodes check the balance when they estimate: the same refusal as below, with what is known before the gas.
        if (error instanceof BaseError && error.walk((e) => e instanceof InsufficientFundsError)) {
          throw new KeymanagerError(
            'conflict',
            `the gas key ${account.address} holds ${balance} wei; ${request.label} cannot pay its gas at max fee ${fees.maxFeePerGas}${blobs ? ` and blob gas ${BigInt(blobs.length) * GAS_PER_BLOB} × max blob fee ${maxFeePerBlobGas}` : ''} (the RPC refused to estimate it): fund it, nothing was sent`,
            { cause: error },
          )
        }
        throw error
      }
      // Before anything is signed: a key that cannot pay the worst case of this tx says so (docs/protocol.md#blob-transactions).
      const worstCase = ceilMul(gas, 6n, 5n) * fees.maxFeePerGas + (blobs ? BigInt(blobs.length) * GAS_PER_BLOB * maxFeePerBlobGas! : 0n)
      if (balance < worstCase)
        throw new KeymanagerError(
          'conflict',
          `the gas key ${account.address} holds ${balance} wei; ${request.label} may cost up to ${worstCase} wei (gas ${ceilMul(gas, 6n, 5n)} × max fee ${fees.maxFeePerGas}${blobs ? ` + blob gas ${BigInt(blobs.length) * GAS_PER_BLOB} × max blob fee ${maxFeePerBlobGas}` : ''}): fund it, nothing was sent`,
        )
      const params: OutboxParams = {
        chainId: walletClient.chain.id,
        to: request.to,
        data: request.data,
        gas: ceilMul(gas, 6n, 5n).toString(),
        maxFeePerGas: fees.maxFeePerGas.toString(),
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString(),
        ...(maxFeePerBlobGas !== undefined ? { maxFeePerBlobGas: maxFeePerBlobGas.toString() } : {}),
      }
      const { rawTx, hash, sidecarVersion: version } = await sign(params, nonce, blobs)
      const id = store.insert({
        account: account.address,
        nonce,
        label: request.label,
        params,
        blobs: blobs ? concatBytes(blobs.map((b) => hexToBytes(b))) : null,
        rawTx,
        sidecarVersion: version,
        txHash: hash,
        now: options.now(),
      })
      return { id, nonce, rawTx, hash, head }
    })
    options.afterPersist?.({ id: signed.id, nonce: signed.nonce, label: request.label })
    options.killPoint?.(`tx.${request.label}.stored`, { outboxId: signed.id, nonce: signed.nonce })
    if (await broadcast({ id: signed.id, rawTx: signed.rawTx, nonce: signed.nonce, label: request.label })) {
      store.markSent(signed.id, signed.head, options.now())
      options.killPoint?.(`tx.${request.label}.sent`, { outboxId: signed.id, nonce: signed.nonce })
    }
    logger.info({ outboxId: signed.id, nonce: signed.nonce, label: request.label, hash: signed.hash }, 'transaction sent')
    return { id: signed.id, hash: signed.hash }
  }

  /** Waits until the stored tx (or a replacement of it) is mined. A timeout leaves it in the outbox. */
  async function waitForReceipt(id: number, timeoutMs = 120_000): Promise<OutboxReceipt> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const entry = store.get(id)
      if (!entry) throw new Error(`outbox entry ${id} does not exist`)
      if (entry.status === 'mined')
        return { id, hash: entry.minedHash!, blockNumber: entry.minedBlock!, status: entry.receiptStatus ?? 'success' }
      if (entry.status === 'dropped') throw new KeymanagerError('upstream_failed', `transaction ${entry.label} (nonce ${entry.nonce}) was dropped`)
      const mined = await checkMined(entry).catch(() => undefined)
      if (mined) return mined
      if (Date.now() > deadline)
        throw new KeymanagerError('upstream_failed', `transaction ${entry.txHashes.at(-1)} not mined within ${timeoutMs} ms; it stays in the outbox`)
      await new Promise((r) => setTimeout(r, pollMs))
    }
  }

  /** Replaces a stuck tx: same nonce, higher fees; stored before it is broadcast, like a first send. */
  async function bump(entry: OutboxEntry, head: bigint) {
    const isBlob = entry.blobs !== null
    const fees = await publicClient.estimateFeesPerGas()
    const [num, den] = isBlob ? [2n, 1n] : [11n, 10n]
    const needed = (old: string) => ceilMul(BigInt(old), num, den) + 1n
    const wantPriority = [needed(entry.params.maxPriorityFeePerGas), fees.maxPriorityFeePerGas].reduce((a, b) => (a > b ? a : b))
    const maxFee = min([needed(entry.params.maxFeePerGas), fees.maxFeePerGas, wantPriority].reduce((a, b) => (a > b ? a : b)), caps.maxFeePerGas)
    const priority = min(wantPriority, maxFee)
    const params: OutboxParams = { ...entry.params, maxFeePerGas: maxFee.toString(), maxPriorityFeePerGas: priority.toString() }
    let blobFee: bigint | undefined
    if (isBlob) {
      const blobBase = await publicClient.getBlobBaseFee()
      const doubled = 2n * BigInt(entry.params.maxFeePerBlobGas!)
      blobFee = min(doubled > 2n * blobBase ? doubled : 2n * blobBase, caps.maxFeePerBlobGas)
      params.maxFeePerBlobGas = blobFee.toString()
    }
    // A replacement must raise every fee by the pool's margin (10 %, 100 % for blob txs); under the caps it may not.
    const replaces =
      maxFee >= needed(entry.params.maxFeePerGas) &&
      priority >= needed(entry.params.maxPriorityFeePerGas) &&
      (!isBlob || blobFee! >= ceilMul(BigInt(entry.params.maxFeePerBlobGas!), 2n, 1n))
    if (!replaces) {
      if (!capped.has(entry.id))
        logger.warn(
          { outboxId: entry.id, nonce: entry.nonce, label: entry.label, maxFeePerGas: entry.params.maxFeePerGas, caps: { maxFeePerGas: caps.maxFeePerGas?.toString(), maxFeePerBlobGas: caps.maxFeePerBlobGas?.toString() } },
          'stuck transaction not replaced: higher fees would pass the fee caps; it waits at its fees',
        )
      capped.add(entry.id)
      return
    }
    const { rawTx, hash, sidecarVersion: version } = await sign(params, entry.nonce, blobsOf(entry))
    store.replace(entry.id, params, rawTx, version, [...entry.txHashes, hash], head, options.now())
    logger.info({ outboxId: entry.id, nonce: entry.nonce, label: entry.label, hash, maxFeePerGas: params.maxFeePerGas }, 'stuck transaction replaced with higher fees')
    await broadcast({ ...entry, rawTx })
  }

  /** For a tx to broadcast again (put back by a reorg, or forgotten by the node): true when it may go now (see the header). */
  async function replayable(entry: OutboxEntry, head: bigint): Promise<boolean> {
    try {
      await publicClient.estimateGas({
        account: account.address,
        to: entry.params.to,
        data: entry.params.data,
        ...(entry.blobs ? { blobVersionedHashes: versionedHashesOf(entry), maxFeePerBlobGas: BigInt(entry.params.maxFeePerBlobGas!) } : {}),
      } as never)
    } catch (error) {
      // Only a revert says the tx is early; anything else (funds, an RPC hiccup) is for the broadcast to report.
      if (!isRevert(error)) return true
      const hold = held.get(entry.id)
      const fields = { outboxId: entry.id, nonce: entry.nonce, label: entry.label }
      if (hold === undefined) {
        held.set(entry.id, { since: head, ticks: 0 })
        logger.info(fields, 'a transaction to send again would revert now; holding it until the transactions it follows are mined again')
        return false
      }
      hold.ticks += 1
      if (head - hold.since < holdBlocks || hold.ticks < bumpAfter) return false
      logger.warn(fields, `a transaction to send again would still revert after ${head - hold.since} blocks; sending it anyway to free its nonce`)
    }
    held.delete(entry.id)
    return true
  }

  /** One pass over the open txs: receipts, rebroadcasts, fee bumps, reorged receipts. */
  async function tick(head?: bigint): Promise<void> {
    await locked(async () => {
      const current = head ?? (await publicClient.getBlockNumber({ cacheTime: 0 }))
      const chainNonce = await publicClient.getTransactionCount({ address: account.address, blockTag: 'latest' })
      for (const entry of store.minedToRecheck(account.address, current > reorgDepth ? current - reorgDepth : 0n, chainNonce)) {
        const block = await publicClient.getBlock({ blockNumber: entry.minedBlock! }).catch(() => undefined)
        if (block && block.hash === entry.minedBlockHash) continue
        const receipt = await findReceipt(entry)
        if (receipt) {
          store.markMined(entry.id, { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash, status: receipt.status }, options.now())
        } else {
          logger.warn({ outboxId: entry.id, nonce: entry.nonce, label: entry.label }, 'reorg removed a mined transaction; it is pending again')
          store.unmine(entry.id, options.now())
        }
      }
      for (const stored of store.open(account.address)) {
        if (await checkMined(stored)) continue
        const entry = await upgradeWrapper(stored)
        if (entry.status === 'signed' || entry.broadcastBlock === null) {
          // 'sent' with no broadcast block: put back by a reorg (store.unmine).
          if (entry.status === 'sent' && !(await replayable(entry, current))) break
          if (await broadcast(entry)) {
            store.markSent(entry.id, current, options.now())
            options.killPoint?.(`tx.${entry.label}.sent`, { outboxId: entry.id, nonce: entry.nonce })
          }
          continue
        }
        const latestNonce = await publicClient.getTransactionCount({ address: account.address, blockTag: 'latest' })
        if (latestNonce > entry.nonce) {
          // The nonce is used and none of our hashes has a receipt: another tx of this key took it, or the node has
          // not indexed our receipt yet (state and receipts are not updated at once everywhere: anvil mines blob txs
          // after answering, RPC pools lag). Dropping is final, so it waits until the nonce has been used, with no
          // receipt of ours, for bumpAfterBlocks blocks.
          if (!(await checkMined(entry))) {
            const since = nonceUsedAt.get(entry.id)
            if (since === undefined) nonceUsedAt.set(entry.id, current)
            else if (current - since >= bumpAfter) {
              logger.warn({ outboxId: entry.id, nonce: entry.nonce, label: entry.label }, 'nonce used by another transaction; entry dropped')
              store.markDropped(entry.id, options.now())
              nonceUsedAt.delete(entry.id)
            }
          }
          continue
        }
        if (current - entry.broadcastBlock >= bumpAfter) {
          await bump(entry, current)
          continue
        }
        const known = await publicClient.getTransaction({ hash: entry.txHashes.at(-1)! }).then(
          () => true,
          (error) => (error instanceof TransactionNotFoundError ? false : true),
        )
        if (!known) {
          if (!(await replayable(entry, current))) break
          logger.info({ outboxId: entry.id, nonce: entry.nonce, label: entry.label }, 'the node forgot a pending transaction; rebroadcasting')
          await broadcast(entry)
        }
      }
    })
  }

  return {
    address: account.address,
    send,
    waitForReceipt,
    tick,
    /** Start-up: rebroadcast every stored tx that has no receipt yet (signed before a crash, or lost by the node). */
    start: () => tick(),
    entries: () => store.all(account.address),
    /** The txs with this label, oldest first (a long-lived helper's outbox holds thousands of blob txs: read one label). */
    entriesLabelled: (label: string) => store.labelled(account.address, label),
    /** The txs not mined yet, by nonce. */
    openEntries: () => store.open(account.address),
    /**
     * The newest stored tx with this label and exactly this calldata that is still open or was mined successfully
     * (not dropped, not reverted): a flow resumed after a crash waits for it instead of sending the same call again.
     */
    findSame: (label: string, data: Hex): OutboxEntry | undefined =>
      store
        .labelled(account.address, label)
        .filter((e) => e.params.data === data && e.status !== 'dropped' && e.receiptStatus !== 'reverted')
        .at(-1),
  }
}
export type Outbox = ReturnType<typeof createOutbox>
