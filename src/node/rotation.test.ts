// A member judging rotation proposals in process (src/node/rotation.ts, docs/protocol.md#rotation): the registry's
// proven state is a slot map decoded by the chain view's own decoder (registryState), laid out as the contract lays
// it out (src/chain/view/layout.ts). Everything the member decides with is real: simulated TDX quotes from the devnet
// PKI through the production DCAP verifier, the TCB and measurement policy, real KZG versioned hashes and blob checks,
// real rotate envelopes, ECIES and signatures, a real keyring sealing into SQLite. Each bad proposal changes one thing
// a lying proposer, host or blob source controls; the member must refuse it with its reason, acknowledge nothing and
// adopt (seal) nothing.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { randomBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import { bytesToHex, concatBytes, decodeFunctionData, hexToBytes, keccak256, type Address, type Hex } from 'viem'
import type { BlobSource } from '../chain/beacon.ts'
import { blobsToEnvelope, envelopeToBlobs, type RotateEnvelope } from '../chain/envelope.ts'
import type { GenerationsClient, ProposedEvent } from '../chain/generations.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { fetchVerifiedBlobsWithFallback } from '../chain/peerBlobs.ts'
import { REQUEST_STATUS, requestCommitment, type OnboardRequest } from '../chain/registry.ts'
import type { ChainView, ViewHeader } from '../chain/view/chainView.ts'
import {
  KEY_MANAGER_LAYOUT as L,
  KEY_MANAGER_STRUCTS as S,
  PROPOSAL_MEMBERS as P,
  REQUEST_MEMBERS as R,
  ROTATION_MEMBERS as ROT,
  acknowledgedSlot,
  measurementSlot,
  requestSlot,
  type SlotField,
} from '../chain/view/layout.ts'
import { querySlots, registryState } from '../chain/view/registryState.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { rotationAad } from '../keys/ecies.ts'
import { rotateReportData } from '../keys/reportData.ts'
import { addressOfPublicKey, compressPublicKey, publicKey64, recoverSigner } from '../keys/signature.ts'
import { generationAckDigest, generationProposalDigest } from '../keys/typedData.ts'
import { generateMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { openDatabase } from '../store/database.ts'
import { createMetaStore } from '../store/meta.ts'
import { createSealedSecretStore } from '../store/sealedSecrets.ts'
import { measurementOf } from '../tee/measurement.ts'
import type { QuoteProvider } from '../tee/types.ts'
import { CHAIN_ID, REGISTRY, blockHash, measurement, persistentSeal, platform, provider, verifier, versionedHash } from '../../test/inProcessNode.ts'
import { createKeyring } from './keyring.ts'
import { createRotation, RotationRefusal } from './rotation.ts'

const silent = pino({ level: 'silent' })
const DIGEST: Hex = `0x${'d1'.repeat(32)}`
const dirs: string[] = []
after(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })))

/** Packs members of one slot the way Solidity does (each at its byte offset from the right). */
const pack = (fields: [Pick<SlotField, 'offset'>, bigint][]) => fields.reduce((acc, [f, v]) => acc | (v << BigInt(f.offset * 8)), 0n)
const x32 = (pubkey64: Uint8Array) => BigInt(bytesToHex(pubkey64.slice(0, 32)))
const prefix = (pubkey64: Uint8Array) => BigInt(compressPublicKey(concatBytes([new Uint8Array([4]), pubkey64]))[0]!)

/** What the registry holds at generation 1 with three members and an open rotation; a proposal is "mined" into it. */
class RotatingChain {
  head = 200n
  readonly genesisTime = BigInt(Math.floor(Date.now() / 1000)) - 200n * 12n
  readonly m1 = generateMasterSecret()
  readonly members: { memberId: bigint; secretKey: Uint8Array; pubkey64: Uint8Array; address: Address; event: OnboardRequest }[] = []
  allowed = new Set<Hex>()
  proposalCount = 0n
  proposal: { id: bigint; masterPubkey64: Uint8Array; xPub: Address; blobHash: Hex; proposerId: bigint; recipients: number; acks: number } | undefined
  acks = new Set<string>()
  events = new Map<bigint, ProposedEvent>()
  blobs = new Map<Hex, Uint8Array>()
  /** Lets a test make the blob source lie. */
  serve: (hash: Hex) => Uint8Array | undefined = (hash) => this.blobs.get(hash)

  constructor() {
    for (const memberId of [1n, 2n, 3n]) {
      const secretKey = randomBytes(32)
      const pubkey64 = publicKey64(secretKey)
      const event: OnboardRequest = {
        requestId: memberId,
        requester: addressOfPublicKey(pubkey64),
        pubkey64: bytesToHex(pubkey64),
        quoteBlobHash: keccak256(`0x0${memberId}`),
        refBlockNumber: 10n,
        refBlockHash: blockHash(10n),
        blockNumber: 11n,
        blockHash: blockHash(11n),
        transactionHash: keccak256(`0x1${memberId}`),
      }
      this.members.push({ memberId, secretKey, pubkey64, address: addressOfPublicKey(pubkey64), event })
    }
  }

  header = (): ViewHeader => ({
    blockNumber: this.head,
    blockHash: blockHash(this.head),
    stateRoot: `0x${'00'.repeat(32)}`,
    timestamp: this.genesisTime + this.head * 12n,
    slot: null,
    finalized: false,
  })

  slots(): Map<bigint, bigint> {
    const values = new Map<bigint, bigint>()
    const m1 = this.m1.publicKey64
    values.set(L.xPub.slot, pack([[L.xPub, BigInt(this.m1.address)], [L.generation, 1n], [L.masterPubkeyPrefix, prefix(m1)], [L.proposalPending, this.proposal ? 1n : 0n]]))
    values.set(L.masterPubkeyX.slot, x32(m1))
    // requestCount, requestTtl, acceptedTcbStatuses (UpToDate only), no collateral age, allow-list off, no minimum.
    values.set(L.requestTtl.slot, pack([[L.requestCount, 3n], [L.requestTtl, 100n], [L.acceptedTcbStatuses, 1n]]))
    values.set(L.memberCount.slot, pack([[L.memberCount, 3n], [L.proposalCount, this.proposalCount]]))
    values.set(S.rotation.slot, pack([[ROT.open, 1n], [ROT.overlap, 3600n], [ROT.forceDelay, 3600n], [ROT.startedAt, this.header().timestamp - 60n]]))
    for (const id of this.allowed) values.set(measurementSlot(id), 1n)
    for (const m of this.members) {
      values.set(requestSlot(m.memberId), pack([[R.key, BigInt(m.address)], [R.expiresAt, 111n], [R.status, BigInt(REQUEST_STATUS.indexOf('confirmed'))], [R.generation, 1n]]))
      values.set(requestSlot(m.memberId) + 1n, BigInt(requestCommitment(m.event)))
    }
    const p = this.proposal
    if (p) {
      values.set(S.proposal.slot, pack([[P.id, p.id], [P.generation, 2n], [P.proposedAt, this.header().timestamp], [P.recipients, BigInt(p.recipients)], [P.acks, BigInt(p.acks)]]))
      values.set(S.proposal.slot + 1n, pack([[P.xPub, BigInt(p.xPub)], [P.proposerId, p.proposerId], [P.pubkeyPrefix, prefix(p.masterPubkey64)]]))
      values.set(S.proposal.slot + 2n, x32(p.masterPubkey64))
      values.set(S.proposal.slot + 3n, BigInt(p.blobHash))
      for (const key of this.acks) {
        const [proposal, memberId] = key.split('/').map(BigInt) as [bigint, bigint]
        values.set(acknowledgedSlot(proposal, memberId), 1n)
      }
    }
    return values
  }

  readonly view = {
    mode: 'trusted-rpc',
    registry: REGISTRY,
    head: async () => this.header(),
    read: async (at: ViewHeader, query: Parameters<ChainView['read']>[1]) => {
      const all = this.slots()
      return registryState(at, query, new Map(querySlots(query).map((slot) => [slot, all.get(slot) ?? 0n])))
    },
  } as unknown as ChainView

  readonly blobSource: BlobSource = { fetchBlobs: async ({ versionedHashes }) => versionedHashes.flatMap((hash) => this.serve(hash) ?? []) }

  /**
   * `proposeGeneration(2, proposerId, masterPubkey64, [1, 2, 3], signature)` with `blobs` as its blobs, as the contract
   * records it: it derives xPub from the key and binds blobhash(0). `override` makes the proven state or the event
   * (a host's hint) say something else.
   */
  mine(masterPubkey64: Uint8Array, blobs: readonly Hex[], override: { xPub?: Address; eventBlobHash?: Hex } = {}) {
    for (const blob of blobs) this.blobs.set(versionedHash(blob), hexToBytes(blob))
    this.head++
    const id = ++this.proposalCount
    const blobHash = versionedHash(blobs[0]!)
    const xPub = override.xPub ?? addressOfPublicKey(masterPubkey64)
    this.proposal = { id, masterPubkey64, xPub, blobHash, proposerId: 1n, recipients: 3, acks: 0 }
    this.events.set(id, {
      generation: 2n,
      proposal: id,
      proposerId: 1n,
      xPub,
      masterPubkey: bytesToHex(masterPubkey64),
      proposalBlobHash: override.eventBlobHash ?? blobHash,
      recipientIds: [1n, 2n, 3n],
      blockNumber: this.head,
      blockHash: blockHash(this.head),
      transactionHash: keccak256(`0x${id.toString(16).padStart(4, '0')}`),
    })
    return id
  }
}

/** A member's rotation flows over the chain, with a real keyring; `sent` records every transaction it hands out. */
function memberOn(chain: RotatingChain, index: number) {
  const me = chain.members[index]!
  const dir = mkdtempSync(join(tmpdir(), 'km-rotation-'))
  dirs.push(dir)
  const db = openDatabase(join(dir, 'keymanager.sqlite'))
  const meta = createMetaStore(db)
  const keyring = createKeyring({ seal: persistentSeal(), sealedSecrets: createSealedSecretStore(db), meta, logger: silent, now: () => Math.floor(Date.now() / 1000) })
  keyring.setNodeKey({ memberId: me.memberId, address: me.address, secretKey: me.secretKey.slice() })
  keyring.add(1, chain.m1)
  keyring.setCurrent(1)
  const sent: { label: string; data: Hex; blobs?: Hex[] }[] = []
  const kept: { quoteBlobHash: Hex; collateral: unknown; judgedAt: number }[] = []
  const generations = {
    confirmedIds: async () => chain.members.map((m) => m.memberId),
    proposedEvent: async (id: bigint) => chain.events.get(id),
    committedProposal: async () => undefined,
  } as unknown as GenerationsClient
  const rotation = createRotation({
    chainId: CHAIN_ID,
    registryAddress: REGISTRY,
    settingsDigest: DIGEST,
    view: chain.view,
    generations,
    keyring,
    logger: silent,
    fresh: async () => chain.header(),
    viewAt: async () => chain.header(),
    submit: async (label, data, blobs) => {
      sent.push({ label, data, ...(blobs ? { blobs } : {}) })
      return { sent: false, tx: { to: REGISTRY, data, ...(blobs ? { blobs } : {}), chainId: CHAIN_ID } }
    },
    registry: undefined as never,
    requestEvent: (id) => chain.members.find((m) => m.memberId === id)?.event,
    quoteProvider: provider,
    quoteVerifier: verifier,
    // The production path: the blob source's answer checked against the versioned hash by KZG, then decoded.
    fetchEnvelope: async (hash, at) => {
      const [blob] = await fetchVerifiedBlobsWithFallback([chain.blobSource], {
        blockNumber: at.blockNumber,
        blockHash: at.blockHash,
        blockTimestamp: chain.genesisTime + at.blockNumber * 12n,
        versionedHashes: [hash],
      })
      return blobsToEnvelope([bytesToHex(blob!)])
    },
    archiveOwn: () => {},
    onCurrent: () => {},
    keepCollateral: (quoteBlobHash, collateral, judgedAt) => kept.push({ quoteBlobHash, collateral, judgedAt }),
  })
  return { me, rotation, keyring, meta, sent, kept }
}

type Forgery = {
  /** The report data the quote binds, field by field (default: the honest one for this proposal). */
  quoteGeneration?: bigint
  quoteKey?: Uint8Array
  quoteRegistry?: Address
  quoteChainId?: number
  quoteDigest?: Hex
  /** The key the envelope carries (default: the proposed one). */
  envelopeKey?: Uint8Array
  envelopeGeneration?: bigint
  envelopeProposal?: bigint
  quoteProvider?: QuoteProvider
  /** The secret encrypted to the members (default: the proposed one). */
  shareSecret?: MasterSecret
  /** Leaves this member out of the envelope. */
  omit?: bigint
  /** Encrypts member `to`'s entry under member `as`'s aad (a share moved to another member's id). */
  misaddress?: { to: bigint; as: bigint }
  /** Flips one byte of the quote's report data after it was signed. */
  tamperQuote?: boolean
}

/** A rotate envelope for the next proposal, built by hand so a test can make one thing in it lie. */
async function proposal(chain: RotatingChain, proposed: MasterSecret, f: Forgery = {}) {
  const id = chain.proposalCount + 1n
  const envelopeKey = f.envelopeKey ?? proposed.publicKey64
  const quote = await (f.quoteProvider ?? provider).getQuote(
    rotateReportData({
      chainId: f.quoteChainId ?? CHAIN_ID,
      registry: f.quoteRegistry ?? REGISTRY,
      generation: f.quoteGeneration ?? 2n,
      masterPubkey64: f.quoteKey ?? envelopeKey,
      settingsDigest: f.quoteDigest ?? DIGEST,
    }),
  )
  // A TDX v4 quote: 48-byte header, then the TD report whose report data starts at byte 520 of it.
  if (f.tamperQuote) quote[48 + 520] = quote[48 + 520]! ^ 1
  const share = f.shareSecret ?? proposed
  const envelope: RotateEnvelope = {
    kind: 'rotate',
    generation: f.envelopeGeneration ?? 2n,
    proposal: f.envelopeProposal ?? id,
    teeType: 'tdx',
    quote,
    masterPubkey64: envelopeKey,
    settingsDigest: hexToBytes(DIGEST),
    entries: chain.members
      .filter((m) => m.memberId !== f.omit)
      .map((m) => {
        const aadFor = f.misaddress?.to === m.memberId ? f.misaddress.as : m.memberId
        return {
          memberId: m.memberId,
          ciphertext: share.encryptTo(concatBytes([new Uint8Array([4]), m.pubkey64]), rotationAad({ chainId: CHAIN_ID, registry: REGISTRY, memberId: aadFor, generation: 2n, proposal: id })),
        }
      }),
  }
  return envelopeToBlobs(envelope)
}

test('security: a member refuses a bad rotation proposal with its reason, and acknowledges and adopts nothing', async () => {
  const chain = new RotatingChain()
  chain.allowed.add(measurementOf(await provider.getQuote(new Uint8Array(64))).measurementId)
  const member = memberOn(chain, 1)
  const other = generateMasterSecret()
  const cases: [string, string, (proposed: MasterSecret) => Promise<void>][] = [
    // The quote is genuine and allowed, but its report data binds something else than this proposal.
    ['report_data_mismatch', 'a quote over another key', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteKey: other.publicKey64 }))],
    ['report_data_mismatch', 'a quote for another generation', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteGeneration: 3n }))],
    ['report_data_mismatch', 'a quote for the current generation', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteGeneration: 1n }))],
    ['report_data_mismatch', 'a quote for another registry', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteRegistry: '0x000000000000000000000000000000000000bEEF' }))],
    ['report_data_mismatch', 'a quote for another chain', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteChainId: 1 }))],
    ['report_data_mismatch', 'a quote over another settings digest than the envelope carries', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteDigest: `0x${'ee'.repeat(32)}` }))],
    // The quote itself does not pass: a build the registry does not allow, a platform outside the trusted root, a forged body.
    [
      'measurement_not_allowed',
      'a genuine quote of a build the registry does not allow',
      async (k) =>
        void chain.mine(k.publicKey64, await proposal(chain, k, { quoteProvider: simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('other-build') }) })),
    ],
    ['untrusted_root', 'a quote from a platform outside the trusted root', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { quoteProvider: simulatedQuoteProvider({ measurement }) }))],
    ['bad_signature', 'a quote whose report data was changed after it was signed', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { tamperQuote: true }))],
    // The blob is not the one the contract bound.
    [
      'blob_hash_mismatch',
      'the blob source serves another valid blob for the proposal hash',
      async (k) => {
        const id = chain.mine(k.publicKey64, await proposal(chain, k))
        const bound = chain.events.get(id)!.proposalBlobHash
        const served = hexToBytes((await proposal(chain, k))[0]!)
        chain.serve = (hash) => (hash === bound ? served : chain.blobs.get(hash))
      },
    ],
    ['blob_hash_mismatch', 'the host relays an event naming another blob than the proven proposal', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k), { eventBlobHash: keccak256('0x99') })],
    // The envelope does not carry this proposal.
    ['proposal_mismatch', 'an envelope for another generation', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { envelopeGeneration: 3n }))],
    ['proposal_mismatch', 'an envelope of another proposal', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { envelopeProposal: 99n }))],
    // A valid quote over a key, but not the key the proposal installs on chain.
    ['proposal_mismatch', 'an envelope and quote over another key than the proposed one', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { envelopeKey: other.publicKey64 }))],
    // Every binding holds, but the secret this member decrypts is not the proposed key's.
    ['not_proposed_key', 'a share of another secret than the proposed key', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { shareSecret: other }))],
    // The proven xPub disagrees with the proven key (the contract derives one from the other; the member does not rely on it).
    [
      'not_proposed_key',
      'a share of the secret whose address the proposal records, while the quote binds another key',
      async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { shareSecret: other }), { xPub: other.address }),
    ],
    ['not_a_recipient', 'an envelope without this member', async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { omit: member.me.memberId }))],
    ['bad_envelope', "another member's share under this member's id", async (k) => void chain.mine(k.publicKey64, await proposal(chain, k, { misaddress: { to: member.me.memberId, as: 3n } }))],
  ]
  for (const [reason, what, make] of cases) {
    chain.serve = (hash) => chain.blobs.get(hash)
    const proposed = generateMasterSecret()
    await make(proposed)
    const id = chain.proposal!.id
    await assert.rejects(
      member.rotation.acknowledge(),
      (error: unknown) => {
        assert.ok(error instanceof RotationRefusal, `${what}: ${String(error)}`)
        assert.equal(error.reason, reason, `${what}: ${error.message}`)
        return true
      },
      what,
    )
    assert.equal(member.rotation.refused.get(id)?.reason, reason, `${what}: recorded with its reason`)
    assert.deepEqual(member.sent, [], `${what}: nothing acknowledged`)
    assert.equal(member.keyring.proposed, undefined, `${what}: nothing adopted`)
    assert.ok(!member.meta.get('proposed_secret'), `${what}: nothing sealed`)
    assert.deepEqual(member.kept, [], `${what}: no collateral kept`)
    // Judged once: asked again, the member gives the same refusal without acknowledging.
    await assert.rejects(member.rotation.acknowledge(), { reason })
    assert.deepEqual(member.sent, [])
  }

  // After all of these, an honest proposal by member 1 (its own propose()) is acknowledged by the same member.
  const proposer = memberOn(chain, 0)
  chain.proposal = undefined
  const proposed = await proposer.rotation.propose({ supersede: true })
  const [tx] = proposer.sent
  assert.equal(tx?.label, 'proposeGeneration')
  const call = decodeFunctionData({ abi: keyManagerAbi, data: tx.data })
  assert.equal(call.functionName, 'proposeGeneration')
  const [generation, proposerId, masterPubkey64, recipientIds, signature] = call.args as [bigint, bigint, Hex, readonly bigint[], Hex]
  assert.deepEqual([generation, proposerId, recipientIds], [2n, 1n, [1n, 2n, 3n]])
  const id = chain.mine(hexToBytes(masterPubkey64), tx.blobs!)
  assert.equal(
    recoverSigner(
      generationProposalDigest({ chainId: CHAIN_ID, registry: REGISTRY, proposal: id, generation: 2n, masterPubkey64, recipientIds, proposalBlobHash: chain.proposal!.blobHash }),
      hexToBytes(signature),
    ),
    proposer.me.address,
    'signed by the proposer node key',
  )
  const acked = await member.rotation.acknowledge()
  assert.equal(acked.xPub, proposed.xPub)
  const [ack] = member.sent
  const ackCall = decodeFunctionData({ abi: keyManagerAbi, data: ack!.data })
  assert.equal(ackCall.functionName, 'acknowledgeGeneration')
  const [ackProposal, ackMember, ackSignature] = ackCall.args as [bigint, bigint, Hex]
  assert.deepEqual([ackProposal, ackMember], [id, member.me.memberId])
  assert.equal(
    recoverSigner(generationAckDigest({ chainId: CHAIN_ID, registry: REGISTRY, proposal: id, generation: 2n, xPub: proposed.xPub }), hexToBytes(ackSignature)),
    member.me.address,
  )
  assert.equal(member.keyring.proposed?.secret.address, proposed.xPub, 'the proposed secret is held and sealed')
  assert.ok(member.meta.get('proposed_secret'))
  // The collateral the proposer's quote was judged with is kept under the proposal blob, at the verified time.
  assert.deepEqual(
    member.kept.map((k) => [k.quoteBlobHash, k.judgedAt, typeof k.collateral]),
    [[chain.proposal!.blobHash, Number(chain.header().timestamp), 'object']],
  )
  chain.acks.add(`${id}/${member.me.memberId}`)
  await assert.rejects(member.rotation.acknowledge(), { reason: 'already_acknowledged' })
  assert.equal(member.sent.length, 1, 'acknowledged once')
})
