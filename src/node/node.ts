import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, concatBytes, decodeFunctionData, hexToBytes, type Address, type Hex } from 'viem'
import { envelopeToBlobs, blobsToEnvelope, type Envelope } from '../chain/envelope.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { EnvelopeError } from '../chain/errors.ts'
import { BlobHashMismatchError } from '../chain/beacon.ts'
import { fetchVerifiedBlobsWithFallback } from '../chain/peerBlobs.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../chain/kzg.ts'
import { requestCommitment, type OnboardRequest } from '../chain/registry.ts'
import { KeymanagerError } from '../errors.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { eciesDecrypt, eciesEncrypt, onboardAad } from '../keys/ecies.ts'
import { decodeSecretsList, encodeSecretsList, SecretsListError } from '../keys/secretsList.ts'
import { createGenerationsClient } from '../chain/generations.ts'
import type { ViewHeader } from '../chain/view/chainView.ts'
import { ChainViewError } from '../chain/view/errors.ts'
import { createKeyring, sealLabel } from './keyring.ts'
import { createRotation, RotationRefusal } from './rotation.ts'
import { bootstrapReportData, registerReportData } from '../keys/reportData.ts'
import { addressOfPublicKey, compressPublicKey, signDigest } from '../keys/signature.ts'
import { onboardReceiptDigest, onboardResponseDigest } from '../keys/typedData.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { checkPolicy } from '../tee/policy.ts'
import { QuoteVerificationError } from '../tee/types.ts'
import type { NodeContext, TxOutcome } from './context.ts'
import { noKill } from './killPoints.ts'
import type { Registration } from '../store/registrations.ts'

export type NodeState = 'uninitialized' | 'bootstrapping' | 'registering' | 'ready'

/** What a helper decided about one request (docs/protocol.md#help). */
export type HelpResult =
  | { requestId: bigint; decision: 'fulfilled'; tx: TxOutcome }
  | { requestId: bigint; decision: 'refused'; reason: string; message: string }

/** One generation as pods see it (`GET /generations`, docs/protocol.md#http-api). */
export type GenerationView = { generation: number; xPub: Address; current: boolean; revoked: boolean; purged: boolean; retiresAt: number; held: boolean }

/** A refusal: the request is bad, and the reason is recorded. Transient failures are thrown as other errors. */
class Refusal extends KeymanagerError {
  override name = 'Refusal'
  constructor(
    readonly reason: string,
    message: string,
    /** Known once the quote verified: recorded so an auditor sees which build was refused. */
    readonly measurementId: Hex | null = null,
    /** Known once the envelope decoded: the settings the newcomer claims to run with. */
    readonly settingsDigest: Hex | null = null,
  ) {
    super('unprocessable', message)
  }
}

export function createNode(ctx: NodeContext) {
  const { registry, stores, logger } = ctx
  /** Test-only crash hook (src/node/killPoints.ts): a no-op in every normal run. */
  const kill = ctx.killPoint ?? noKill
  let state: NodeState = 'uninitialized'
  let master: MasterSecret | undefined
  let generation = 0
  let pendingMaster: MasterSecret | undefined
  const keyring = createKeyring({ seal: ctx.seal, sealedSecrets: stores.sealedSecrets, meta: stores.meta, logger, now: ctx.now })
  const generationsClient = createGenerationsClient({ publicClient: ctx.publicClient, address: ctx.registryAddress })
  /** Ephemeral registration keys by address; the only copy when the seal provider is `none`. */
  const ephemeralKeys = new Map<string, Uint8Array>()

  function becomeReady(secret: MasterSecret, gen: number) {
    keyring.add(gen, secret)
    keyring.setCurrent(gen)
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

  /** The verified view once it reached `block` (default: the RPC's head, a hint: a lie only makes this time out). */
  async function viewAt(block?: bigint): Promise<ViewHeader> {
    const target = block ?? (await ctx.publicClient.getBlockNumber({ cacheTime: 0 }))
    return ctx.chainView.waitForBlock(target, { timeoutMs: ctx.viewWaitMs, pollMs: ctx.viewPollMs })
  }

  /**
   * A verified view proven to include a random mark made for this decision (docs/protocol.md#verified-chain-view,
   * freshness): the node sends `markFresh(mark)` and decides only once its view proves the mark's slot.
   */
  async function fresh(): Promise<ViewHeader> {
    const mark = bytesToHex(secp256k1.utils.randomSecretKey())
    const outcome = await submit('markFresh', registry.calldata.markFresh(mark))
    if (!outcome.sent) throw new ChainViewError('stale_chain_view', 'this decision needs a freshness mark and the node has no gas key to send it')
    const deadline = performance.now() + (ctx.viewWaitMs)
    for (;;) {
      const header = await viewAt(BigInt(outcome.blockNumber))
      if ((await ctx.chainView.read(header, { marks: [mark] })).markedAt(mark) !== 0n) return header
      if (performance.now() > deadline) throw new ChainViewError('stale_chain_view', `the verified chain view did not prove the freshness mark within ${ctx.viewWaitMs} ms`)
      await new Promise((r) => setTimeout(r, ctx.viewPollMs))
    }
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
  })

  async function chainMaster(): Promise<{ xPub: Address; generation: number }> {
    const [xPub, gen] = await Promise.all([registry.xPub(), registry.generation()])
    return { xPub, generation: Number(gen) }
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
    for (const entry of ctx.outbox.entries()) {
      if (entry.label !== 'fulfillOnboard' || (entry.status !== 'signed' && entry.status !== 'sent')) continue
      const call = decodeFunctionData({ abi: keyManagerAbi, data: entry.params.data })
      if (call.functionName !== 'fulfillOnboard') continue
      for (const id of call.args[0]) found.set(id, entry.id)
    }
    return found
  }

  /** Keeps blobs this node made, so peers can fetch them from its archive once beacon nodes have pruned them. */
  function archiveOwn(blobs: readonly Hex[]): void {
    for (const blob of blobs) {
      const bytes = hexToBytes(blob)
      stores.blobs.put(bytesToHex(commitmentToVersionedHash(blobToCommitment(bytes))), bytes, ctx.now())
    }
  }

  async function fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<Envelope> {
    let blob = stores.blobs.get(versionedHash)
    if (!blob) {
      const block = await ctx.publicClient.getBlock({ blockNumber: at.blockNumber })
      const [fetched] = await fetchVerifiedBlobsWithFallback([ctx.blobSource, ...(ctx.peerBlobSources ?? [])], {
        blockNumber: at.blockNumber,
        blockHash: at.blockHash,
        blockTimestamp: block.timestamp,
        versionedHashes: [versionedHash],
      }, ctx.observeBlobFetch)
      if (!fetched) throw new KeymanagerError('upstream_failed', `blob ${versionedHash} not returned`)
      blob = fetched
      stores.blobs.put(versionedHash, blob, ctx.now())
    }
    return blobsToEnvelope([bytesToHex(blob)])
  }

  // ---- start-up -------------------------------------------------------------------------------------------

  /** Restores a sealed master secret or pending work and checks it against the chain. */
  async function start(): Promise<void> {
    const onChain = await chainMaster()
    const sealedRows = keyring.loadSealed()
    if (sealedRows.length > 0) {
      // Every sealed generation is checked against its key in the verified chain; the newest is served until catchUp
      // (below) finds the chain's current one (a restart in the middle of a rotation resumes there).
      const header = await viewAt()
      const proven = await ctx.chainView.read(header, { master: true, generations: sealedRows.map((r) => BigInt(r.generation)) })
      for (const { generation: g, secret } of sealedRows) {
        if (secret.address.toLowerCase() !== proven.generation(BigInt(g)).xPub.toLowerCase()) {
          for (const row of sealedRows) row.secret.expire()
          throw new Error(`sealed master secret (generation ${g}) does not match the registry's master key`)
        }
        keyring.add(g, secret, { sealed: true })
      }
      restoreNodeKey()
      keyring.loadProposed()
      // A crash after the bootstrap's generation was sealed and before the pending copy was cleared leaves both.
      if (stores.meta.get('pending_master')) stores.meta.put('pending_master', '')
      abandonUnsentRegistration()
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
    abandonUnsentRegistration()
    const open = stores.registrations.latestOpen()
    if (open && open.sealedKey) {
      ephemeralKeys.set(open.address.toLowerCase(), ctx.seal.unseal(open.sealedKey, sealLabel.ephemeral(open.address)))
      state = 'registering'
    }
  }

  /**
   * A registration stored before its `requestOnboard` was (the node died in between, kill point register.key-sealed)
   * can never reach the chain: no node signed its tx. It is expired so the node registers afresh, once. Only a node
   * that sends its own txs knows this; a registration handed to the host stays open.
   */
  function abandonUnsentRegistration() {
    const open = stores.registrations.latestOpen()
    if (!open || open.status !== 'prepared' || !ctx.walletClient || !ctx.outbox) return
    const data = registry.calldata.requestOnboard(open.pubkey64, open.refBlockNumber)
    if (ctx.outbox.findSame('requestOnboard', data)) return
    stores.registrations.setStatus(open.address, 'expired', ctx.now())
    logger.warn({ enckey: open.address }, 'a registration whose request was never signed (the node stopped in between) is dropped; the node registers again')
  }

  /** The node key: the key of the registration this node became a member with (docs/protocol.md#members-and-node-keys). */
  function restoreNodeKey() {
    const done = stores.registrations.latestCompleted()
    if (!done || done.requestId === null || !done.sealedKey) return
    keyring.setNodeKey({ memberId: done.requestId, address: done.address, secretKey: ctx.seal.unseal(done.sealedKey, sealLabel.ephemeral(done.address)) })
  }

  // ---- bootstrap (docs/protocol.md#bootstrap) --------------------------------------------------------------------

  async function finishBootstrapIfOnChain(): Promise<boolean> {
    if (!pendingMaster) return false
    const onChain = await chainMaster()
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
    const onChain = await chainMaster()
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
    const onChain = await chainMaster()
    if (onChain.generation === 0) throw new KeymanagerError('conflict', 'the registry is not bootstrapped yet')
    const result = await requestOnboarding()
    state = 'registering'
    return { state, ...result }
  }

  /** A new key pair, a quote binding it, and `requestOnboard` (docs/protocol.md#register). */
  async function requestOnboarding() {
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
      requestId = registry.requestIdFromReceipt(await ctx.publicClient.getTransactionReceipt({ hash: outcome.txHash }), address) ?? null
      stores.registrations.markRequested(address, requestId, outcome.txHash, ctx.now())
      kill('register.requested')
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
    if (onChain.status === 'pending') {
      const [result] = await help([request])
      if (result?.decision !== 'fulfilled') {
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

  async function complete(enckey: Address) {
    if (state === 'ready') throw new KeymanagerError('conflict', 'node is already ready')
    const registration = stores.registrations.get(enckey)
    if (!registration) throw new KeymanagerError('not_found', `no registration of this node has the key ${enckey}`)
    const secretKey = ephemeralKeys.get(enckey.toLowerCase())
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
    const envelope = await fetchEnvelope(onboarded.responseBlobHash, onboarded)
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
      if (error instanceof SecretsListError) throw new KeymanagerError('upstream_failed', `the onboarding response is not a secrets list: ${error.message}`)
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
    // the verified chain, and the newest must be the current one the response was made under.
    const header = await viewAt(onboarded.blockNumber)
    const chainGeneration = (await ctx.chainView.read(header, { master: true })).master().generation
    const all = Array.from({ length: Number(chainGeneration) }, (_, i) => BigInt(i + 1))
    const proven = await ctx.chainView.read(header, { master: true, generations: all })
    const expected = all.filter((g) => !proven.generation(g).purged)
    const got = received.map((r) => r.generation)
    if (envelope.generation !== chainGeneration || got.length !== expected.length || got.some((g, i) => g !== expected[i])) {
      dropAll()
      throw new KeymanagerError('upstream_failed', `the onboarding response holds generations ${got.join(',')}, the verified chain has unpurged ${expected.join(',')} (current ${chainGeneration})`)
    }
    for (const { generation: g, secret } of received)
      if (secret.address.toLowerCase() !== proven.generation(g).xPub.toLowerCase()) {
        dropAll()
        throw new KeymanagerError('upstream_failed', `the decrypted secret of generation ${g} is not that generation's master key`)
      }
    const onChain = { xPub: proven.master().xPub, generation: Number(chainGeneration) }
    const secret = received.at(-1)!.secret
    for (const r of received.slice(0, -1)) keyring.add(Number(r.generation), r.secret)
    // Sealed first, the registration closed only once the confirmation is mined: a crash in between leaves a ready node
    // with an open registration, which joinAsMember finishes (auto mode at once; POST /member), sending the same
    // confirmOnboard at most once (docs/protocol.md#node-state, crash safety).
    becomeReady(secret, onChain.generation)
    kill('complete.secret-sealed')
    await rotation.catchUp(header).catch(() => undefined)
    const receiptDigest = onboardReceiptDigest({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      requestId: request.requestId,
      xPub: onChain.xPub,
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

  async function judge(request: OnboardRequest): Promise<{ pubkey64: Uint8Array; measurementId: Hex; settingsDigest: Hex }> {
    const current = await ctx.publicClient.getBlockNumber({ cacheTime: 0 })
    const stored = await registry.getRequest(request.requestId)
    if (stored.status === 'none') throw new Refusal('unknown_request', `request ${request.requestId} is not on chain`)
    if (stored.status !== 'pending') throw new Refusal('already_fulfilled', `request ${request.requestId} is ${stored.status}`)
    if (stored.expiresAt <= current) throw new Refusal('expired', `request ${request.requestId} expired at block ${stored.expiresAt}`)
    if (stored.commitment !== requestCommitment(request))
      throw new Refusal('event_mismatch', 'the request event does not match the commitment stored on chain')
    let envelope: Envelope
    try {
      envelope = await fetchEnvelope(request.quoteBlobHash, request)
    } catch (error) {
      if (error instanceof BlobHashMismatchError) throw new Refusal('blob_hash_mismatch', error.message)
      if (error instanceof EnvelopeError) throw new Refusal('bad_envelope', error.message)
      throw error
    }
    if (envelope.kind !== 'register') throw new Refusal('bad_envelope', `expected a register envelope, got ${envelope.kind}`)
    const settingsDigest = bytesToHex(envelope.settingsDigest)
    const refuse = (reason: string, message: string, measurementId: Hex | null = null) => new Refusal(reason, message, measurementId, settingsDigest)
    if (!constantTimeEqual(envelope.pubkey64, hexToBytes(request.pubkey64)))
      throw refuse('pubkey_mismatch', 'the blob carries another public key than the request')
    if (envelope.refBlockNumber !== request.refBlockNumber || !constantTimeEqual(envelope.refBlockHash, hexToBytes(request.refBlockHash)))
      throw refuse('stale_reference', 'the quote was made for another reference block than the one recorded on chain')
    if (request.blockNumber - request.refBlockNumber > ctx.maxReferenceAge)
      throw refuse('stale_reference', `reference block ${request.refBlockNumber} is older than ${ctx.maxReferenceAge} blocks`)
    let verified
    try {
      verified = await ctx.quoteVerifier.verify(envelope.quote, { now: ctx.now() })
    } catch (error) {
      if (error instanceof QuoteVerificationError) throw refuse(error.reason, error.message)
      throw error
    }
    if (verified.teeType !== envelope.teeType) throw refuse('bad_envelope', 'envelope TEE type does not match the quote')
    // The newcomer's settingsDigest comes from its envelope: the quote binds it, and the allowed measurement vouches
    // for it (the measured settings file is part of the image, docs/protocol.md#measured-settings).
    const expected = registerReportData({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      pubkey64: envelope.pubkey64,
      refBlockNumber: request.refBlockNumber,
      refBlockHash: hexToBytes(request.refBlockHash),
      settingsDigest: envelope.settingsDigest,
    })
    if (!constantTimeEqual(verified.reportData, expected))
      throw refuse('report_data_mismatch', 'the quote does not bind this request (key, chain, registry, reference block or settings digest)', verified.measurementId)
    const policy = await registry.tcbPolicy()
    const decision = await checkPolicy(
      verified,
      {
        acceptedStatuses: policy.acceptedStatuses,
        maxCollateralAge: policy.maxCollateralAge,
        fmspcAllowlistOn: policy.fmspcAllowlistOn,
        minTcbEvaluationDataNumber: policy.minTcbEvaluationDataNumber,
        isFmspcAllowed: (fmspc: Hex) => registry.isFmspcAllowed(fmspc),
        isMeasurementAllowed: (id: Hex) => registry.isMeasurementAllowed(id),
      },
      ctx.now(),
    )
    if (!decision.ok) throw refuse(decision.reason, decision.message, verified.measurementId)
    return { pubkey64: envelope.pubkey64, measurementId: verified.measurementId, settingsDigest }
  }

  /** Judges requests and fulfils every accepted one in a single blob and `fulfillOnboard` transaction. */
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
  async function checkHeldGenerations(): Promise<void> {
    const header = await viewAt()
    const { rotation: r } = await rotation.readRotation(header)
    if (r.proposalPending) throw new KeymanagerError('conflict', `proposal_pending: a rotation proposal is pending; onboarding waits for its commit`)
    await rotation.catchUp(header)
    for (let g = 1; g <= Number(r.generation); g++) {
      if (keyring.facts(g)?.purged) continue
      if (!keyring.get(g)) throw new KeymanagerError('conflict', `missing_generation: this node does not hold generation ${g}; another helper must answer`)
    }
    if (generation !== Number(r.generation)) throw new KeymanagerError('conflict', `this node serves generation ${generation}, the verified chain is at ${r.generation}`)
  }

  async function help(asked: OnboardRequest[]): Promise<HelpResult[]> {
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
    await checkHeldGenerations()
    const results: HelpResult[] = [...resumed]
    const accepted: { request: OnboardRequest; pubkey64: Uint8Array; measurementId: Hex; settingsDigest: Hex }[] = []
    for (const request of requests) {
      try {
        accepted.push({ request, ...(await judge(request)) })
      } catch (error) {
        if (!(error instanceof Refusal)) throw error
        stores.requests.record({
          requestId: request.requestId,
          requester: request.requester,
          blockNumber: request.blockNumber,
          decision: 'refused',
          reason: error.reason,
          message: error.message,
          measurementId: error.measurementId,
          settingsDigest: error.settingsDigest,
          fulfillTx: null,
          decidedAt: ctx.now(),
        })
        logger.warn({ requestId: request.requestId.toString(), reason: error.reason }, `refused: ${error.message}`)
        results.push({ requestId: request.requestId, decision: 'refused', reason: error.reason, message: error.message })
      }
    }
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
    const blobs = envelopeToBlobs({ kind: 'onboard', generation: gen, entries })
    // The signature covers blobhash(0) of the fulfill tx, so it is computed from the blob before sending.
    const responseBlobHash = bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blobs[0]!))))
    stores.blobs.put(responseBlobHash, hexToBytes(blobs[0]!), ctx.now())
    if (blobs.length > 1) archiveOwn(blobs.slice(1))
    kill('help.response-archived')
    const requestIds = accepted.map(({ request }) => request.requestId)
    const signature = master.signDigest(
      onboardResponseDigest({ chainId: ctx.chainId, registry: ctx.registryAddress, requestIds, responseBlobHash, generation: gen }),
    )
    const outcome = await submit('fulfillOnboard', registry.calldata.fulfillOnboard(requestIds, bytesToHex(signature)), blobs)
    for (const { request, measurementId, settingsDigest } of accepted) {
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
        ? { enckey: registration.address, requestId: registration.requestId?.toString() ?? null, status: registration.status }
        : null,
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
    help,
    helpByRef,
    status,
    stop,
  }
}
export type KeymanagerNode = ReturnType<typeof createNode>
