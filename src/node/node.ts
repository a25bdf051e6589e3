import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, concatBytes, decodeFunctionData, hexToBytes, type Address, type Hex } from 'viem'
import { envelopeToBlobs, blobsToEnvelope, onboardEntriesInOneBlob, type Envelope } from '../chain/envelope.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { getLogsBounded } from '../chain/logs.ts'
import { fetchVerifiedBlobsWithFallback } from '../chain/peerBlobs.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../chain/kzg.ts'
import type { OnboardRequest } from '../chain/registry.ts'
import type { OnboardedRecord } from '../store/cursor.ts'
import type { ViewHeader } from '../chain/view/chainView.ts'
import { ChainViewError, isChainViewReason } from '../chain/view/errors.ts'
import type { FreshView } from '../chain/view/freshness.ts'
import { KeymanagerError } from '../errors.ts'
import { eciesDecrypt, eciesEncrypt, onboardAad } from '../keys/ecies.ts'
import { decodeSecretsList, encodeSecretsList, SecretsListError } from '../keys/secretsList.ts'
import { createGenerationsClient } from '../chain/generations.ts'
import { createKeyring, sealLabel } from './keyring.ts'
import { createRotation, RotationRefusal } from './rotation.ts'
import { createEscrow, type RecoveryResult } from './escrow.ts'
import { bootstrapReportData, registerReportData } from '../keys/reportData.ts'
import { addressOfPublicKey, compressPublicKey, signDigest } from '../keys/signature.ts'
import { onboardReceiptDigest, onboardResponseDigest } from '../keys/typedData.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import type { NodeContext, TxOutcome } from './context.ts'
import { noKill } from './killPoints.ts'
import type { Registration } from '../store/registrations.ts'
import { createJudge, Refusal } from './judge.ts'
import { createKeptCollateralStore } from '../store/keptCollateral.ts'
import type { Collateral } from '../tee/collateral.ts'
import { MAX_KEPT_COLLATERAL_BYTES } from '../tee/keptCollateral.ts'

export type NodeState = 'uninitialized' | 'bootstrapping' | 'registering' | 'ready'

/** What a helper decided about one request (docs/protocol.md#help). */
export type HelpResult =
  | { requestId: bigint; decision: 'fulfilled'; tx: TxOutcome }
  | { requestId: bigint; decision: 'refused'; reason: string; message: string }
  /** A node without a gas key needs the host to send its freshness mark before it can decide (then ask again). */
  | { requestId: bigint; decision: 'needs_mark'; tx: { to: Address; data: Hex; chainId: number }; message: string }

/** One generation as pods see it (`GET /generations`, docs/protocol.md#http-api). */
export type GenerationView = { generation: number; xPub: Address; current: boolean; revoked: boolean; purged: boolean; retiresAt: number; held: boolean }

/** The reason given (never recorded) for a request that could not be judged this round; it is judged again later. */
export const TEMPORARILY_UNAVAILABLE = 'temporarily_unavailable'

/** Refused judgements per requester and window before its requests wait (docs/protocol.md#limits). */
export const VERIFY_LIMIT = { count: 6, windowSeconds: 600 }

export function createNode(ctx: NodeContext) {
  const { registry, stores, logger } = ctx
  const keptCollateral = stores.keptCollateral ?? createKeptCollateralStore(ctx.db)
  /** Test-only crash hook (src/node/killPoints.ts): a no-op in every normal run. */
  const kill = ctx.killPoint ?? noKill
  const judge = createJudge({ ...ctx, verifyLimit: VERIFY_LIMIT, hostNow: ctx.now, reanswerStale: true, fetchEnvelope: (hash, at) => fetchBlobEnvelope(hash, at) })
  let state: NodeState = 'uninitialized'
  let master: MasterSecret | undefined
  let generation = 0
  let pendingMaster: MasterSecret | undefined
  const keyring = createKeyring({ seal: ctx.seal, sealedSecrets: stores.sealedSecrets, meta: stores.meta, logger, now: ctx.now })
  const generationsClient = createGenerationsClient({ publicClient: ctx.publicClient, address: ctx.registryAddress, ...ctx.logScan })
  /** Ephemeral registration keys by address; the only copy when the seal provider is `none`. */
  const ephemeralKeys = new Map<string, Uint8Array>()
  /** Why this node, as a newcomer, last refused an onboarding response (shown in /status). */
  let newcomerRefusal: { requestId: string; reason: string; message: string } | undefined

  function becomeReady(secret: MasterSecret, gen: number) {
    keyring.add(gen, secret)
    keyring.setCurrent(gen)
    // The held copy: a node that takes a new answer while ready already holds some of its generations.
    secret = keyring.get(gen)!
    master = secret
    generation = gen
    state = 'ready'
    logger.info({ xPub: secret.address, fingerprint: secret.fingerprint, generation: gen }, 'node ready')
  }

  /** A newer generation became current (a rotation committed): pods get it from now on; older ones stay readable. */
  function switchCurrent(gen: number) {
    const secret = keyring.get(gen)!
    master = secret
    generation = gen
    logger.info({ xPub: secret.address, fingerprint: secret.fingerprint, generation: gen }, 'generation is current')
  }

  function sealMaster(secret: MasterSecret, label: string): Uint8Array | undefined {
    if (!ctx.seal.persistent) return undefined
    return secret.exportForSealing((bytes) => ctx.seal.seal(bytes, label))
  }

  // ---- verified reads (docs/protocol.md#verified-chain-view) -------------------------------------------------------

  /**
   * The verified view at or after `block` when one is named (a block the RPC reported an event in: a lie only makes this
   * time out), else the newest header the view vouches for. Never a wait for the RPC's head: in light-client mode the
   * head is a block finality has not reached yet (about 13 minutes on mainnet), and on the devnet a head of empty
   * blocks that nobody asks to finalize. Decisions that must not act on old state wait for their own mark instead
   * (the freshness rule).
   */
  async function viewAt(block?: bigint): Promise<ViewHeader> {
    if (block === undefined) return ctx.chainView.head()
    return ctx.chainView.waitForBlock(block, { timeoutMs: ctx.viewWaitMs, pollMs: ctx.viewPollMs })
  }

  /**
   * A verified view proven to include a random mark made for this decision (the freshness rule,
   * docs/protocol.md#verified-chain-view): rotation steps are sent with the gas key, so the node sends its own mark.
   */
  async function fresh(): Promise<ViewHeader> {
    if (!ctx.walletClient || !ctx.outbox) throw new ChainViewError('stale_chain_view', 'this decision needs a freshness mark and the node has no gas key to send it')
    const got = await ctx.freshness.requireFreshView(async (mark) => {
      const outcome = await submit('markFresh', registry.calldata.markFresh(mark))
      return outcome.sent ? BigInt(outcome.blockNumber) : undefined
    })
    return got.header
  }

  const rotation = createRotation({
    chainId: ctx.chainId,
    registryAddress: ctx.registryAddress,
    settingsDigest: ctx.settingsDigest,
    view: ctx.chainView,
    registry,
    requestEvent: (id: bigint) => stores.cursor.request(id),
    generations: generationsClient,
    keyring,
    quoteProvider: ctx.quoteProvider,
    quoteVerifier: ctx.quoteVerifier,
    logger,
    fresh,
    viewAt,
    submit: (label, data, blobs) => submit(label, data, blobs),
    fetchEnvelope: (hash, at) => fetchEnvelope(hash, at),
    archiveOwn: (blobs) => archiveOwn(blobs),
    onCurrent: switchCurrent,
    keepCollateral: (hash, collateral, judgedAt) => keepCollateral(hash, collateral, judgedAt),
  })

  /** xPub and generation as the verified view proves them (at `header`, default its newest). */
  async function provenMaster(header?: ViewHeader): Promise<{ xPub: Address; generation: number; header: ViewHeader }> {
    const at = header ?? (await ctx.chainView.head())
    const master = (await ctx.chainView.read(at, { master: true })).master()
    return { xPub: master.xPub, generation: Number(master.generation), header: at }
  }

  /**
   * Sends a transaction with the gas key through the outbox (nonce and signed tx stored before broadcast,
   * docs/protocol.md#node-state) and waits for its receipt, or returns it unsigned for the host.
   */
  async function submit(label: string, data: Hex, blobs?: Hex[]): Promise<TxOutcome> {
    const to = ctx.registryAddress
    if (!ctx.walletClient || !ctx.outbox) return { sent: false, tx: { to, data, ...(blobs ? { blobs } : {}), chainId: ctx.chainId } }
    const { id } = await ctx.outbox.send({ label, to, data, blobs })
    const receipt = await ctx.outbox.waitForReceipt(id)
    if (receipt.status !== 'success') throw new KeymanagerError('upstream_failed', `transaction ${receipt.hash} (${label}) reverted`)
    return { sent: true, txHash: receipt.hash, blockNumber: receipt.blockNumber.toString() }
  }

  /**
   * `submit` for a call whose calldata is deterministic (bootstrap(pubkey), confirmOnboard(id, RFC 6979 signature)):
   * when the outbox already holds this very call, open or mined, the flow resumed after a crash waits for it instead of
   * sending it twice (docs/protocol.md#node-state, crash safety).
   */
  async function submitOnce(label: string, data: Hex, blobs?: Hex[]): Promise<TxOutcome> {
    const stored = ctx.walletClient && ctx.outbox ? ctx.outbox.findSame(label, data) : undefined
    if (!stored) return submit(label, data, blobs)
    logger.info({ outboxId: stored.id, nonce: stored.nonce, label }, 'this transaction is already in the outbox; waiting for it instead of sending it again')
    const receipt = await ctx.outbox!.waitForReceipt(stored.id)
    if (receipt.status !== 'success') throw new KeymanagerError('upstream_failed', `transaction ${receipt.hash} (${label}) reverted`)
    return { sent: true, txHash: receipt.hash, blockNumber: receipt.blockNumber.toString() }
  }

  /**
   * Requests this node already answered in a `fulfillOnboard` that is stored in its outbox and not mined yet (a crash
   * or restart came between storing it and its receipt): outbox id by request id. They are not judged again.
   */
  function fulfilsInFlight(): Map<bigint, number> {
    const found = new Map<bigint, number>()
    if (!ctx.outbox) return found
    for (const entry of ctx.outbox.openEntries()) {
      if (entry.label !== 'fulfillOnboard') continue
      const call = decodeFunctionData({ abi: keyManagerAbi, data: entry.params.data })
      if (call.functionName !== 'fulfillOnboard') continue
      for (const id of call.args[0]) found.set(id, entry.id)
    }
    return found
  }

  /**
   * Archives a blob this node acted on (docs/protocol.md#limits): its own, a request it answered, the response it took
   * its secrets from, a rotation it took part in. A refused request's blob is never kept, so spam costs the archive
   * nothing. A full archive keeps what it has and says so: the blob is still on chain and at other archives.
   */
  function archive(versionedHash: Hex, bytes: Uint8Array): void {
    if (stores.blobs.put(versionedHash, bytes, ctx.now()) === 'full')
      logger.error(
        { versionedHash, maxBytes: stores.blobs.maxBytes },
        'blob archive full: blob not archived (raise blobs.archiveMaxBytes in the host settings, or serve it from another archive)',
      )
  }

  /**
   * Keeps the collateral a quote this node answered was judged with, and when (docs/protocol.md#node-state): each
   * distinct collateral once, by hash. Only for answers (a signed fulfillOnboard), so spam costs nothing here.
   */
  function keepCollateral(quoteBlobHash: Hex, collateral: Collateral, judgedAt: number): void {
    if (keptCollateral.keep(quoteBlobHash, collateral, judgedAt, ctx.now()) === 'too_large')
      logger.warn({ quoteBlobHash }, `collateral over ${MAX_KEPT_COLLATERAL_BYTES} bytes: not kept with the decision (audit judges this quote with other collateral)`)
  }

  /** Keeps blobs this node made, so peers can fetch them from its archive once beacon nodes have pruned them. */
  function archiveOwn(blobs: readonly Hex[]): void {
    for (const blob of blobs) {
      const bytes = hexToBytes(blob)
      archive(bytesToHex(commitmentToVersionedHash(blobToCommitment(bytes))), bytes)
    }
  }

  /** A blob the node acts on (a rotation's): fetched, checked and archived. */
  async function fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<Envelope> {
    const { envelope, blob } = await fetchBlobEnvelope(versionedHash, at)
    if (blob) archive(versionedHash, blob)
    return envelope
  }

  /**
   * The envelope of a blob (archived, or fetched and checked against its versioned hash), and the blob when it was
   * fetched: not archived here, the caller archives it once it acts on it.
   */
  async function fetchBlobEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<{ envelope: Envelope; blob?: Uint8Array }> {
    const archived = stores.blobs.get(versionedHash)
    if (archived) return { envelope: blobsToEnvelope([bytesToHex(archived)]) }
    {
      const block = await ctx.publicClient.getBlock({ blockNumber: at.blockNumber })
      const [fetched] = await fetchVerifiedBlobsWithFallback([ctx.blobSource, ...(ctx.peerBlobSources ?? [])], {
        blockNumber: at.blockNumber,
        blockHash: at.blockHash,
        blockTimestamp: block.timestamp,
        versionedHashes: [versionedHash],
      }, ctx.observeBlobFetch)
      if (!fetched) throw new KeymanagerError('upstream_failed', `blob ${versionedHash} not returned`)
      return { envelope: blobsToEnvelope([bytesToHex(fetched)]), blob: fetched }
    }
  }

  // ---- start-up -------------------------------------------------------------------------------------------

  /** Restores a sealed master secret or pending work and checks it against the chain. */
  async function start(): Promise<void> {
    const sealedRows = keyring.loadSealed()
    // The first proven read: it checks the registry's code hash against the measured settings (a node pointed at
    // another contract stops here). A node that holds nothing yet may start while no verified header can be had (the
    // beacon node is down or not synced): it decides nothing until one can, and every decision reads the view again.
    // A node that holds a sealed secret or pending work must check it against the verified chain first.
    let onChain: Awaited<ReturnType<typeof provenMaster>>
    try {
      onChain = await provenMaster()
    } catch (error) {
      const holdsNothing = sealedRows.length === 0 && !stores.meta.get('pending_master') && !stores.registrations.latestOpen()
      if (!(holdsNothing && error instanceof ChainViewError && error.reason === 'unverified_chain')) {
        for (const row of sealedRows) row.secret.expire()
        throw error
      }
      logger.warn({ reason: error.reason }, `no verified chain view yet (${error.shortMessage}); the node decides nothing until it has one`)
      return
    }
    logger.info(
      { mode: ctx.chainView.mode, block: onChain.header.blockNumber.toString(), generation: onChain.generation, xPub: onChain.xPub },
      'registry read through the verified chain view',
    )
    if (sealedRows.length > 0) {
      // Every sealed generation is checked against its key in the verified chain; the newest is served until catchUp
      // (below) finds the chain's current one (a restart in the middle of a rotation resumes there). A view that trails
      // the chain (finality lag) may not show the newest sealed generation yet: the node waits, bounded, until it does;
      // a restart with nothing newer sealed than the view shows goes on at once.
      const newestSealed = Math.max(...sealedRows.map((r) => r.generation))
      let header = onChain.header
      for (let shown = onChain.generation, deadline = performance.now() + ctx.viewWaitMs; shown < newestSealed && performance.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, ctx.viewPollMs))
        ;({ header, generation: shown } = await provenMaster())
      }
      const proven = await ctx.chainView.read(header, { master: true, generations: sealedRows.map((r) => BigInt(r.generation)) })
      for (const { generation: g, secret } of sealedRows) {
        if (secret.address.toLowerCase() !== proven.generation(BigInt(g)).xPub.toLowerCase()) {
          for (const row of sealedRows) row.secret.expire()
          throw new Error(
            `sealed master secret (generation ${g}, ${secret.address}) does not match the master key the verified chain shows for that generation (${proven.generation(BigInt(g)).xPub} at block ${header.blockNumber})`,
          )
        }
        keyring.add(g, secret, { sealed: true })
      }
      restoreNodeKey()
      keyring.loadProposed()
      // A crash after the bootstrap's generation was sealed and before the pending copy was cleared leaves both.
      if (stores.meta.get('pending_master')) stores.meta.put('pending_master', '')
      dropLostRegistration()
      const newest = sealedRows.at(-1)!
      keyring.setCurrent(newest.generation)
      master = newest.secret
      generation = newest.generation
      state = 'ready'
      await rotation.catchUp(header)
      logger.info({ xPub: master.address, generation, held: keyring.held(), memberId: keyring.nodeKey?.memberId.toString() ?? null, chainGeneration: onChain.generation }, 'node ready')
      return
    }
    const pending = stores.meta.get('pending_master')
    if (pending) {
      const bytes = ctx.seal.unseal(hexToBytes(pending as Hex), sealLabel.pendingMaster)
      pendingMaster = createMasterSecret(bytes)
      bytes.fill(0)
      state = 'bootstrapping'
      await finishBootstrapIfOnChain()
      return
    }
    dropLostRegistration()
    const open = stores.registrations.latestOpen()
    if (open && open.sealedKey) {
      ephemeralKeys.set(open.address.toLowerCase(), ctx.seal.unseal(open.sealedKey, sealLabel.ephemeral(open.address)))
      state = 'registering'
    }
  }

  /**
   * A registration whose `requestOnboard` can never be mined is given up, so the node registers afresh, once: one stored
   * before its tx was (the node died in between, kill point register.key-sealed: no node signed its tx), or one whose tx
   * reverted or was dropped (a reorg took the mined request away and its replay failed). Only a node that sends its own
   * txs knows this; a registration handed to the host stays open. Returns whether it gave one up.
   */
  function dropLostRegistration(): boolean {
    const open = stores.registrations.latestOpen()
    if (!open || open.status !== 'prepared' || !ctx.walletClient || !ctx.outbox || requesting > 0) return false
    const data = registry.calldata.requestOnboard(open.pubkey64, open.refBlockNumber)
    if (ctx.outbox.findSame('requestOnboard', data)) return false
    stores.registrations.setStatus(open.address, 'expired', ctx.now())
    logger.warn({ enckey: open.address }, 'a registration whose request never reached the chain (never signed, reverted or dropped) is dropped; the node registers again')
    return true
  }

  /** The node key: the key of the registration this node became a member with (docs/protocol.md#members-and-node-keys). */
  function restoreNodeKey() {
    const done = stores.registrations.latestCompleted()
    if (!done || done.requestId === null || !done.sealedKey) return
    keyring.setNodeKey({ memberId: done.requestId, address: done.address, secretKey: ctx.seal.unseal(done.sealedKey, sealLabel.ephemeral(done.address)) })
  }

  // ---- bootstrap (docs/protocol.md#bootstrap) --------------------------------------------------------------------

  /** Ready once the verified view shows the registry bootstrapped with this node's pending key. */
  async function finishBootstrapIfOnChain(): Promise<boolean> {
    if (!pendingMaster) return false
    // The RPC says whether it is bootstrapped yet (a hint); the view must get to its head, and its proven slot decides.
    let onChain = await provenMaster()
    if (onChain.generation === 0 && (await registry.generation()) !== 0n) onChain = await provenMaster(await viewAt())
    if (onChain.generation === 0) return false
    if (onChain.xPub.toLowerCase() !== pendingMaster.address.toLowerCase()) {
      throw new KeymanagerError('conflict', `the registry was bootstrapped with another master key (${onChain.xPub}); use /register`)
    }
    // Sealed as generation 1 before the pending copy goes: a crash in between keeps one of them (start() clears the other).
    becomeReady(pendingMaster, onChain.generation)
    kill('bootstrap.generation-sealed')
    stores.meta.put('pending_master', '')
    kill('bootstrap.pending-cleared')
    pendingMaster = undefined
    return true
  }

  async function bootstrap() {
    if (state === 'ready') throw new KeymanagerError('conflict', 'node is already ready')
    if (state === 'registering') throw new KeymanagerError('conflict', 'node is registering; it cannot also bootstrap')
    if (await finishBootstrapIfOnChain()) return { state, xPub: master!.address, generation }
    const onChain = await provenMaster()
    if (onChain.generation !== 0) throw new KeymanagerError('conflict', 'the registry is already bootstrapped; use /register')
    if (!pendingMaster) {
      pendingMaster = generateMasterSecret()
      // Sealed before the transaction exists: if this node dies after the host sends it, the secret is not lost.
      const sealed = sealMaster(pendingMaster, sealLabel.pendingMaster)
      if (sealed) stores.meta.put('pending_master', bytesToHex(sealed))
      kill('bootstrap.pending-sealed')
      state = 'bootstrapping'
      logger.info({ xPub: pendingMaster.address, fingerprint: pendingMaster.fingerprint }, 'master secret created')
    }
    const settingsDigest = hexToBytes(ctx.settingsDigest)
    const reportData = bootstrapReportData({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      masterPubkey64: pendingMaster.publicKey64,
      settingsDigest,
    })
    const quote = await ctx.quoteProvider.getQuote(reportData)
    const blobs = envelopeToBlobs({
      kind: 'bootstrap',
      teeType: ctx.quoteProvider.teeType,
      quote,
      masterPubkey64: pendingMaster.publicKey64,
      settingsDigest,
    })
    archiveOwn(blobs)
    kill('bootstrap.blob-archived')
    const data = registry.calldata.bootstrap(bytesToHex(pendingMaster.publicKey64))
    // bootstrap() is for the owner or the bootstrapper it named: the node sends it only when its gas key is one of them.
    const [owner, bootstrapper] = await Promise.all([registry.owner(), registry.bootstrapper()])
    const gasKey = ctx.walletClient?.account.address.toLowerCase()
    const canSend = gasKey !== undefined && (gasKey === owner.toLowerCase() || gasKey === bootstrapper.toLowerCase())
    if (!canSend) {
      return {
        state,
        xPub: pendingMaster.address,
        tx: { to: ctx.registryAddress, data, blobs, chainId: ctx.chainId },
        next: 'send tx from the registry owner, then POST /bootstrap again',
      }
    }
    // The same bootstrap(pubkey) stored before a crash is waited for, not sent twice.
    const outcome = await submitOnce('bootstrap', data, blobs)
    await finishBootstrapIfOnChain()
    return { state, xPub: master!.address, generation, ...outcome }
  }

  // ---- register (docs/protocol.md#register) ---------------------------------------------------------------------

  async function register() {
    if (state === 'ready') throw new KeymanagerError('conflict', 'node is already ready')
    if (state === 'bootstrapping') throw new KeymanagerError('conflict', 'node is bootstrapping; it cannot also register')
    // Not a decision about M (the request reveals nothing, and the contract refuses it before bootstrap): the RPC's
    // answer is enough to spare a useless quote.
    if ((await registry.generation()) === 0n) throw new KeymanagerError('conflict', 'the registry is not bootstrapped yet')
    try {
      const result = await requestOnboarding()
      state = 'registering'
      return { state, ...result }
    } finally {
      // Once the registration is stored the node is registering, even when waiting for its request failed: a reorg can
      // take a mined request away (its receipt is gone), the outbox then replays the same tx, and a fresh registration
      // would put a second request of this node on chain. A request that reverted or was dropped is given up by
      // `dropLostRegistration`, and only then does the node register again.
      if (state === 'uninitialized' && stores.registrations.latestOpen()) state = 'registering'
    }
  }

  /** A new key pair, a quote binding it, and `requestOnboard` (docs/protocol.md#register). */
  async function requestOnboarding() {
    requesting++
    try {
      return await requestOnboardingNow()
    } finally {
      requesting--
    }
  }

  /** Registrations being made now: one between its store and its outbox row is not lost (`dropLostRegistration`). */
  let requesting = 0

  async function requestOnboardingNow() {
    const secretKey = secp256k1.utils.randomSecretKey()
    const pubkey64 = secp256k1.getPublicKey(secretKey, false).subarray(1)
    const address = addressOfPublicKey(pubkey64)
    const ref = await ctx.publicClient.getBlock({ blockTag: 'latest' })
    const settingsDigest = hexToBytes(ctx.settingsDigest)
    const reportData = registerReportData({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      pubkey64,
      refBlockNumber: ref.number,
      refBlockHash: ref.hash,
      settingsDigest,
    })
    const quote = await ctx.quoteProvider.getQuote(reportData)
    const blobs = envelopeToBlobs({
      kind: 'register',
      teeType: ctx.quoteProvider.teeType,
      quote,
      pubkey64,
      refBlockNumber: ref.number,
      refBlockHash: hexToBytes(ref.hash),
      settingsDigest,
    })
    archiveOwn(blobs)
    kill('register.blob-archived')
    ephemeralKeys.set(address.toLowerCase(), secretKey)
    const sealedKey = ctx.seal.persistent ? ctx.seal.seal(secretKey, sealLabel.ephemeral(address)) : null
    stores.registrations.insert({
      address,
      pubkey64: bytesToHex(pubkey64),
      sealedKey,
      refBlockNumber: ref.number,
      refBlockHash: ref.hash,
      now: ctx.now(),
    })
    kill('register.key-sealed')
    const outcome = await submit('requestOnboard', registry.calldata.requestOnboard(bytesToHex(pubkey64), ref.number), blobs)
    let requestId: bigint | null = null
    if (outcome.sent) {
      // The id comes from the receipt's own OnboardRequested event, not from a log scan (docs/protocol.md#limits).
      // A reorg between the outbox's receipt and this read takes the receipt away: the id is then left to the watcher's
      // record of the replayed request (auto mode's register step reads it there).
      const receipt = await ctx.publicClient.getTransactionReceipt({ hash: outcome.txHash }).catch((error: unknown) => {
        logger.warn({ txHash: outcome.txHash, error: (error as Error).message.split('\n')[0] }, 'the receipt of the request is gone (reorged away?); its id is taken from the watcher later')
        return undefined
      })
      if (receipt) {
        requestId = registry.requestIdFromReceipt(receipt, address) ?? null
        stores.registrations.markRequested(address, requestId, outcome.txHash, ctx.now())
        kill('register.requested')
      }
    }
    logger.info({ address, requestId: requestId?.toString(), refBlock: ref.number.toString() }, 'registration prepared')
    return {
      enckey: address,
      pubkey64: bytesToHex(pubkey64),
      requestId: requestId?.toString() ?? null,
      ...(outcome.sent ? { txHash: outcome.txHash } : { tx: outcome.tx }),
    }
  }

  /**
   * A ready node without a node key becomes a member the way every node does (docs/protocol.md#members-and-node-keys):
   * the bootstrap node registers, answers its own request (checking its own quote like any other) and confirms.
   * Resumable: each call moves the open registration one step on.
   */
  async function joinAsMember() {
    if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', `node is ${state}`)
    if (keyring.nodeKey) return { memberId: keyring.nodeKey.memberId.toString(), step: 'member' }
    if (!ctx.walletClient || !ctx.outbox) throw new KeymanagerError('conflict', 'becoming a member needs a gas key (the node answers and confirms its own request)')
    let open = stores.registrations.latestOpen()
    if (!open) {
      await requestOnboarding()
      open = stores.registrations.latestOpen()
      if (!open) throw new KeymanagerError('internal', 'registration was not stored')
    }
    const secretKey = ephemeralKeys.get(open.address.toLowerCase()) ?? (open.sealedKey ? ctx.seal.unseal(open.sealedKey, sealLabel.ephemeral(open.address)) : undefined)
    if (!secretKey) {
      stores.registrations.setStatus(open.address, 'expired', ctx.now())
      throw new KeymanagerError('conflict', 'the key of the open registration is gone; a new one is made next time')
    }
    const request = stores.cursor.latestRequestBy(open.address)
    if (!request) return { memberId: null, step: 'requested' }
    if (open.requestId === null) stores.registrations.markRequested(open.address, request.requestId, request.transactionHash, ctx.now())
    const onChain = await registry.getRequest(request.requestId)
    // Answered under an older generation, and a rotation committed before the confirmation (RPC hints: complete and
    // help prove what they act on). A node that holds the current generation (the bootstrap node's own request) answers
    // it again; a newcomer that became ready from the old answer takes the new one, which holds every generation.
    const chainGeneration = onChain.status === 'fulfilled' ? await registry.generation() : 0n
    if (onChain.status === 'fulfilled' && !keyring.get(Number(chainGeneration))) {
      // Ready from an older answer, and the chain moved on: the answer made under the current generation (complete
      // proves it and refuses while there is none yet).
      await complete(open.address)
      return { memberId: request.requestId.toString(), step: 'member' }
    }
    if (onChain.status === 'fulfilled' && (await generationsClient.requestGeneration(request.requestId)) < chainGeneration) {
      const [again] = await help([request])
      if (again?.decision !== 'fulfilled') throw new KeymanagerError('conflict', `own request ${request.requestId} answered under an older generation, not answered again: ${again?.decision === 'refused' ? again.reason : 'not sent'}`)
    } else if (onChain.status === 'pending') {
      const [result] = await help([request])
      // A refusal by the chain view itself (stale or unverified view, src/chain/view/errors.ts) says nothing about the
      // request: the registration stays open and the next call tries again (expiring it would make a second request).
      if (result?.decision === 'refused' && isChainViewReason(result.reason))
        throw new KeymanagerError('conflict', `own request ${request.requestId} not answered yet: ${result.reason}`)
      if (result?.decision !== 'fulfilled' && !(result?.decision === 'refused' && result.reason === 'already_fulfilled')) {
        stores.registrations.setStatus(open.address, 'expired', ctx.now())
        throw new KeymanagerError('conflict', `this node refused its own request: ${result?.decision === 'refused' ? result.reason : 'not sent'}`)
      }
    } else if (onChain.status !== 'fulfilled' && onChain.status !== 'confirmed') {
      stores.registrations.setStatus(open.address, 'expired', ctx.now())
      throw new KeymanagerError('conflict', `own request ${request.requestId} is ${onChain.status}`)
    }
    if (onChain.status !== 'confirmed') {
      const receipt = onboardReceiptDigest({ chainId: ctx.chainId, registry: ctx.registryAddress, requestId: request.requestId, xPub: master.address })
      await submitOnce('confirmOnboard', registry.calldata.confirmOnboard(request.requestId, bytesToHex(signDigest(receipt, secretKey))))
    }
    stores.registrations.setStatus(open.address, 'completed', ctx.now())
    kill('member.registration-completed')
    keyring.setNodeKey({ memberId: request.requestId, address: open.address, secretKey })
    ephemeralKeys.delete(open.address.toLowerCase())
    logger.info({ memberId: request.requestId.toString() }, 'this node is a member (node key kept sealed)')
    return { memberId: request.requestId.toString(), step: 'member' }
  }

  /**
   * A member whose `confirmOnboard` a reorg took away, and whose replay the outbox then sent before the answer it
   * follows was mined again (so it reverted), or dropped, is onboarded but not confirmed: outside the member set. Once
   * the chain shows its request fulfilled again, the same stored call (RFC 6979: the same bytes) is sent once more.
   * The outbox is checked first; the chain is read only when it holds such a lost confirmation. Returns whether it sent.
   */
  async function confirmAgainIfLost(): Promise<boolean> {
    const key = keyring.nodeKey
    if (!key || !ctx.outbox || !ctx.walletClient) return false
    // One label's rows, not the whole outbox: this runs on every auto step.
    const ours = ctx.outbox.entriesLabelled('confirmOnboard').filter((entry) => {
      const call = decodeFunctionData({ abi: keyManagerAbi, data: entry.params.data })
      return call.functionName === 'confirmOnboard' && call.args[0] === key.memberId
    })
    const last = ours.at(-1)
    if (!last || !(last.status === 'dropped' || (last.status === 'mined' && last.receiptStatus === 'reverted'))) return false
    if ((await registry.getRequest(key.memberId)).status !== 'fulfilled') return false
    logger.warn({ memberId: key.memberId.toString(), outboxId: last.id }, 'this node\'s confirmation was lost (reorged away, then reverted or dropped); confirming again')
    await submit('confirmOnboard', last.params.data)
    return true
  }

  /** Every generation the verified chain has, as this node last proved it, and whether it holds each (pods). */
  function generations(): GenerationView[] {
    const out: GenerationView[] = []
    const top = Math.max(generation, ...keyring.held())
    for (let g = 1; g <= top; g++) {
      const facts = keyring.facts(g)
      const held = keyring.get(g)
      if (!facts && !held) continue
      out.push({
        generation: g,
        xPub: facts?.xPub ?? held!.address,
        current: g === generation,
        revoked: facts?.revoked ?? false,
        purged: facts?.purged ?? false,
        retiresAt: Number(facts?.retiresAt ?? 0n),
        held: held !== undefined,
      })
    }
    return out
  }

  /**
   * The secret of generation `g` for a pod (docs/protocol.md#http-api): 410 once purged, 404 when this node never
   * held it; `revoked` says whether the registry stopped vouching for it.
   */
  function masterOf(g: number): { secret: MasterSecret; revoked: boolean } {
    if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', `node is ${state}`)
    const facts = keyring.facts(g)
    if (facts?.purged) throw new KeymanagerError('gone', `generation ${g} was purged`)
    const secret = keyring.get(g)
    if (!secret) throw new KeymanagerError('not_found', `generation ${g} is not held by this node (current: ${generation})`)
    return { secret, revoked: facts?.revoked ?? false }
  }

  // ---- complete (docs/protocol.md#complete) ---------------------------------------------------------------------

  /** A newcomer turns an onboarding response down: recorded for /status, logged, and thrown to the caller. */
  function refuseResponse(requestId: bigint, reason: string, message: string): never {
    newcomerRefusal = { requestId: requestId.toString(), reason, message }
    logger.warn({ requestId: requestId.toString(), reason }, `onboarding response refused: ${message}`)
    throw new KeymanagerError('upstream_failed', `onboarding response refused (${reason}): ${message}`)
  }

  async function complete(enckey: Address) {
    const registration = stores.registrations.get(enckey)
    // A ready node takes an answer only while it is not a member and this registration is still open: it became ready
    // from an answer made under an older generation, and a rotation committed before its confirmation (the contract
    // then refuses it, KeyManagerStaleResponse): it was no recipient of the new generation, and a helper answers its
    // request again with every generation (docs/protocol.md#onboarding-across-generations).
    const openRegistration = stores.registrations.latestOpen()
    if (state === 'ready' && (keyring.nodeKey || !openRegistration || openRegistration.address.toLowerCase() !== enckey.toLowerCase()))
      throw new KeymanagerError('conflict', 'node is already ready')
    if (!registration) throw new KeymanagerError('not_found', `no registration of this node has the key ${enckey}`)
    const secretKey =
      ephemeralKeys.get(enckey.toLowerCase()) ?? (state === 'ready' && registration.sealedKey ? ctx.seal.unseal(registration.sealedKey, sealLabel.ephemeral(registration.address)) : undefined)
    if (!secretKey) throw new KeymanagerError('conflict', 'the ephemeral key of this registration is gone (node restarted with seal none); register again')
    // This key's request and its answer, as the chain watcher recorded them (a reorg may have given the recorded id to
    // another requester: then the latest request of this key is the one).
    const ownRequest = () => {
      const byId = registration.requestId === null ? undefined : stores.cursor.request(registration.requestId)
      if (byId && byId.requester.toLowerCase() === registration.address.toLowerCase()) return byId
      return stores.cursor.latestRequestBy(registration.address)
    }
    let request = ownRequest()
    if ((!request || !request.onboarded) && ctx.syncChain) {
      await ctx.syncChain()
      request = ownRequest()
    }
    if (!request) throw new KeymanagerError('conflict', 'no onboarding request for this key is on chain yet')
    if (registration.requestId === null) stores.registrations.markRequested(registration.address, request.requestId, request.transactionHash, ctx.now())
    const onboarded = request.onboarded
    if (!onboarded) throw new KeymanagerError('conflict', `request ${request.requestId} is not fulfilled yet`)

    // docs/protocol.md#complete: the verified view must show this request as ours and answered, and the master key.
    let proven
    try {
      const header = await viewAt(onboarded.blockNumber)
      const registryAt = await ctx.chainView.read(header, { master: true, requests: [request.requestId] })
      proven = { request: registryAt.request(request.requestId), master: registryAt.master(), header }
    } catch (error) {
      if (error instanceof ChainViewError) refuseResponse(request.requestId, error.reason, error.shortMessage)
      throw error
    }
    if (proven.request.key.toLowerCase() !== registration.address.toLowerCase())
      refuseResponse(request.requestId, 'not_our_request', `request ${request.requestId} in the verified chain belongs to ${proven.request.key}, not to this registration`)
    if (proven.request.status !== 'fulfilled' && proven.request.status !== 'confirmed')
      refuseResponse(request.requestId, 'not_fulfilled', `request ${request.requestId} is ${proven.request.status} in the verified chain (block ${proven.header.blockNumber})`)

    // The answer: the Onboarded event is a hint (a lying RPC may have shown the watcher an answer of the host's own).
    // The recorded one is tried first; if the verified chain does not vouch for its secrets, every Onboarded log of this
    // request in its answer window (request block to expiry: a bounded read) is tried in turn, so a node that was lied
    // to once completes when the real answer is shown. Each refusal is recorded in /status.
    const open = async (onboarded: OnboardedRecord) => {
      const { envelope, blob } = await fetchBlobEnvelope(onboarded.responseBlobHash, onboarded)
      if (envelope.kind !== 'onboard') throw new KeymanagerError('upstream_failed', 'response blob is not an onboard envelope')
      const entry = envelope.entries[Number(onboarded.index)]
      if (!entry || entry.requestId !== request.requestId)
        throw new KeymanagerError('upstream_failed', `response blob has no entry for request ${request.requestId} at index ${onboarded.index}`)
      const aad = onboardAad({
        chainId: ctx.chainId,
        registry: ctx.registryAddress,
        requestId: request.requestId,
        generation: envelope.generation,
      })
      let plaintext: Uint8Array
      try {
        plaintext = eciesDecrypt(secretKey, entry.ciphertext, aad)
      } catch {
        throw new KeymanagerError('upstream_failed', 'the onboarding response does not decrypt with this registration key')
      }
      let list
      try {
        list = decodeSecretsList(plaintext)
      } catch (error) {
        if (error instanceof SecretsListError) refuseResponse(request.requestId, 'bad_secrets_list', `the onboarding response is not a secrets list: ${error.message}`)
        throw error
      } finally {
        plaintext.fill(0)
      }
      const received = list.map(({ generation: g, secret: bytes }) => {
        const secret = createMasterSecret(bytes)
        bytes.fill(0)
        return { generation: g, secret }
      })
      const dropAll = () => received.forEach((r) => r.secret.expire())
      // docs/protocol.md#onboarding-across-generations: every unpurged generation must be there, each matching its key in
      // the verified chain (at the view that proved the request ours and answered), and the newest must be the current
      // one the response was made under.
      const chainGeneration = proven.master.generation
      const all = Array.from({ length: Number(chainGeneration) }, (_, i) => BigInt(i + 1))
      const provenGenerations = await ctx.chainView.read(proven.header, { master: true, generations: all })
      const expected = all.filter((g) => !provenGenerations.generation(g).purged)
      const got = received.map((r) => r.generation)
      if (envelope.generation !== chainGeneration || got.length !== expected.length || got.some((g, i) => g !== expected[i])) {
        dropAll()
        refuseResponse(
          request.requestId,
          'wrong_generations',
          `the onboarding response holds generations ${got.join(',')} (made under ${envelope.generation}), the verified chain has unpurged ${expected.join(',')} (current ${chainGeneration})`,
        )
      }
      for (const { generation: g, secret } of received)
        if (secret.address.toLowerCase() !== provenGenerations.generation(g).xPub.toLowerCase()) {
          dropAll()
          refuseResponse(request.requestId, 'not_master_key', `the decrypted secret of generation ${g} (${secret.address}) is not that generation's master key in the verified chain`)
        }
      const secret = received.at(-1)!.secret
      if (secret.address.toLowerCase() !== proven.master.xPub.toLowerCase()) {
        dropAll()
        refuseResponse(request.requestId, 'not_master_key', `the newest decrypted secret (${secret.address}) is not the current master key of the verified chain (${proven.master.xPub})`)
      }
      // The answer this node takes its secrets from is archived; an answer it refused (a host's own) never is.
      if (blob) archive(onboarded.responseBlobHash, blob)
      return received
    }
    let received: Awaited<ReturnType<typeof open>> | undefined
    let refused: unknown
    const tried = new Set<string>()
    const attempt = async (answer: OnboardedRecord) => {
      const key = `${answer.blockHash}/${answer.responseBlobHash}/${answer.index}`.toLowerCase()
      if (tried.has(key)) return
      tried.add(key)
      try {
        received = await open(answer)
      } catch (error) {
        refused = error
      }
    }
    await attempt(onboarded)
    if (!received) {
      const head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 })
      const until = head < proven.request.expiresAt ? head : proven.request.expiresAt
      const logs = await getLogsBounded({ publicClient: ctx.publicClient, address: ctx.registryAddress, abi: keyManagerAbi, eventNames: ['Onboarded'], fromBlock: request.blockNumber, toBlock: until, ...(ctx.logScan ? { maxRange: ctx.logScan.maxRange } : {}) }).catch((error: unknown) => {
        // The re-read is a hint like the recorded event: a failed read leaves the recorded answer's refusal standing.
        logger.warn({ requestId: request.requestId.toString(), error: (error as Error).message.split('\n')[0] }, 'could not read the request\'s Onboarded logs again')
        return []
      })
      for (const log of logs) {
        if (received) break
        if (log.args.requestId !== request.requestId || !log.blockHash || !log.transactionHash) continue
        await attempt({ responseBlobHash: log.args.responseBlobHash as Hex, index: log.args.index as bigint, blockNumber: log.blockNumber!, blockHash: log.blockHash, transactionHash: log.transactionHash })
      }
    }
    if (!received) throw refused
    const chainGeneration = proven.master.generation
    const secret = received.at(-1)!.secret
    for (const r of received.slice(0, -1)) keyring.add(Number(r.generation), r.secret)
    // Sealed first, the registration closed only once the confirmation is mined: a crash in between leaves a ready node
    // with an open registration, which joinAsMember finishes (auto mode at once; POST /member), sending the same
    // confirmOnboard at most once (docs/protocol.md#node-state, crash safety).
    becomeReady(secret, Number(chainGeneration))
    newcomerRefusal = undefined
    kill('complete.secret-sealed')
    await rotation.catchUp(proven.header).catch(() => undefined)
    const receiptDigest = onboardReceiptDigest({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      requestId: request.requestId,
      xPub: proven.master.xPub,
    })
    const signature = bytesToHex(signDigest(receiptDigest, secretKey))
    const outcome = await submitOnce('confirmOnboard', registry.calldata.confirmOnboard(request.requestId, signature))
    stores.registrations.setStatus(registration.address, 'completed', ctx.now())
    kill('member.registration-completed')
    // The registration key stays: it is this node's node key from now on (docs/protocol.md#members-and-node-keys).
    keyring.setNodeKey({ memberId: request.requestId, address: registration.address, secretKey })
    ephemeralKeys.delete(enckey.toLowerCase())
    return { state, xPub: secret.address, generation, requestId: request.requestId.toString(), confirm: outcome }
  }

  // ---- help (docs/protocol.md#help) -------------------------------------------------------------------------

  /** `rlp([[g, M_g], ...])` of every generation held and not purged (docs/protocol.md#onboarding-across-generations). */
  function secretsPlaintext(): Uint8Array {
    const gens = keyring.held().filter((g) => !keyring.facts(g)?.purged && g <= generation)
    const copies: { generation: bigint; secret: Uint8Array }[] = []
    try {
      for (const g of gens) keyring.get(g)!.exportForSealing((bytes) => copies.push({ generation: BigInt(g), secret: bytes.slice() }))
      return encodeSecretsList(copies)
    } finally {
      for (const c of copies) c.secret.fill(0)
    }
  }

  /**
   * Before answering: the verified chain must not be mid-proposal (the contract refuses answers then) and this node
   * must hold every unpurged generation, so a newcomer never gets a partial set. Both are transient, not refusals.
   */
  async function checkHeldGenerations(header: ViewHeader): Promise<void> {
    const { rotation: r } = await rotation.readRotation(header)
    if (r.proposalPending) throw new KeymanagerError('conflict', `proposal_pending: a rotation proposal is pending; onboarding waits for its commit`)
    await rotation.catchUp(header)
    for (let g = 1; g <= Number(r.generation); g++) {
      if (keyring.facts(g)?.purged) continue
      if (!keyring.get(g)) throw new KeymanagerError('conflict', `missing_generation: this node does not hold generation ${g}; another helper must answer`)
    }
    if (generation !== Number(r.generation)) throw new KeymanagerError('conflict', `this node serves generation ${generation}, the verified chain is at ${r.generation}`)
  }

  /** The freshness purpose of the decision on one batch: only it takes a mark made ahead for that batch. */
  const helpPurpose = (batch: bigint) => `help:${batch}`

  /**
   * A verified view this decision may use: the freshness rule (src/chain/view/freshness.ts). With a gas key the node
   * sends its mark and waits; without one it hands the mark to the host and decides on a later call, once the view
   * proves it (each mark serves one decision).
   */
  async function freshView(
    purpose: string,
    options: { minBlock?: bigint; batch?: bigint } = {},
  ): Promise<FreshView | { needsMark: { to: Address; data: Hex; chainId: number } }> {
    if (ctx.walletClient && ctx.outbox)
      return ctx.freshness.requireFreshView(
        async (mark) => {
          const outcome = await submit('markFresh', registry.calldata.markFresh(mark))
          return outcome.sent ? BigInt(outcome.blockNumber) : undefined
        },
        // A mark made ahead for this batch (markAhead) is taken; any other decision makes its own.
        { purpose: options.batch === undefined ? purpose : helpPurpose(options.batch), ...(options.minBlock === undefined ? {} : { minBlock: options.minBlock }) },
      )
    const got = await ctx.freshness.hostMark(purpose)
    if (!('needsMark' in got)) return got
    return { needsMark: { to: ctx.registryAddress, data: registry.calldata.markFresh(got.needsMark), chainId: ctx.chainId } }
  }

  /**
   * Decisions about requests that expired on chain (mined more than requestTtl blocks before the verified head) are
   * dropped, fulfilled ones excepted, and so are the watcher's rows of those never answered (each requester's latest
   * kept), so a flood of bad requests leaves at most one TTL's worth of rows
   * (docs/protocol.md#limits). Housekeeping only: a failure is logged, never a decision's.
   */
  async function pruneExpiredDecisions(header: ViewHeader): Promise<void> {
    try {
      const ttl = (await ctx.chainView.read(header, { policy: true })).requestTtl()
      const pruned = stores.requests.pruneExpired(header.blockNumber - ttl)
      if (pruned > 0) logger.info({ pruned }, 'dropped decisions about expired requests')
      const forgotten = stores.cursor.pruneExpired(header.blockNumber - ttl)
      if (forgotten > 0) logger.info({ forgotten }, 'forgot expired requests nobody answered')
    } catch (error) {
      logger.warn({ error: (error as Error).message }, 'could not prune decisions about expired requests')
    }
  }

  function recordRefusal(request: OnboardRequest, refusal: Refusal): HelpResult {
    stores.requests.record({
      requestId: request.requestId,
      requester: request.requester,
      blockNumber: request.blockNumber,
      decision: 'refused',
      reason: refusal.reason,
      message: refusal.message,
      measurementId: refusal.measurementId,
      settingsDigest: refusal.settingsDigest,
      fulfillTx: null,
      decidedAt: ctx.now(),
    })
    logger.warn({ requestId: request.requestId.toString(), reason: refusal.reason }, `refused: ${refusal.message}`)
    return { requestId: request.requestId, decision: 'refused', reason: refusal.reason, message: refusal.message }
  }

  /** A failure of the verified view is a refusal with its own reason; anything else is thrown (transient). */
  function asRefusal(error: unknown): Refusal {
    if (error instanceof Refusal) return error
    if (error instanceof ChainViewError) return new Refusal(error.reason, error.shortMessage)
    throw error
  }

  /**
   * Sends the freshness mark of this node's decision on `batch` now (auto mode: the designated helper, when it first sees
   * the batch; src/chain/view/freshness.ts `markAhead`): only `help(…, { batch })` takes it. Resolves once it is
   * broadcast; false when there is nothing to do (not ready, no gas key, a mark for this batch still pending). Never a
   * decision by itself: `help` still waits for the view to prove it.
   */
  async function markAhead(batch: bigint): Promise<boolean> {
    if (state !== 'ready' || !ctx.walletClient || !ctx.outbox) return false
    let sent = false
    await ctx.freshness.markAhead(helpPurpose(batch), async (mark) => {
      const { id } = await ctx.outbox!.send({ label: 'markFresh', to: ctx.registryAddress, data: registry.calldata.markFresh(mark) })
      sent = true
      return { mined: ctx.outbox!.waitForReceipt(id).then((r) => (r.status === 'success' ? r.blockNumber : undefined)) }
    })
    return sent
  }

  /**
   * Judges requests on one fresh verified view and fulfils every accepted one in a single blob and `fulfillOnboard`
   * transaction. Nothing is encrypted to a request before the view proves this decision's freshness mark.
   */
  async function help(asked: OnboardRequest[], options: { batch?: bigint } = {}): Promise<HelpResult[]> {
    if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', 'node is not ready')
    // A request this node already answered in a stored, unmined fulfillOnboard is not judged again: its answer is
    // waited for (docs/protocol.md#node-state, crash safety). One that reverted is judged like any other.
    const inFlight = fulfilsInFlight()
    const resumed: HelpResult[] = []
    for (const request of asked.filter((r) => inFlight.has(r.requestId))) {
      const receipt = await ctx.outbox!.waitForReceipt(inFlight.get(request.requestId)!)
      if (receipt.status !== 'success') continue
      recordFulfilled(request, null, null, receipt.hash)
      resumed.push({ requestId: request.requestId, decision: 'fulfilled', tx: { sent: true, txHash: receipt.hash, blockNumber: receipt.blockNumber.toString() } })
    }
    const requests = asked.filter((r) => !resumed.some((done) => done.requestId === r.requestId))
    if (requests.length === 0) return resumed
    let fresh: FreshView
    try {
      // Every request judged must be in the view (a mark made ahead can precede some of them: markAhead).
      const newest = requests.reduce((max, r) => (r.blockNumber > max ? r.blockNumber : max), 0n)
      const got = await freshView('help', { minBlock: newest, ...(options.batch === undefined ? {} : { batch: options.batch }) })
      if ('needsMark' in got) {
        const message = 'send this freshness mark transaction, then ask again once it is mined'
        return [...resumed, ...requests.map((r) => ({ requestId: r.requestId, decision: 'needs_mark' as const, tx: got.needsMark, message }))]
      }
      fresh = got
    } catch (error) {
      const refusal = asRefusal(error)
      return [...resumed, ...requests.map((request) => recordRefusal(request, refusal))]
    }
    // Transient, not refusals: mid-proposal, or a generation this node lacks (on the same fresh view).
    await checkHeldGenerations(fresh.header)
    try {
      // The key this node would hand out must still be the registry's master key in the verified chain.
      const proven = (await ctx.chainView.read(fresh.header, { master: true })).master()
      if (proven.xPub.toLowerCase() !== master.address.toLowerCase() || Number(proven.generation) !== generation)
        throw new Refusal('master_key_changed', `the verified chain's master key is ${proven.xPub} (generation ${proven.generation}), not this node's`)
    } catch (error) {
      const refusal = asRefusal(error)
      return [...resumed, ...requests.map((request) => recordRefusal(request, refusal))]
    }
    const results: HelpResult[] = [...resumed]
    const accepted: Array<{ request: OnboardRequest } & Awaited<ReturnType<typeof judge>>> = []
    const failures: unknown[] = []
    for (const request of requests) {
      try {
        accepted.push({ request, ...(await judge(request, fresh)) })
      } catch (error) {
        if (error instanceof Refusal || error instanceof ChainViewError) {
          results.push(recordRefusal(request, asRefusal(error)))
          continue
        }
        // One request that cannot be judged now (an RPC or blob source failing) never fails the others: it is left
        // undecided (nothing recorded), so a later round judges it again.
        failures.push(error)
        logger.warn({ requestId: request.requestId.toString(), error: (error as Error).message }, 'request not judged this round')
        results.push({ requestId: request.requestId, decision: 'refused', reason: TEMPORARILY_UNAVAILABLE, message: (error as Error).message })
      }
    }
    await pruneExpiredDecisions(fresh.header)
    // A lone request that could not be judged keeps its error (the host API answers it as such).
    if (failures.length > 0 && failures.length === requests.length) throw failures[0]
    // Not a decision about M: the RPC's newest state (a hint) spares a fulfillOnboard that would revert because another
    // helper answered while this one waited for its verified view, which trails the chain by finality. Skipping is
    // always safe; a lying RPC can only make this helper skip, which it could as well by not relaying its transaction.
    // A request answered under an older generation counts as unanswered (it is answered again with every generation).
    const unanswered = await Promise.all(
      accepted.map(({ request }) =>
        registry.getRequest(request.requestId).then(
          async (r) => r.status === 'pending' || (r.status === 'fulfilled' && (await generationsClient.requestGeneration(request.requestId)) < BigInt(generation)),
          () => true,
        ),
      ),
    )
    for (const [i, { request }] of accepted.entries()) {
      if (unanswered[i]) continue
      logger.info({ requestId: request.requestId.toString() }, 'another helper answered meanwhile; not sending')
      results.push({ requestId: request.requestId, decision: 'refused', reason: 'already_fulfilled', message: `request ${request.requestId} was answered meanwhile (the RPC shows it; nothing sent)` })
    }
    accepted.splice(0, accepted.length, ...accepted.filter((_, i) => unanswered[i]))
    if (accepted.length === 0) return results
    const gen = BigInt(generation)
    // docs/protocol.md#onboarding-across-generations: the newcomer gets every generation this node holds that is not
    // purged (checkHeldGenerations made sure that is every unpurged one).
    const plaintext = secretsPlaintext()
    const entries = accepted.map(({ request, pubkey64 }) => ({
      requestId: request.requestId,
      ciphertext: eciesEncrypt(
        concatBytes([new Uint8Array([4]), pubkey64]),
        plaintext,
        onboardAad({ chainId: ctx.chainId, registry: ctx.registryAddress, requestId: request.requestId, generation: gen }),
      ),
    }))
    plaintext.fill(0)
    // An answer is one blob (docs/protocol.md#blob-envelope): the signature binds blobhash(0) and the newcomer reads
    // blob 0. Requests whose entries do not fit are left undecided, for a later round.
    const fit = onboardEntriesInOneBlob(gen, entries)
    for (const { request } of accepted.slice(fit)) {
      logger.info({ requestId: request.requestId.toString() }, 'the answer is full (one blob); this request waits for a later round')
      results.push({ requestId: request.requestId, decision: 'refused', reason: TEMPORARILY_UNAVAILABLE, message: 'the answer is full (one blob per answer): answered in a later round' })
    }
    accepted.splice(fit)
    entries.splice(fit)
    if (accepted.length === 0) return results
    const blobs = envelopeToBlobs({ kind: 'onboard', generation: gen, entries })
    if (blobs.length !== 1) throw new Error(`an onboard answer must be one blob, got ${blobs.length}`)
    // The signature covers blobhash(0) of the fulfill tx, so it is computed from the blob before sending.
    const responseBlobHash = bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blobs[0]!))))
    archive(responseBlobHash, hexToBytes(blobs[0]!))
    kill('help.response-archived')
    const requestIds = accepted.map(({ request }) => request.requestId)
    const signature = master.signDigest(
      onboardResponseDigest({ chainId: ctx.chainId, registry: ctx.registryAddress, requestIds, responseBlobHash, generation: gen }),
    )
    const outcome = await submit('fulfillOnboard', registry.calldata.fulfillOnboard(requestIds, bytesToHex(signature)), blobs)
    for (const { request, measurementId, settingsDigest, blob, collateral, judgedAt } of accepted) {
      if (blob) archive(request.quoteBlobHash, blob)
      if (collateral) keepCollateral(request.quoteBlobHash, collateral, judgedAt)
      stores.requests.record({
        requestId: request.requestId,
        requester: request.requester,
        blockNumber: request.blockNumber,
        decision: outcome.sent ? 'fulfilled' : 'pending',
        reason: null,
        message: outcome.sent ? null : 'response handed to the host to send',
        measurementId,
        settingsDigest,
        fulfillTx: outcome.sent ? outcome.txHash : null,
        decidedAt: ctx.now(),
      })
      logger.info({ requestId: request.requestId.toString(), requester: request.requester }, 'request fulfilled')
      results.push({ requestId: request.requestId, decision: 'fulfilled', tx: outcome })
    }
    kill('help.recorded')
    return results
  }

  /** Records a fulfilled answer found in the outbox after a restart (the quote's facts were recorded, if at all, before). */
  function recordFulfilled(request: OnboardRequest, measurementId: Hex | null, settingsDigest: Hex | null, txHash: Hex) {
    stores.requests.record({
      requestId: request.requestId,
      requester: request.requester,
      blockNumber: request.blockNumber,
      decision: 'fulfilled',
      reason: null,
      message: 'answer stored before a restart, mined after it',
      measurementId,
      settingsDigest,
      fulfillTx: txHash,
      decidedAt: ctx.now(),
    })
  }

  /** `/helper/:addr`: a request id, or the newcomer's address (its latest request). */
  async function helpByRef(ref: { requestId: bigint } | { requester: Address }): Promise<HelpResult> {
    const lookup = () => ('requestId' in ref ? stores.cursor.request(ref.requestId) : stores.cursor.latestRequestBy(ref.requester))
    let request = lookup()
    if (!request && ctx.syncChain) {
      await ctx.syncChain()
      request = lookup()
    }
    if (!request) throw new KeymanagerError('not_found', 'no onboarding request matches')
    const [result] = await help([request])
    return result!
  }

  async function status() {
    const registration = stores.registrations.latestOpen()
    return {
      state,
      xPub: master?.address ?? pendingMaster?.address ?? null,
      generation,
      generations: generations(),
      memberId: keyring.nodeKey?.memberId.toString() ?? null,
      registry: ctx.registryAddress,
      chainId: ctx.chainId,
      settingsDigest: ctx.settingsDigest,
      fingerprint: master?.fingerprint ?? null,
      quoteProvider: ctx.quoteProvider.name,
      sealProvider: ctx.seal.name,
      registration: registration
        ? {
            enckey: registration.address,
            requestId: registration.requestId?.toString() ?? null,
            status: registration.status,
            lastRefusal: newcomerRefusal ?? null,
          }
        : null,
      chainView: ctx.chainView.status(),
      requests: stores.requests.recent(50).map((r) => ({
        requestId: r.requestId.toString(),
        requester: r.requester,
        decision: r.decision,
        reason: r.reason,
        message: r.message,
        measurementId: r.measurementId,
        settingsDigest: r.settingsDigest,
        fulfillTx: r.fulfillTx,
      })),
    }
  }

  // ---- guardian escrow and recovery (docs/protocol.md#guardians, docs/protocol.md#recovery) ----------------------

  const escrow = createEscrow({
    chainId: ctx.chainId,
    registryAddress: ctx.registryAddress,
    view: ctx.chainView,
    generations: generationsClient,
    keyring,
    logger,
    fresh,
    viewAt,
    submit: (label, data) => submit(label, data),
    confirmCalldata: (requestId, signature) => registry.calldata.confirmOnboard(requestId, signature),
  })

  /**
   * A fresh enclave whose request is the open recovery reassembles every escrowed generation from the shares guardians
   * released to its key (src/node/escrow.ts), seals them, becomes ready and confirms its request: it is then a member,
   * and a helper for the next nodes. Pending (nothing kept) until k valid shares of each generation are on chain.
   */
  async function recover(enckey: Address): Promise<RecoveryResult> {
    const registration = stores.registrations.get(enckey)
    if (!registration) throw new KeymanagerError('not_found', `no registration of this node has the key ${enckey}`)
    if (state === 'ready') {
      // Recovered before, and the confirmation did not land (a host that dropped it, a proposal pending then): the same
      // receipt again, while the verified chain still shows the request pending and the open recovery.
      const nodeKey = keyring.nodeKey
      if (!master || !nodeKey || nodeKey.address.toLowerCase() !== registration.address.toLowerCase()) throw new KeymanagerError('conflict', 'node is already ready')
      return escrow.reconfirm({ requestId: nodeKey.memberId, address: nodeKey.address, secretKey: nodeKey.secretKey }, generation)
    }
    const secretKey = ephemeralKeys.get(enckey.toLowerCase()) ?? (registration.sealedKey ? ctx.seal.unseal(registration.sealedKey, sealLabel.ephemeral(registration.address)) : undefined)
    if (!secretKey) throw new KeymanagerError('conflict', 'the key of this registration is gone (node restarted with seal none); register again and ask the owner to recover that request')
    let requestId = registration.requestId
    if (requestId === null) {
      await ctx.syncChain?.()
      const request = stores.cursor.latestRequestBy(registration.address)
      if (!request) throw new KeymanagerError('conflict', 'no onboarding request for this key is on chain yet')
      stores.registrations.markRequested(registration.address, request.requestId, request.transactionHash, ctx.now())
      requestId = request.requestId
    }
    const memberId = requestId
    const result = await escrow.recover({ requestId, address: registration.address, secretKey }, (secrets, current) => {
      for (const { generation: g, secret } of secrets) if (g !== current) keyring.add(g, secret)
      stores.registrations.setStatus(registration.address, 'completed', ctx.now())
      becomeReady(secrets.find((s) => s.generation === current)!.secret, current)
      // The request key stays: it is this node's node key from now on (docs/protocol.md#members-and-node-keys).
      keyring.setNodeKey({ memberId, address: registration.address, secretKey })
      ephemeralKeys.delete(enckey.toLowerCase())
    })
    if (result.state === 'recovered') await rotation.catchUp().catch(() => undefined)
    return result
  }

  /** Rotation steps need a ready node; a verified-view failure is a KeymanagerError the caller can show. */
  async function guarded<T>(fn: () => Promise<T>): Promise<T> {
    if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', `node is ${state}`)
    return fn()
  }

  function stop() {
    keyring.expireAll()
    master?.expire()
    pendingMaster?.expire()
    for (const key of ephemeralKeys.values()) key.fill(0)
    ephemeralKeys.clear()
  }

  return {
    get state() {
      return state
    },
    get generation() {
      return generation
    },
    /** The master secret holder, once ready. */
    master(): MasterSecret {
      if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', `node is ${state}`)
      return master
    },
    start,
    bootstrap,
    register,
    joinAsMember,
    confirmAgainIfLost,
    dropLostRegistration,
    markAhead,
    generations,
    masterOf,
    get memberId() {
      return keyring.nodeKey?.memberId ?? null
    },
    rotation: {
      propose: (options?: { supersede?: boolean }) => guarded(() => rotation.propose(options)),
      acknowledge: () => guarded(() => rotation.acknowledge()),
      commit: () => guarded(() => rotation.commit()),
      catchUp: () => guarded(() => rotation.catchUp()),
      status: () => guarded(() => rotation.status()),
      refusedProposal: (proposal: bigint) => rotation.refused.get(proposal),
    },
    complete,
    recover,
    /** Escrows every held generation to the active guardian set (POST /escrow). */
    publishEscrow: () => guarded(() => escrow.publish()),
    /** The active guardian set and the held generations not escrowed to it, at the view's newest header (a hint). */
    escrowNeeded: () => guarded(() => escrow.needed()),
    help,
    /** The requester has spent its refusal budget for now (docs/protocol.md#limits): its requests wait. */
    overBudget: (requester: Address) => judge.overBudget(requester),
    helpByRef,
    status,
    stop,
  }
}
export type KeymanagerNode = ReturnType<typeof createNode>
