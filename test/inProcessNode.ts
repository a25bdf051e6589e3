// A node in process, with injected fakes for the parts that cannot run here without a chain: the registry reads,
// the public client and the blob source answer from `FakeChain`, a map the test "mines" unsigned transactions into.
// Everything the node decides with is real: simulated TDX quotes from the devnet PKI through the production DCAP
// verifier, real KZG commitments, real envelopes, real ECIES and signatures, real SQLite. The node has no gas key, so
// it hands each transaction back unsigned (the host-driven mode), and the test applies it the way the contract would.
// The node reads requests and answers from its chain watcher's store (docs/protocol.md#limits); here the fake chain
// writes each mined event into the store of every node on it, as the watcher would.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import { bytesToHex, decodeFunctionData, hexToBytes, keccak256, type Address, type Hex, type PublicClient } from 'viem'
import { blobToCommitment, commitmentToVersionedHash } from '../src/chain/kzg.ts'
import { envelopeToBlobs, type Envelope } from '../src/chain/envelope.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient, requestCommitment, type OnboardRequest, type RegistryClient } from '../src/chain/registry.ts'
import type { BlobSource } from '../src/chain/beacon.ts'
import { createFreshness, type Freshness } from '../src/chain/view/freshness.ts'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { registerReportData } from '../src/keys/reportData.ts'
import { addressOfPublicKey, publicKey64, recoverSigner } from '../src/keys/signature.ts'
import { onboardReceiptDigest, onboardResponseDigest } from '../src/keys/typedData.ts'
import { createAesGcmSealer, type SealProvider } from '../src/secret/seal.ts'
import { createBlobArchive } from '../src/store/blobArchive.ts'
import { createCursorStore, type CursorStore, type WatchedEvent } from '../src/store/cursor.ts'
import { openDatabase } from '../src/store/database.ts'
import { createMetaStore } from '../src/store/meta.ts'
import { createRegistrationStore } from '../src/store/registrations.ts'
import { createRequestStore } from '../src/store/requests.ts'
import { createSealedSecretStore } from '../src/store/sealedSecrets.ts'
import { createDcapVerifier } from '../src/tee/dcap.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import type { QuoteProvider } from '../src/tee/types.ts'
import { createNode, type HelpResult } from '../src/node/node.ts'
import type { NodeContext } from '../src/node/context.ts'
import type { ChainView, ViewHeader } from '../src/chain/view/chainView.ts'
import { KEY_MANAGER_LAYOUT, freshnessSlot, generationSlot, measurementSlot, requestSlot } from '../src/chain/view/layout.ts'
import { querySlots, registryState } from '../src/chain/view/registryState.ts'
import { REQUEST_STATUS } from '../src/chain/registry.ts'

export const CHAIN_ID = 31337
export const REGISTRY: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
export const TTL = 100n
const silent = pino({ level: 'silent' })

export const pki = createDevnetPki()
export const platform = pki.mintPlatform()
export const measurement = simulatedMeasurement('node-in-process')
export const provider = simulatedQuoteProvider({ platform, measurement })
export const verifier = createDcapVerifier({ collateral: { get: async () => pki.collateral() }, trustedRootCaDer: [pki.rootCaDer] })
const dirs: string[] = []
/** Removes the data directories the nodes made; call it from the test file's `after`. */
export function removeNodeDirs() {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

export const versionedHash = (blob: Hex) => bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob))))
export const blockHash = (n: bigint) => keccak256(`0x${n.toString(16).padStart(64, '0')}`)

/** `generation`: the one it was answered under (default the chain's current one). */
type StoredRequest = { key: Address; expiresAt: bigint; status: 'pending' | 'fulfilled' | 'confirmed'; commitment: Hex; generation?: bigint }

/** What the contract and the beacon node would hold, and what the node is told about them. */
export class FakeChain {
  head = 100n
  /** Block times run from the real clock (12 s a block, block 100 about now): decisions use block time, and the devnet PKI's collateral is issued now. */
  readonly genesisTime = BigInt(Math.floor(Date.now() / 1000)) - 100n * 12n
  generation = 0n
  xPub: Address = '0x0000000000000000000000000000000000000000'
  /** Lets a test make the master-key slot disagree with the generation's record (the helper's last check before encrypting). */
  masterSlotXPub: Address | undefined
  allowed = new Set<Hex>()
  /** Freshness marks on chain (`markFresh`), by the block they were mined in. */
  marks = new Map<Hex, bigint>()
  blobs = new Map<Hex, Uint8Array>()
  requests = new Map<bigint, StoredRequest>()
  events: OnboardRequest[] = []
  onboarded = new Map<bigint, { responseBlobHash: Hex; index: bigint; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }>()
  /** The watcher stores of the nodes on this chain, fed every mined event. */
  private readonly watchers: CursorStore[] = []
  private readonly history: { block: bigint; event: WatchedEvent }[] = []
  /** Lets a test make the blob source lie. */
  serve: (hash: Hex) => Uint8Array | undefined = (hash) => this.blobs.get(hash)

  readonly publicClient = {
    getBlockNumber: async () => this.head,
    getBlock: async (args: { blockNumber?: bigint; blockTag?: string }) => {
      const number = args.blockNumber ?? this.head
      return { number, hash: blockHash(number), timestamp: this.genesisTime + number * 12n }
    },
  } as unknown as PublicClient

  readonly blobSource: BlobSource = {
    fetchBlobs: async ({ versionedHashes }) => versionedHashes.flatMap((hash) => this.serve(hash) ?? []),
  }

  readonly registry: RegistryClient = {
    ...createRegistryClient({ publicClient: this.publicClient, address: REGISTRY }),
    owner: async () => '0x000000000000000000000000000000000000dEaD',
    bootstrapper: async () => '0x0000000000000000000000000000000000000000',
    xPub: async () => this.xPub,
    generation: async () => this.generation,
    getRequest: async (id: bigint) => {
      const r = this.requests.get(id)
      return r
        ? { key: r.key, expiresAt: r.expiresAt, status: r.status, commitment: r.commitment }
        : { key: '0x0000000000000000000000000000000000000000' as Address, expiresAt: 0n, status: 'none' as const, commitment: `0x${'00'.repeat(32)}` as Hex }
    },
    tcbPolicy: async () => ({ acceptedStatuses: 1, maxCollateralAge: 0n, fmspcAllowlistOn: false, minTcbEvaluationDataNumber: 0 }),
    isFmspcAllowed: async () => true,
    isMeasurementAllowed: async (id: Hex) => this.allowed.has(id),
  }

  /** A node's watcher store: it gets every event mined so far, then each new one. */
  watch(store: CursorStore) {
    this.watchers.push(store)
    for (const { block, event } of this.history) this.feed(store, block, [event])
  }

  private feed(store: CursorStore, block: bigint, events: WatchedEvent[]) {
    store.advance({ number: block, hash: blockHash(block) }, events, [{ number: block, hash: blockHash(block) }])
  }

  private emit(events: WatchedEvent[]) {
    for (const event of events) this.history.push({ block: this.head, event })
    for (const store of this.watchers) this.feed(store, this.head, events)
  }

  /**
   * Freshness over this fake chain: every decision gets the newest view at once, as if its mark were already mined
   * (the rule itself, with real marks on anvil and withholding on the devnet, is tested in
   * src/chain/view/freshness.test.ts and test/verifiedChain.test.ts).
   */
  readonly freshness: Freshness = (() => {
    const view = fakeChainView(this)
    const real = createFreshness({ view, timeoutMs: 1000, pollMs: 10 })
    const fresh = async () => ({ header: await view.head(), mark: `0x${'00'.repeat(32)}` as Hex, markedAt: this.head })
    return { ...real, requireFreshView: fresh, hostMark: fresh }
  })()

  private keep(blobs: readonly Hex[]): Hex[] {
    return blobs.map((blob) => {
      const hash = versionedHash(blob)
      this.blobs.set(hash, hexToBytes(blob))
      return hash
    })
  }

  /** A freshness mark the node handed to its host (`needs_mark`), mined in a new block. */
  mineMark(tx: { to: Address; data: Hex }): Hex {
    assert.equal(tx.to.toLowerCase(), REGISTRY.toLowerCase(), 'sent to the registry')
    const call = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
    assert.equal(call.functionName, 'markFresh')
    const mark = (call.args as readonly [Hex])[0]
    this.head += 1n
    this.marks.set(mark, this.head)
    return mark
  }

  mineBootstrap(tx: { data: Hex; blobs?: Hex[] }) {
    const { functionName, args } = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
    assert.equal(functionName, 'bootstrap')
    this.keep(tx.blobs ?? [])
    this.xPub = addressOfPublicKey(hexToBytes(args[0] as Hex))
    this.generation = 1n
    this.head++
  }

  /** Records an onboarding request as `requestOnboard` would; `event` overrides what the node is later told. */
  addRequest(pubkey64: Hex, quoteBlobHash: Hex, refBlockNumber: bigint, event: Partial<OnboardRequest> = {}): OnboardRequest {
    this.head++
    const requestId = BigInt(this.events.length + 1)
    const stored = { pubkey64, quoteBlobHash, refBlockNumber, refBlockHash: blockHash(refBlockNumber) }
    const requester = addressOfPublicKey(hexToBytes(pubkey64))
    this.requests.set(requestId, { key: requester, expiresAt: this.head + TTL, status: 'pending', commitment: requestCommitment(stored) })
    const request: OnboardRequest = {
      requestId,
      requester,
      ...stored,
      blockNumber: this.head,
      blockHash: blockHash(this.head),
      transactionHash: keccak256(`0x${requestId.toString(16).padStart(2, '0')}`),
      ...event,
    }
    this.events.push(request)
    this.emit([{ kind: 'OnboardRequested', request }])
    return request
  }

  mineRequest(tx: { data: Hex; blobs?: Hex[] }): OnboardRequest {
    const { functionName, args } = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
    assert.equal(functionName, 'requestOnboard')
    const [quoteBlobHash] = this.keep(tx.blobs ?? [])
    return this.addRequest(args[0] as Hex, quoteBlobHash!, args[1] as bigint)
  }

  /** Applies `fulfillOnboard` after checking what the contract checks: the master key signed these ids and blob. */
  mineFulfill(tx: { data: Hex; blobs?: Hex[] }): bigint[] {
    const { functionName, args } = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
    assert.equal(functionName, 'fulfillOnboard')
    const [requestIds, signature] = args as [readonly bigint[], Hex]
    const [responseBlobHash] = this.keep(tx.blobs ?? [])
    const digest = onboardResponseDigest({ chainId: CHAIN_ID, registry: REGISTRY, requestIds, responseBlobHash: responseBlobHash!, generation: this.generation })
    assert.equal(recoverSigner(digest, hexToBytes(signature)), this.xPub, 'fulfillOnboard is signed by the master key')
    this.head++
    requestIds.forEach((id, index) => {
      const stored = this.requests.get(id)!
      assert.equal(stored.status, 'pending')
      stored.status = 'fulfilled'
      this.onboarded.set(id, { responseBlobHash: responseBlobHash!, index: BigInt(index), blockNumber: this.head, blockHash: blockHash(this.head), transactionHash: keccak256(signature) })
    })
    this.emit(requestIds.map((requestId) => ({ kind: 'Onboarded' as const, requestId, ...this.onboarded.get(requestId)! })))
    return [...requestIds]
  }

  mineConfirm(tx: { data: Hex }) {
    const { functionName, args } = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
    assert.equal(functionName, 'confirmOnboard')
    const [requestId, signature] = args as [bigint, Hex]
    const digest = onboardReceiptDigest({ chainId: CHAIN_ID, registry: REGISTRY, requestId, xPub: this.xPub })
    assert.equal(recoverSigner(digest, hexToBytes(signature)), this.requests.get(requestId)!.key, 'confirmOnboard is signed by the request key')
    this.requests.get(requestId)!.status = 'confirmed'
  }
}

/**
 * The fake chain's state through the chain view's own decoder (registryState): the slots a node reads are laid out from
 * the fake's fields as the contract lays them out (src/chain/view/layout.ts). A test double of the verified view, in
 * the place of `trusted-rpc` mode on a real anvil.
 */
export function fakeChainView(chain: FakeChain): ChainView {
  const header = (): ViewHeader => ({
    blockNumber: chain.head,
    blockHash: blockHash(chain.head),
    stateRoot: `0x${'00'.repeat(32)}`,
    timestamp: chain.genesisTime + chain.head * 12n,
    slot: null,
    finalized: false,
  })
  function slots(): Map<bigint, bigint> {
    const values = new Map<bigint, bigint>()
    values.set(KEY_MANAGER_LAYOUT.xPub.slot, BigInt(chain.masterSlotXPub ?? chain.xPub) | (chain.generation << 160n))
    // requestCount, requestTtl, acceptedTcbStatuses (UpToDate only), no collateral age, allow-list off, no minimum.
    values.set(KEY_MANAGER_LAYOUT.requestCount.slot, BigInt(chain.requests.size) | (TTL << 64n) | (1n << 128n))
    for (const id of chain.allowed) values.set(measurementSlot(id), 1n)
    for (const [mark, block] of chain.marks) values.set(freshnessSlot(mark), block)
    for (let g = 1n; g <= chain.generation; g++) values.set(generationSlot(g), BigInt(chain.xPub))
    for (const [id, r] of chain.requests) {
      const status = BigInt(REQUEST_STATUS.indexOf(r.status))
      const answered = r.status === 'pending' ? 0n : (r.generation ?? chain.generation)
      values.set(requestSlot(id), BigInt(r.key) | (r.expiresAt << 160n) | (status << 200n) | (answered << 208n))
      values.set(requestSlot(id) + 1n, BigInt(r.commitment))
    }
    return values
  }
  const read = async (at: ViewHeader, query: Parameters<ChainView['read']>[1]) => {
    const all = slots()
    return registryState(at, query, new Map(querySlots(query).map((slot) => [slot, all.get(slot) ?? 0n])))
  }
  return {
    mode: 'trusted-rpc',
    registry: REGISTRY,
    head: async () => header(),
    read,
    latest: async (query: Parameters<ChainView['read']>[1]) => read(header(), query),
    waitForBlock: async () => header(),
    status: () => ({ mode: 'trusted-rpc', registryCodeHash: null, head: null, lagSeconds: null, lastError: null }),
  } as unknown as ChainView
}

export function persistentSeal(): SealProvider {
  return Object.freeze({ name: 'dev-file' as const, persistent: true, insecure: true, ...createAesGcmSealer(randomBytes(32)) })
}

export function nodeOn(
  chain: FakeChain,
  options: { seal?: SealProvider; dataDir?: string; quoteProvider?: QuoteProvider; context?: Partial<NodeContext> } = {},
) {
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'km-node-'))
  if (!options.dataDir) dirs.push(dir)
  const db = openDatabase(join(dir, 'keymanager.sqlite'))
  const stores = {
    meta: createMetaStore(db),
    sealedSecrets: createSealedSecretStore(db),
    registrations: createRegistrationStore(db),
    requests: createRequestStore(db),
    blobs: createBlobArchive(db),
    cursor: createCursorStore(db),
  }
  chain.watch(stores.cursor)
  const node = createNode({
    chainId: CHAIN_ID,
    registryAddress: REGISTRY,
    settingsDigest: `0x${'d1'.repeat(32)}`,
    publicClient: chain.publicClient,
    walletClient: undefined,
    registry: chain.registry,
    chainView: fakeChainView(chain),
    freshness: chain.freshness,
    viewWaitMs: 1000,
    viewPollMs: 10,
    blobSource: chain.blobSource,
    quoteProvider: options.quoteProvider ?? provider,
    quoteVerifier: verifier,
    seal: options.seal ?? persistentSeal(),
    db,
    stores,
    logger: silent,
    now: () => Math.floor(Date.now() / 1000),
    maxReferenceAge: 50n,
    ...options.context,
  })
  return { node, stores, db, dir }
}

/** The unsigned fulfillOnboard of a help result (its TxOutcome holds the tx). */
export const fulfillTx = (result: HelpResult | undefined) => {
  assert.equal(result?.decision, 'fulfilled')
  return unsigned((result as { tx: { tx?: unknown } }).tx)
}

export const unsigned = (result: object) => {
  assert.ok('tx' in result && result.tx, 'the node without a gas key hands the transaction back')
  return result.tx as { data: Hex; blobs?: Hex[] }
}

/** A ready helper on a bootstrapped fake chain, its measurement allowed. */
export async function bootstrapped() {
  const chain = new FakeChain()
  chain.allowed.add(measurementOf(await provider.getQuote(new Uint8Array(64))).measurementId)
  const helper = nodeOn(chain)
  await helper.node.start()
  chain.mineBootstrap(unsigned(await helper.node.bootstrap()))
  await helper.node.bootstrap()
  assert.equal(helper.node.state, 'ready')
  return { chain, helper }
}

/** The settings digest hand-built newcomers claim (their envelope carries it, their quote binds it). */
export const NEWCOMER_SETTINGS_DIGEST = hexToBytes(`0x${'5e'.repeat(32)}`)

/** A register envelope posted as blob, built by hand so a test can make it lie. */
export async function registerBlob(
  chain: FakeChain,
  options: { pubkey64?: Uint8Array; quoteFor?: Uint8Array; refBlockNumber?: bigint; quoteProvider?: QuoteProvider; kind?: 'bootstrap' } = {},
) {
  const pubkey64 = options.pubkey64 ?? publicKey64(randomBytes(32))
  const refBlockNumber = options.refBlockNumber ?? chain.head
  const reportData = registerReportData({
    chainId: CHAIN_ID,
    registry: REGISTRY,
    pubkey64: options.quoteFor ?? pubkey64,
    refBlockNumber,
    refBlockHash: hexToBytes(blockHash(refBlockNumber)),
    settingsDigest: NEWCOMER_SETTINGS_DIGEST,
  })
  const quote = await (options.quoteProvider ?? provider).getQuote(reportData)
  const envelope: Envelope =
    options.kind === 'bootstrap'
      ? { kind: 'bootstrap', teeType: 'tdx', quote, masterPubkey64: pubkey64, settingsDigest: NEWCOMER_SETTINGS_DIGEST }
      : {
          kind: 'register',
          teeType: 'tdx',
          quote,
          pubkey64,
          refBlockNumber,
          refBlockHash: hexToBytes(blockHash(refBlockNumber)),
          settingsDigest: NEWCOMER_SETTINGS_DIGEST,
        }
  const blobs = envelopeToBlobs(envelope)
  const [hash] = blobs.map((blob) => {
    const h = versionedHash(blob)
    chain.blobs.set(h, hexToBytes(blob))
    return h
  })
  return { pubkey64: bytesToHex(pubkey64), quoteBlobHash: hash!, refBlockNumber }
}

