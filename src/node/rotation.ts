// The node side of rotation (docs/protocol.md#rotation, docs/protocol.md#node-flows-what-the-sidecar-does): a member
// proposes the next generation, members verify and acknowledge it, anyone commits it at quorum, and every member
// then serves it as current and keeps the older ones.
//
// What each step rests on (the host is the adversary, docs/protocol.md#actors-and-trust):
// - propose: a view proven to include this decision's own freshness mark; the member set proven slot by slot
//   (every `requests[id]` a member, and as many of them as the proven `memberCount`, so none is missing); each
//   recipient's node key from its `OnboardRequested` event, checked against the proven request commitment and key.
//   The new secret is sealed before the proposal is sent, so a proposer that dies after sending loses nothing.
// - acknowledge: a fresh view; the proposal's blob checked against the proven blob hash; the proposer's quote
//   verified (DCAP, TCB policy, measurement allowed at the verified time) and bound by its report data to the proposed
//   generation and key; the decrypted secret's key equal to the proven proposed key. Only then is it sealed and
//   acknowledged with the node key.
// - catch up (a member that was down, or restarted mid-rotation): a committed generation it does not hold is taken
//   from its sealed proposed secret, or from the committed proposal's blob, each checked against the proven key of
//   that generation.
// Events are hints everywhere: they say where to look, proven slots decide.
import { bytesToHex, concatBytes, hexToBytes, type Address, type Hex } from 'viem'
import { BlobHashMismatchError } from '../chain/beacon.ts'
import { envelopeToBlobs, type Envelope, type RotateEnvelope } from '../chain/envelope.ts'
import { EnvelopeError } from '../chain/errors.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../chain/kzg.ts'
import { generationCalldata } from '../chain/generations.ts'
import { requestCommitment, type OnboardRequest, type RegistryClient } from '../chain/registry.ts'
import type { ViewHeader } from '../chain/view/chainView.ts'
import type { ProvenRotation, RegistryState } from '../chain/view/registryState.ts'
import { KeymanagerError } from '../errors.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { rotateReportData } from '../keys/reportData.ts'
import { eciesDecrypt, rotationAad } from '../keys/ecies.ts'
import { addressOfPublicKey, compressPublicKey, signDigest } from '../keys/signature.ts'
import { generationAckDigest, generationProposalDigest } from '../keys/typedData.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { checkPolicy } from '../tee/policy.ts'
import type { Collateral } from '../tee/collateral.ts'
import { QuoteVerificationError, type QuoteProvider, type QuoteVerifier } from '../tee/types.ts'
import type { MemberFlowDeps } from './context.ts'

/** Why a member did not acknowledge a proposal, or could not propose: stable strings (docs/protocol.md#generations). */
export const ROTATION_REFUSALS = [
  'no_rotation',
  'not_member',
  'node_revoked',
  'no_node_key',
  'proposal_pending',
  'no_proposal',
  'already_acknowledged',
  'not_a_recipient',
  'member_set_incomplete',
  'member_key_mismatch',
  'blob_hash_mismatch',
  'bad_envelope',
  'proposal_mismatch',
  'report_data_mismatch',
  'not_proposed_key',
  'quorum_not_reached',
] as const
export type RotationRefusalReason = (typeof ROTATION_REFUSALS)[number] | string

export class RotationRefusal extends KeymanagerError {
  constructor(
    readonly reason: RotationRefusalReason,
    message: string,
  ) {
    super('conflict', `${reason}: ${message}`)
  }
}

export type RotationDeps = MemberFlowDeps & {
  settingsDigest: Hex
  registry: RegistryClient
  /** The watcher's `OnboardRequested` record of a request (a hint, checked against the proven commitment). */
  requestEvent(requestId: bigint): OnboardRequest | undefined
  quoteProvider: QuoteProvider
  quoteVerifier: QuoteVerifier
  fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<Envelope>
  archiveOwn(blobs: readonly Hex[]): void
  /** A generation became current on this node. */
  onCurrent(generation: number): void
  /**
   * Keeps the collateral the proposer's quote was judged with, once this member takes the proposal's secret
   * (docs/protocol.md#collateral-kept-with-the-decision), under the proposal blob's versioned hash.
   */
  keepCollateral?(quoteBlobHash: Hex, collateral: Collateral, judgedAt: number): void
}

export type ProvenMember = { memberId: bigint; pubkey64: Uint8Array }

const versionedHashOf = (blob: Hex): Hex => bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob))))
const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

export function createRotation(deps: RotationDeps) {
  const { keyring, logger } = deps
  /** Proposals this member refused to acknowledge, with the reason (each proposal is judged once). */
  const refused = new Map<bigint, { reason: string; message: string }>()

  async function readRotation(header: ViewHeader, extra: { requests?: bigint[]; generations?: bigint[] } = {}) {
    const nodeKey = keyring.nodeKey
    const state = await deps.view.read(header, {
      master: true,
      rotation: true,
      policy: true,
      requests: [...(nodeKey ? [nodeKey.memberId] : []), ...(extra.requests ?? [])],
      generations: extra.generations ?? [],
      acks: [],
    })
    return { state, rotation: state.rotation() }
  }

  function requireMember(state: RegistryState): { memberId: bigint; secretKey: Uint8Array } {
    const nodeKey = keyring.nodeKey
    if (!nodeKey) throw new RotationRefusal('no_node_key', 'this node holds no node key (it is not a member)')
    const request = state.request(nodeKey.memberId)
    if (request.status === 'revoked') throw new RotationRefusal('node_revoked', `member ${nodeKey.memberId} is revoked`)
    if (request.status !== 'confirmed' || !sameAddress(request.key, nodeKey.address))
      throw new RotationRefusal('not_member', `request ${nodeKey.memberId} is ${request.status} in the verified chain, not a member with this node key`)
    return nodeKey
  }

  /**
   * The active member set at `header`, proven: candidate ids come from `OnboardConfirmed` events; each is kept only
   * if its proven request is a member (status 3), and the count must equal the proven `memberCount`, so a host that
   * hides an event is caught. Each member's node key comes from its `OnboardRequested` event, checked against the
   * proven commitment (which hashes the key) and the proven key address.
   */
  async function provenMembers(header: ViewHeader, memberCount: bigint): Promise<ProvenMember[]> {
    const candidates = (await deps.generations.confirmedIds()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const state = await deps.view.read(header, { requests: candidates })
    const members: ProvenMember[] = []
    for (const memberId of candidates) {
      const proven = state.request(memberId)
      if (proven.status !== 'confirmed') continue
      const event = deps.requestEvent(memberId)
      if (!event || proven.commitment !== requestCommitment(event) || !sameAddress(addressOfPublicKey(hexToBytes(event.pubkey64)), proven.key))
        throw new RotationRefusal('member_key_mismatch', `the request event of member ${memberId} does not match its proven commitment`)
      members.push({ memberId, pubkey64: hexToBytes(event.pubkey64) })
    }
    if (BigInt(members.length) !== memberCount)
      throw new RotationRefusal('member_set_incomplete', `found ${members.length} members, the verified chain counts ${memberCount}`)
    return members
  }

  /** Proposes the next generation (docs/protocol.md#rotation step 2). */
  async function propose(options: { supersede?: boolean } = {}) {
    const current = keyring.current
    if (!keyring.get(current)) throw new KeymanagerError('not_ready', 'node holds no current generation')
    const header = await deps.fresh()
    const { state, rotation } = await readRotation(header)
    const nodeKey = requireMember(state)
    if (!rotation.open) throw new RotationRefusal('no_rotation', 'no rotation is open (the owner starts one: keymanager rotate start)')
    if (rotation.proposal.id !== 0n && !options.supersede)
      throw new RotationRefusal('proposal_pending', `proposal ${rotation.proposal.id} is pending`)
    const members = await provenMembers(header, rotation.memberCount)
    const generation = rotation.generation + 1n
    const proposal = rotation.proposalCount + 1n
    const secret = generateMasterSecret()
    // Sealed before anything leaves the enclave: a proposer that dies after sending still holds what it proposed.
    keyring.setProposed({ proposal, generation: Number(generation), secret })
    const quote = await deps.quoteProvider.getQuote(
      rotateReportData({
        chainId: deps.chainId,
        registry: deps.registryAddress,
        generation,
        masterPubkey64: secret.publicKey64,
        settingsDigest: deps.settingsDigest,
      }),
    )
    const envelope: RotateEnvelope = {
      kind: 'rotate',
      generation,
      proposal,
      teeType: deps.quoteProvider.teeType,
      quote,
      masterPubkey64: secret.publicKey64,
      settingsDigest: hexToBytes(deps.settingsDigest),
      entries: members.map(({ memberId, pubkey64 }) => ({
        memberId,
        ciphertext: secret.encryptTo(
          concatBytes([new Uint8Array([4]), pubkey64]),
          rotationAad({ chainId: deps.chainId, registry: deps.registryAddress, memberId, generation, proposal }),
        ),
      })),
    }
    const blobs = envelopeToBlobs(envelope)
    // The contract binds blobhash(0) only: the envelope must fit one blob (about 900 members with a 8 KiB quote).
    if (blobs.length !== 1) throw new KeymanagerError('conflict', `the rotate envelope needs ${blobs.length} blobs; at most 1`)
    deps.archiveOwn(blobs)
    const recipientIds = members.map((m) => m.memberId)
    const signature = signDigest(
      generationProposalDigest({
        chainId: deps.chainId,
        registry: deps.registryAddress,
        proposal,
        generation,
        masterPubkey64: secret.publicKey64,
        recipientIds,
        proposalBlobHash: versionedHashOf(blobs[0]!),
      }),
      nodeKey.secretKey,
    )
    const outcome = await deps.submit(
      'proposeGeneration',
      generationCalldata.proposeGeneration(generation, nodeKey.memberId, bytesToHex(secret.publicKey64), recipientIds, bytesToHex(signature)),
      blobs,
    )
    logger.info({ proposal: proposal.toString(), generation: generation.toString(), xPub: secret.address, recipients: recipientIds.map(String) }, 'generation proposed')
    return { proposal: proposal.toString(), generation: generation.toString(), xPub: secret.address, recipients: recipientIds.map(String), tx: outcome }
  }

  /** Verifies the pending proposal and decrypts this member's share; throws a RotationRefusal when it does not hold. */
  async function judgeProposal(header: ViewHeader, rotation: ProvenRotation, memberId: bigint, secretKey: Uint8Array): Promise<MasterSecret> {
    const p = rotation.proposal
    const event = await deps.generations.proposedEvent(p.id)
    if (!event) throw new KeymanagerError('upstream_failed', `no GenerationProposed event for proposal ${p.id} yet`)
    if (event.proposalBlobHash.toLowerCase() !== p.blobHash.toLowerCase())
      throw new RotationRefusal('blob_hash_mismatch', 'the proposal event names another blob than the proven proposal')
    let envelope: Envelope
    try {
      envelope = await deps.fetchEnvelope(p.blobHash, event)
    } catch (error) {
      if (error instanceof BlobHashMismatchError) throw new RotationRefusal('blob_hash_mismatch', error.message)
      if (error instanceof EnvelopeError) throw new RotationRefusal('bad_envelope', error.message)
      throw error
    }
    if (envelope.kind !== 'rotate') throw new RotationRefusal('bad_envelope', `expected a rotate envelope, got ${envelope.kind}`)
    if (envelope.proposal !== p.id || envelope.generation !== p.generation)
      throw new RotationRefusal('proposal_mismatch', `the envelope is for proposal ${envelope.proposal} (generation ${envelope.generation})`)
    if (!constantTimeEqual(compressPublicKey(concatBytes([new Uint8Array([4]), envelope.masterPubkey64])), hexToBytes(p.masterPubkey)))
      throw new RotationRefusal('proposal_mismatch', 'the envelope carries another master key than the proven proposal')
    let verified
    try {
      verified = await deps.quoteVerifier.verify(envelope.quote, { now: Number(header.timestamp) })
    } catch (error) {
      if (error instanceof QuoteVerificationError) throw new RotationRefusal(error.reason, error.message)
      throw error
    }
    if (verified.teeType !== envelope.teeType) throw new RotationRefusal('bad_envelope', 'envelope TEE type does not match the quote')
    const expected = rotateReportData({
      chainId: deps.chainId,
      registry: deps.registryAddress,
      generation: p.generation,
      masterPubkey64: envelope.masterPubkey64,
      settingsDigest: envelope.settingsDigest,
    })
    if (!constantTimeEqual(verified.reportData, expected))
      throw new RotationRefusal('report_data_mismatch', 'the quote does not bind this generation, key and registry')
    const atQuote = await deps.view.read(header, { policy: true, measurements: [verified.measurementId], fmspcs: [verified.fmspc] })
    const policy = atQuote.tcbPolicy()
    const decision = await checkPolicy(
      verified,
      {
        ...policy,
        isFmspcAllowed: async (fmspc: Hex) => atQuote.isFmspcAllowed(fmspc),
        isMeasurementAllowed: async (id: Hex) => atQuote.isMeasurementAllowed(id),
      },
      Number(header.timestamp),
    )
    if (!decision.ok) throw new RotationRefusal(decision.reason, decision.message)
    const entry = envelope.entries.find((e) => e.memberId === memberId)
    if (!entry) throw new RotationRefusal('not_a_recipient', `member ${memberId} has no share in proposal ${p.id}`)
    let bytes: Uint8Array
    try {
      bytes = eciesDecrypt(secretKey, entry.ciphertext, rotationAad({ chainId: deps.chainId, registry: deps.registryAddress, memberId, generation: p.generation, proposal: p.id }))
    } catch {
      throw new RotationRefusal('bad_envelope', 'this member share does not decrypt with the node key')
    }
    const secret = createMasterSecret(bytes)
    bytes.fill(0)
    // Tied directly to the key the verified quote binds (envelope.masterPubkey64, checked above against the proven
    // proposal key), and to the proven xPub the acknowledgement signs: neither check leans on the contract deriving
    // one from the other.
    if (!constantTimeEqual(secret.publicKey64, envelope.masterPubkey64) || !sameAddress(secret.address, p.xPub)) {
      secret.expire()
      throw new RotationRefusal('not_proposed_key', 'the decrypted secret is not the proposed master key')
    }
    if (verified.collateral) deps.keepCollateral?.(p.blobHash, verified.collateral, Number(header.timestamp))
    return secret
  }

  /** Verifies the pending proposal, seals the new secret and acknowledges it (docs/protocol.md#rotation step 3). */
  async function acknowledge() {
    const header = await deps.fresh()
    const { state, rotation } = await readRotation(header)
    const nodeKey = requireMember(state)
    const p = rotation.proposal
    if (p.id === 0n) throw new RotationRefusal('no_proposal', 'no proposal is pending')
    const acked = (await deps.view.read(header, { acks: [{ proposal: p.id, memberId: nodeKey.memberId }] })).acknowledged(p.id, nodeKey.memberId)
    if (acked) throw new RotationRefusal('already_acknowledged', `member ${nodeKey.memberId} acknowledged proposal ${p.id}`)
    const earlier = refused.get(p.id)
    if (earlier) throw new RotationRefusal(earlier.reason, earlier.message)
    let secret: MasterSecret
    try {
      secret = await judgeProposal(header, rotation, nodeKey.memberId, nodeKey.secretKey)
    } catch (error) {
      if (error instanceof RotationRefusal) {
        refused.set(p.id, { reason: error.reason, message: error.message })
        logger.warn({ proposal: p.id.toString(), reason: error.reason }, `proposal refused: ${error.message}`)
      }
      throw error
    }
    keyring.setProposed({ proposal: p.id, generation: Number(p.generation), secret })
    const signature = signDigest(
      generationAckDigest({ chainId: deps.chainId, registry: deps.registryAddress, proposal: p.id, generation: p.generation, xPub: p.xPub }),
      nodeKey.secretKey,
    )
    const outcome = await deps.submit('acknowledgeGeneration', generationCalldata.acknowledgeGeneration(p.id, nodeKey.memberId, bytesToHex(signature)))
    logger.info({ proposal: p.id.toString(), generation: p.generation.toString(), xPub: p.xPub }, 'generation acknowledged')
    return { proposal: p.id.toString(), generation: p.generation.toString(), xPub: p.xPub, tx: outcome }
  }

  /** Commits the pending proposal once its acknowledgements reach the quorum (anyone may; docs/protocol.md#rotation step 4). */
  async function commit() {
    const header = await deps.viewAt()
    const { rotation } = await readRotation(header)
    const p = rotation.proposal
    if (p.id === 0n) throw new RotationRefusal('no_proposal', 'no proposal is pending')
    if (p.acks < p.quorum) throw new RotationRefusal('quorum_not_reached', `${p.acks} of ${p.quorum} acknowledgements`)
    const outcome = await deps.submit('commitGeneration', generationCalldata.commitGeneration(p.id))
    logger.info({ proposal: p.id.toString(), generation: p.generation.toString() }, 'generation committed')
    return { proposal: p.id.toString(), generation: p.generation.toString(), tx: outcome }
  }

  /**
   * Brings the node to the verified chain's generations: records each generation's public facts, erases purged
   * ones, and takes every committed generation it lacks from its sealed proposed secret or from the committed
   * proposal's blob (docs/protocol.md#node-flows-what-the-sidecar-does). Returns the current generation it holds.
   */
  async function catchUp(header?: ViewHeader): Promise<number> {
    const at = header ?? (await deps.viewAt())
    const master = (await deps.view.read(at, { master: true })).master()
    const chainGeneration = master.generation
    const all = Array.from({ length: Number(chainGeneration) }, (_, i) => BigInt(i + 1))
    const state = await deps.view.read(at, { master: true, generations: all, requests: keyring.nodeKey ? [keyring.nodeKey.memberId] : [] })
    for (const g of all) {
      const record = state.generation(g)
      keyring.setFacts(Number(g), { xPub: record.xPub, revoked: record.revoked, purged: record.purged, retiresAt: record.retiresAt })
      const held = keyring.get(Number(g))
      if (held && !sameAddress(held.address, record.xPub)) throw new Error(`the secret held for generation ${g} is not its key in the verified chain`)
      if (record.purged) keyring.purge(Number(g))
    }
    for (const g of all) {
      const n = Number(g)
      const record = state.generation(g)
      if (keyring.get(n) || record.purged) continue
      const proposed = keyring.proposed
      if (proposed && proposed.generation === n && sameAddress(proposed.secret.address, record.xPub)) {
        keyring.add(n, proposed.secret)
        keyring.clearProposed()
        logger.info({ generation: n, xPub: record.xPub }, 'committed generation taken from the sealed proposed secret')
        continue
      }
      const nodeKey = keyring.nodeKey
      if (!nodeKey || g < 2n) continue
      const taken = await fromCommittedProposal(at, g, record.xPub, nodeKey).catch((error: unknown) => {
        logger.warn({ generation: n, error: (error as Error).message.split('\n')[0] }, 'could not take a committed generation from its proposal')
        return undefined
      })
      if (taken) keyring.add(n, taken)
    }
    const proposed = keyring.proposed
    if (proposed && proposed.generation <= Number(chainGeneration)) keyring.clearProposed()
    const chainCurrent = Number(chainGeneration)
    if (keyring.get(chainCurrent) && keyring.current !== chainCurrent) {
      keyring.setCurrent(chainCurrent)
      deps.onCurrent(chainCurrent)
    }
    return keyring.current
  }

  /** A committed generation this member did not acknowledge (it was down): its share in the committed proposal's blob. */
  async function fromCommittedProposal(header: ViewHeader, generation: bigint, xPub: Address, nodeKey: { memberId: bigint; secretKey: Uint8Array }) {
    const proposalId = await deps.generations.committedProposal(generation)
    if (proposalId === undefined) return undefined
    const event = await deps.generations.proposedEvent(proposalId)
    if (!event || event.generation !== generation || !sameAddress(event.xPub, xPub)) return undefined
    if (!event.recipientIds.includes(nodeKey.memberId)) return undefined
    const envelope = await deps.fetchEnvelope(event.proposalBlobHash, event)
    if (envelope.kind !== 'rotate' || envelope.proposal !== proposalId) return undefined
    const entry = envelope.entries.find((e) => e.memberId === nodeKey.memberId)
    if (!entry) return undefined
    const bytes = eciesDecrypt(nodeKey.secretKey, entry.ciphertext, rotationAad({ chainId: deps.chainId, registry: deps.registryAddress, memberId: nodeKey.memberId, generation, proposal: proposalId }))
    const secret = createMasterSecret(bytes)
    bytes.fill(0)
    // The proven key of the committed generation decides; the event and the blob only carried the ciphertext.
    if (!sameAddress(secret.address, xPub)) {
      secret.expire()
      return undefined
    }
    logger.info({ generation: generation.toString(), header: header.blockNumber.toString() }, 'committed generation taken from its proposal blob')
    return secret
  }

  async function status() {
    const header = await deps.viewAt()
    const { state, rotation } = await readRotation(header)
    const nodeKey = keyring.nodeKey
    const acked =
      nodeKey && rotation.proposal.id !== 0n
        ? (await deps.view.read(header, { acks: [{ proposal: rotation.proposal.id, memberId: nodeKey.memberId }] })).acknowledged(rotation.proposal.id, nodeKey.memberId)
        : false
    // This member's place among the members (a hint from events, for liveness only: who proposes or commits first).
    const ids = nodeKey ? (await deps.generations.confirmedIds()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : []
    const memberRank = nodeKey ? Math.max(0, ids.indexOf(nodeKey.memberId)) : 0
    return {
      memberRank,
      block: header.blockNumber.toString(),
      generation: rotation.generation.toString(),
      held: keyring.held(),
      current: keyring.current,
      memberId: nodeKey?.memberId.toString() ?? null,
      memberStatus: nodeKey ? state.request(nodeKey.memberId).status : null,
      memberCount: rotation.memberCount.toString(),
      rotation: {
        open: rotation.open,
        emergency: rotation.emergency,
        overlap: rotation.overlap.toString(),
        forceDelay: rotation.forceDelay.toString(),
        startedAt: rotation.startedAt.toString(),
      },
      proposal:
        rotation.proposal.id === 0n
          ? null
          : {
              id: rotation.proposal.id.toString(),
              generation: rotation.proposal.generation.toString(),
              xPub: rotation.proposal.xPub,
              proposerId: rotation.proposal.proposerId.toString(),
              acks: rotation.proposal.acks,
              quorum: rotation.proposal.quorum,
              recipients: rotation.proposal.recipients,
              acknowledgedByThisNode: acked,
              refusedByThisNode: refused.get(rotation.proposal.id) ?? null,
            },
    }
  }

  return { propose, acknowledge, commit, catchUp, status, provenMembers, readRotation, refused }
}
export type Rotation = ReturnType<typeof createRotation>
