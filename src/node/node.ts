import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, concatBytes, hexToBytes, type Address, type Hex } from 'viem'
import { envelopeToBlobs, blobsToEnvelope, type Envelope } from '../chain/envelope.ts'
import { EnvelopeError } from '../chain/errors.ts'
import { BlobHashMismatchError } from '../chain/beacon.ts'
import { fetchVerifiedBlobsWithFallback } from '../chain/peerBlobs.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../chain/kzg.ts'
import { requestCommitment, type OnboardRequest } from '../chain/registry.ts'
import { KeymanagerError } from '../errors.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { eciesDecrypt, onboardAad } from '../keys/ecies.ts'
import { bootstrapReportData, registerReportData } from '../keys/reportData.ts'
import { addressOfPublicKey, signDigest } from '../keys/signature.ts'
import { onboardReceiptDigest, onboardResponseDigest } from '../keys/typedData.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { checkPolicy } from '../tee/policy.ts'
import { QuoteVerificationError } from '../tee/types.ts'
import type { NodeContext, TxOutcome } from './context.ts'

export type NodeState = 'uninitialized' | 'bootstrapping' | 'registering' | 'ready'

/** What a helper decided about one request (docs/protocol.md#help). */
export type HelpResult =
  | { requestId: bigint; decision: 'fulfilled'; tx: TxOutcome }
  | { requestId: bigint; decision: 'refused'; reason: string; message: string }

// Labels bound into sealed data (AES-GCM associated data): a sealed blob is only accepted where it was made for.
const sealLabel = {
  master: (generation: number) => `keymanager.master.v1/${generation}`,
  pendingMaster: 'keymanager.master.pending.v1',
  ephemeral: (address: string) => `keymanager.registration.v1/${address.toLowerCase()}`,
}

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
  let state: NodeState = 'uninitialized'
  let master: MasterSecret | undefined
  let generation = 0
  let pendingMaster: MasterSecret | undefined
  /** Ephemeral registration keys by address; the only copy when the seal provider is `none`. */
  const ephemeralKeys = new Map<string, Uint8Array>()

  function becomeReady(secret: MasterSecret, gen: number) {
    master = secret
    generation = gen
    state = 'ready'
    logger.info({ xPub: secret.address, fingerprint: secret.fingerprint, generation: gen }, 'node ready')
  }

  function sealMaster(secret: MasterSecret, label: string): Uint8Array | undefined {
    if (!ctx.seal.persistent) return undefined
    return secret.exportForSealing((bytes) => ctx.seal.seal(bytes, label))
  }

  function persistMaster(secret: MasterSecret, gen: number) {
    const sealed = sealMaster(secret, sealLabel.master(gen))
    if (sealed) stores.sealedSecrets.insert({ generation: gen, xPub: secret.address, sealed, createdAt: ctx.now() })
  }

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
    const sealed = stores.sealedSecrets.latest()
    if (sealed) {
      const bytes = ctx.seal.unseal(sealed.sealed, sealLabel.master(sealed.generation))
      const secret = createMasterSecret(bytes)
      bytes.fill(0)
      if (secret.address.toLowerCase() !== onChain.xPub.toLowerCase() || sealed.generation !== onChain.generation) {
        secret.expire()
        throw new Error(`sealed master secret (generation ${sealed.generation}) does not match the registry's master key`)
      }
      becomeReady(secret, sealed.generation)
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
    const open = stores.registrations.latestOpen()
    if (open && open.sealedKey) {
      ephemeralKeys.set(open.address.toLowerCase(), ctx.seal.unseal(open.sealedKey, sealLabel.ephemeral(open.address)))
      state = 'registering'
    }
  }

  // ---- bootstrap (docs/protocol.md#bootstrap) --------------------------------------------------------------------

  async function finishBootstrapIfOnChain(): Promise<boolean> {
    if (!pendingMaster) return false
    const onChain = await chainMaster()
    if (onChain.generation === 0) return false
    if (onChain.xPub.toLowerCase() !== pendingMaster.address.toLowerCase()) {
      throw new KeymanagerError('conflict', `the registry was bootstrapped with another master key (${onChain.xPub}); use /register`)
    }
    persistMaster(pendingMaster, onChain.generation)
    stores.meta.put('pending_master', '')
    becomeReady(pendingMaster, onChain.generation)
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
    const data = registry.calldata.bootstrap(bytesToHex(pendingMaster.publicKey64))
    // bootstrap() is owner-only: the node sends it only when its gas key is the registry owner.
    const owner = await registry.owner()
    const canSend = ctx.walletClient && ctx.walletClient.account.address.toLowerCase() === owner.toLowerCase()
    if (!canSend) {
      return {
        state,
        xPub: pendingMaster.address,
        tx: { to: ctx.registryAddress, data, blobs, chainId: ctx.chainId },
        next: 'send tx from the registry owner, then POST /bootstrap again',
      }
    }
    const outcome = await submit('bootstrap', data, blobs)
    await finishBootstrapIfOnChain()
    return { state, xPub: master!.address, generation, ...outcome }
  }

  // ---- register (docs/protocol.md#register) ---------------------------------------------------------------------

  async function register() {
    if (state === 'ready') throw new KeymanagerError('conflict', 'node is already ready')
    if (state === 'bootstrapping') throw new KeymanagerError('conflict', 'node is bootstrapping; it cannot also register')
    const onChain = await chainMaster()
    if (onChain.generation === 0) throw new KeymanagerError('conflict', 'the registry is not bootstrapped yet')
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
    state = 'registering'
    const outcome = await submit('requestOnboard', registry.calldata.requestOnboard(bytesToHex(pubkey64), ref.number), blobs)
    let requestId: bigint | null = null
    if (outcome.sent) {
      // The id comes from the receipt's own OnboardRequested event, not from a log scan (docs/protocol.md#limits).
      requestId = registry.requestIdFromReceipt(await ctx.publicClient.getTransactionReceipt({ hash: outcome.txHash }), address) ?? null
      stores.registrations.markRequested(address, requestId, outcome.txHash, ctx.now())
    }
    logger.info({ address, requestId: requestId?.toString(), refBlock: ref.number.toString() }, 'registration prepared')
    return {
      state,
      enckey: address,
      pubkey64: bytesToHex(pubkey64),
      requestId: requestId?.toString() ?? null,
      ...(outcome.sent ? { txHash: outcome.txHash } : { tx: outcome.tx }),
    }
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
    let secretBytes: Uint8Array
    try {
      secretBytes = eciesDecrypt(secretKey, entry.ciphertext, aad)
    } catch {
      throw new KeymanagerError('upstream_failed', 'the onboarding response does not decrypt with this registration key')
    }
    const secret = createMasterSecret(secretBytes)
    secretBytes.fill(0)
    const onChain = await chainMaster()
    // docs/protocol.md#complete: accept the secret only if its public key is the master key on chain.
    if (secret.address.toLowerCase() !== onChain.xPub.toLowerCase() || BigInt(onChain.generation) !== envelope.generation) {
      secret.expire()
      throw new KeymanagerError('upstream_failed', 'the decrypted secret is not the registry master key')
    }
    persistMaster(secret, onChain.generation)
    stores.registrations.setStatus(registration.address, 'completed', ctx.now())
    becomeReady(secret, onChain.generation)
    const receiptDigest = onboardReceiptDigest({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      requestId: request.requestId,
      xPub: onChain.xPub,
    })
    const signature = bytesToHex(signDigest(receiptDigest, secretKey))
    secretKey.fill(0)
    ephemeralKeys.delete(enckey.toLowerCase())
    const outcome = await submit('confirmOnboard', registry.calldata.confirmOnboard(request.requestId, signature))
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
  async function help(requests: OnboardRequest[]): Promise<HelpResult[]> {
    if (state !== 'ready' || !master) throw new KeymanagerError('not_ready', 'node is not ready')
    const results: HelpResult[] = []
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
    const entries = accepted.map(({ request, pubkey64 }) => ({
      requestId: request.requestId,
      ciphertext: master!.encryptTo(
        concatBytes([new Uint8Array([4]), pubkey64]),
        onboardAad({ chainId: ctx.chainId, registry: ctx.registryAddress, requestId: request.requestId, generation: gen }),
      ),
    }))
    const blobs = envelopeToBlobs({ kind: 'onboard', generation: gen, entries })
    // The signature covers blobhash(0) of the fulfill tx, so it is computed from the blob before sending.
    const responseBlobHash = bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blobs[0]!))))
    stores.blobs.put(responseBlobHash, hexToBytes(blobs[0]!), ctx.now())
    if (blobs.length > 1) archiveOwn(blobs.slice(1))
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
    return results
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

  function stop() {
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
    complete,
    help,
    helpByRef,
    status,
    stop,
  }
}
export type KeymanagerNode = ReturnType<typeof createNode>
