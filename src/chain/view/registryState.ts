// Typed reads of the registry's state at one block (docs/protocol.md#verified-chain-view): a query names what a
// decision needs, `querySlots` turns it into storage slots (one `eth_getProof` for all of them), and
// `registryState` decodes the proven slot values into fields. Derived answers (`isMeasurementAllowed`,
// `isFmspcAllowed`) are computed here the way the contract computes them, with the verified block's timestamp as
// "now": the node never asks the RPC to evaluate a view function.
import { numberToHex, type Address, type Hex } from 'viem'
import { REQUEST_STATUS, type RequestStatus } from '../registry.ts'
import {
  KEY_MANAGER_LAYOUT as L,
  REQUEST_MEMBERS as R,
  asAddress,
  asBytes32,
  fmspcSlot,
  freshnessSlot,
  measurementSlot,
  member,
  requestSlot,
  GENERATION_MEMBERS as G,
  PROPOSAL_MEMBERS as P,
  ROTATION_MEMBERS as ROT,
  KEY_MANAGER_STRUCTS,
  acknowledgedSlot,
  generationSlot,
  GUARDIAN_SET_MEMBERS as GS,
  guardianIndexSlot,
  guardianSetSlot,
  releasedSharesSlot,
} from './layout.ts'

export type RegistryQuery = {
  /** xPub, generation and master public key. */
  master?: boolean
  /** Request counter, request lifetime and the TCB policy (one packed slot). */
  policy?: boolean
  requests?: readonly bigint[]
  measurements?: readonly Hex[]
  /** FMSPC allow-list entries (6 bytes each). */
  fmspcs?: readonly Hex[]
  /** Freshness marks (freshness.ts). */
  marks?: readonly Hex[]
  /** Generation records (docs/protocol.md#generations), slot 11. */
  generations?: readonly bigint[]
  /** Members and the rotation: member and proposal counters (13), the open rotation (14), the pending proposal (15-18), slot 2. */
  rotation?: boolean
  /** `acknowledged[proposal][memberId]` entries (slot 19). */
  acks?: readonly { proposal: bigint; memberId: bigint }[]
  /** Guardian set counters (slot 20) and the open recovery (slot 23). */
  guardians?: boolean
  /** `guardianSets[set]` entries (slot 21): keys hash, threshold, count, activation time. */
  guardianSets?: readonly bigint[]
  /** `guardianIndex[set][guardian]` entries (slot 22). */
  guardianIndexes?: readonly { guardianSet: bigint; guardian: Address }[]
  /** `releasedShares[requestId][generation]` bit sets (slot 24). */
  released?: readonly { requestId: bigint; generation: bigint }[]
}

/** A guardian set's record (docs/protocol.md#guardians); count 0 for an unknown set or one that names no guardians. */
export type ProvenGuardianSet = { guardianSet: bigint; pubkeysHash: Hex; threshold: number; count: number; activatesAt: bigint }

/** The block a read was made at: its number and timestamp are verified along with its state root. */
export type StateBlock = { blockNumber: bigint; timestamp: bigint }

export type ProvenRequest = {
  key: Address
  expiresAt: bigint
  status: RequestStatus
  commitment: Hex
  /** The generation the request was last answered under (0 while unanswered; for a member, the one it joined under). */
  generation: bigint
}

/** A generation's record as `generationInfo(g)` returns it (docs/protocol.md#generations); xPub zero when unknown. */
export type ProvenGeneration = {
  generation: bigint
  xPub: Address
  /** SEC1-compressed, `0x` for an unknown generation. */
  masterPubkey: Hex
  retiresAt: bigint
  revoked: boolean
  purged: boolean
  quoteBlobHash: Hex
  escrowHash: Hex
  escrowGuardianSet: bigint
  committedAt: bigint
}

/** The open rotation, the pending proposal and the counters (slots 2, 13-18). */
export type ProvenRotation = {
  generation: bigint
  currentRevoked: boolean
  proposalPending: boolean
  memberCount: bigint
  proposalCount: bigint
  open: boolean
  emergency: boolean
  overlap: bigint
  forceDelay: bigint
  startedAt: bigint
  /** id 0n when no proposal is pending. */
  proposal: {
    id: bigint
    generation: bigint
    proposedAt: bigint
    recipients: number
    acks: number
    /** A strict majority of the recipients, as the contract computes it. */
    quorum: number
    xPub: Address
    proposerId: bigint
    masterPubkey: Hex
    blobHash: Hex
  }
}

const compressed = (prefix: bigint, x: bigint): Hex => `${numberToHex(prefix, { size: 1 })}${asBytes32(x).slice(2)}` as Hex

const lower = (hex: Hex) => hex.toLowerCase() as Hex
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'

/** The storage slots a query reads, without duplicates. */
export function querySlots(query: RegistryQuery): bigint[] {
  const slots = new Set<bigint>()
  if (query.master) [L.xPub.slot, L.masterPubkeyX.slot].forEach((s) => slots.add(s))
  if (query.policy) slots.add(L.requestTtl.slot)
  for (const id of query.requests ?? []) {
    const base = requestSlot(id)
    slots.add(base)
    slots.add(base + 1n)
  }
  for (const id of query.measurements ?? []) slots.add(measurementSlot(id))
  for (const fmspc of query.fmspcs ?? []) slots.add(fmspcSlot(fmspc))
  for (const mark of query.marks ?? []) slots.add(freshnessSlot(mark))
  for (const g of query.generations ?? []) {
    const base = generationSlot(g)
    for (let i = 0n; i < 5n; i++) slots.add(base + i)
  }
  if (query.rotation) {
    slots.add(L.xPub.slot)
    slots.add(L.memberCount.slot)
    slots.add(KEY_MANAGER_STRUCTS.rotation.slot)
    for (let i = 0n; i < 4n; i++) slots.add(KEY_MANAGER_STRUCTS.proposal.slot + i)
  }
  for (const { proposal, memberId } of query.acks ?? []) slots.add(acknowledgedSlot(proposal, memberId))
  if (query.guardians) {
    slots.add(L.guardianSetCount.slot)
    slots.add(L.recoveryRequestId.slot)
  }
  for (const set of query.guardianSets ?? []) {
    slots.add(guardianSetSlot(set))
    slots.add(guardianSetSlot(set) + 1n)
  }
  for (const { guardianSet, guardian } of query.guardianIndexes ?? []) slots.add(guardianIndexSlot(guardianSet, guardian))
  for (const { requestId, generation } of query.released ?? []) slots.add(releasedSharesSlot(requestId, generation))
  return [...slots]
}

/** Decodes proven slot values (`values` has every slot of `querySlots(query)`) into the registry's fields. */
export function registryState(block: StateBlock, query: RegistryQuery, values: ReadonlyMap<bigint, bigint>) {
  const value = (slot: bigint) => {
    const v = values.get(slot)
    if (v === undefined) throw new Error(`slot ${numberToHex(slot)} was not read (add it to the query)`)
    return v
  }
  const asked = (what: string, ok: boolean | undefined) => {
    if (!ok) throw new Error(`${what} was not part of the query`)
  }
  const inList = <T>(list: readonly T[] | undefined, item: T, eq: (a: T, b: T) => boolean) => (list ?? []).some((x) => eq(x, item))
  const sameHex = (a: Hex, b: Hex) => lower(a) === lower(b)

  function tcbPolicy() {
    asked('the TCB policy', query.policy)
    const slot = value(L.requestTtl.slot)
    return {
      acceptedStatuses: Number(member(slot, L.acceptedTcbStatuses)),
      maxCollateralAge: member(slot, L.maxCollateralAge),
      fmspcAllowlistOn: member(slot, L.fmspcAllowlistOn) !== 0n,
      minTcbEvaluationDataNumber: Number(member(slot, L.minTcbEvaluationDataNumber)),
    }
  }

  function measurementActivatesAt(id: Hex): bigint {
    asked(`measurement ${id}`, inList(query.measurements, id, sameHex))
    return member(value(measurementSlot(id)), { offset: 0, bytes: 8 })
  }

  function fmspcListed(fmspc: Hex): boolean {
    asked(`FMSPC ${fmspc}`, inList(query.fmspcs, fmspc, sameHex))
    return member(value(fmspcSlot(fmspc)), { offset: 0, bytes: 1 }) !== 0n
  }

  function generationRecord(g: bigint): ProvenGeneration {
    asked(`generation ${g}`, inList(query.generations, g, (a, b) => a === b))
    const base = generationSlot(g)
    const packed = value(base)
    const xPub = asAddress(member(packed, G.xPub))
    const known = member(packed, G.xPub) !== 0n
    const tail = value(base + 4n)
    return {
      generation: g,
      xPub,
      masterPubkey: known ? compressed(member(packed, G.pubkeyPrefix), value(base + 1n)) : '0x',
      retiresAt: member(packed, G.retiresAt),
      revoked: member(packed, G.revoked) !== 0n,
      purged: member(packed, G.purged) !== 0n,
      quoteBlobHash: asBytes32(value(base + 2n)),
      escrowHash: asBytes32(value(base + 3n)),
      escrowGuardianSet: member(tail, G.escrowGuardianSet),
      committedAt: member(tail, G.committedAt),
    }
  }

  return {
    block,
    master() {
      asked('the master key', query.master)
      const packed = value(L.xPub.slot)
      const generation = member(packed, L.generation)
      const prefix = Number(member(packed, L.masterPubkeyPrefix))
      return {
        xPub: asAddress(member(packed, L.xPub)),
        generation,
        /** Compressed (33 bytes), or `0x` before bootstrap: what `masterPubkey()` returns. */
        masterPubkey: (generation === 0n ? '0x' : `${numberToHex(prefix, { size: 1 })}${asBytes32(value(L.masterPubkeyX.slot)).slice(2)}`) as Hex,
      }
    },
    requestCount(): bigint {
      asked('the request counter', query.policy)
      return member(value(L.requestCount.slot), L.requestCount)
    },
    requestTtl(): bigint {
      asked('the request lifetime', query.policy)
      return member(value(L.requestTtl.slot), L.requestTtl)
    },
    tcbPolicy,
    request(requestId: bigint): ProvenRequest {
      asked(`request ${requestId}`, inList(query.requests, requestId, (a, b) => a === b))
      const base = requestSlot(requestId)
      const packed = value(base)
      return {
        key: asAddress(member(packed, R.key)),
        expiresAt: member(packed, R.expiresAt),
        status: REQUEST_STATUS[Number(member(packed, R.status))] ?? 'none',
        commitment: asBytes32(value(base + 1n)),
        generation: member(packed, R.generation),
      }
    },
    /** `generationInfo(g)`. */
    generation: generationRecord,
    /**
     * `isGenerationValid(g)` at this block's timestamp: current and not revoked, or older, not revoked and before its
     * `retiresAt` (docs/protocol.md#verification-across-generations). Needs `master` and `generations: [g]`.
     */
    isGenerationValid(g: bigint): boolean {
      asked('the master key', query.master || query.rotation)
      const current = member(value(L.xPub.slot), L.generation)
      const record = generationRecord(g)
      if (record.xPub === ZERO_ADDRESS || record.revoked || record.purged || g > current) return false
      return g === current || block.timestamp < record.retiresAt
    },
    rotation(): ProvenRotation {
      asked('the rotation', query.rotation)
      const packed = value(L.xPub.slot)
      const counters = value(L.memberCount.slot)
      const rot = value(KEY_MANAGER_STRUCTS.rotation.slot)
      const p0 = value(KEY_MANAGER_STRUCTS.proposal.slot)
      const p1 = value(KEY_MANAGER_STRUCTS.proposal.slot + 1n)
      const recipients = Number(member(p0, P.recipients))
      return {
        generation: member(packed, L.generation),
        currentRevoked: member(packed, L.currentRevoked) !== 0n,
        proposalPending: member(packed, L.proposalPending) !== 0n,
        memberCount: member(counters, L.memberCount),
        proposalCount: member(counters, L.proposalCount),
        open: member(rot, ROT.open) !== 0n,
        emergency: member(rot, ROT.emergency) !== 0n,
        overlap: member(rot, ROT.overlap),
        forceDelay: member(rot, ROT.forceDelay),
        startedAt: member(rot, ROT.startedAt),
        proposal: {
          id: member(p0, P.id),
          generation: member(p0, P.generation),
          proposedAt: member(p0, P.proposedAt),
          recipients,
          acks: Number(member(p0, P.acks)),
          quorum: Math.floor(recipients / 2) + 1,
          xPub: asAddress(member(p1, P.xPub)),
          proposerId: member(p1, P.proposerId),
          masterPubkey: member(p0, P.id) === 0n ? '0x' : compressed(member(p1, P.pubkeyPrefix), value(KEY_MANAGER_STRUCTS.proposal.slot + 2n)),
          blobHash: asBytes32(value(KEY_MANAGER_STRUCTS.proposal.slot + 3n)),
        },
      }
    },
    /** `hasAcknowledged(proposal, memberId)`. */
    acknowledged(proposal: bigint, memberId: bigint): boolean {
      asked(`the acknowledgement of ${memberId} for ${proposal}`, (query.acks ?? []).some((a) => a.proposal === proposal && a.memberId === memberId))
      return member(value(acknowledgedSlot(proposal, memberId)), { offset: 0, bytes: 1 }) !== 0n
    },
    measurementActivatesAt,
    /** `isMeasurementAllowed`: added, and active at this block's timestamp (docs/protocol.md#measurements-and-tcb-policy). */
    isMeasurementAllowed(id: Hex): boolean {
      const activatesAt = measurementActivatesAt(id)
      return activatesAt !== 0n && block.timestamp >= activatesAt
    },
    /** Guardian set counters (slot 20): the newest set id, the settled set and the pending one (0 when none). */
    guardianCounters(): { count: bigint; settled: bigint; pending: bigint } {
      asked('the guardian sets', query.guardians)
      const packed = value(L.guardianSetCount.slot)
      return { count: member(packed, L.guardianSetCount), settled: member(packed, L.settledGuardianSet), pending: member(packed, L.pendingGuardianSet) }
    },
    /** `guardianSetInfo(set)`. */
    guardianSet(set: bigint): ProvenGuardianSet {
      asked(`guardian set ${set}`, inList(query.guardianSets, set, (a, b) => a === b))
      const base = guardianSetSlot(set)
      const packed = value(base + 1n)
      return {
        guardianSet: set,
        pubkeysHash: asBytes32(value(base)),
        threshold: Number(member(packed, GS.threshold)),
        count: Number(member(packed, GS.count)),
        activatesAt: member(packed, GS.activatesAt),
      }
    },
    /**
     * `activeGuardianSet()` at this block's timestamp, computed as the contract does: the pending set once its time has
     * come, else the settled one (0 when none). Needs `guardians` and `guardianSets: [pending]` (when one is pending).
     */
    activeGuardianSet(): bigint {
      asked('the guardian sets', query.guardians)
      const packed = value(L.guardianSetCount.slot)
      const pending = member(packed, L.pendingGuardianSet)
      if (pending !== 0n) {
        asked(`guardian set ${pending} (the pending one)`, inList(query.guardianSets, pending, (a, b) => a === b))
        if (member(value(guardianSetSlot(pending) + 1n), GS.activatesAt) <= block.timestamp) return pending
      }
      return member(packed, L.settledGuardianSet)
    },
    /** `guardianIndex(set, guardian)`: 1-based share index, 0 when not a guardian of the set. */
    guardianIndex(guardianSet: bigint, guardian: Address): number {
      asked(`guardian ${guardian} of set ${guardianSet}`, (query.guardianIndexes ?? []).some((g) => g.guardianSet === guardianSet && sameHex(g.guardian, guardian)))
      return Number(member(value(guardianIndexSlot(guardianSet, guardian)), { offset: 0, bytes: 1 }))
    },
    /** `recoveryRequest()`: the open recovery's request id, 0 when none. */
    recoveryRequest(): bigint {
      asked('the open recovery', query.guardians)
      return value(L.recoveryRequestId.slot)
    },
    /** `releasedShares(requestId, generation)`: bit i set when share i was released. */
    releasedShares(requestId: bigint, generation: bigint): bigint {
      asked(`the released shares of ${requestId} for ${generation}`, (query.released ?? []).some((r) => r.requestId === requestId && r.generation === generation))
      return value(releasedSharesSlot(requestId, generation))
    },
    /** `freshnessMarkedAt`: the block that first recorded `mark`, 0 when it was never sent. */
    markedAt(mark: Hex): bigint {
      asked(`mark ${mark}`, inList(query.marks, mark, sameHex))
      return member(value(freshnessSlot(mark)), { offset: 0, bytes: 8 })
    },
    /** `isFmspcAllowed`: true when the allow-list is off, else whether the FMSPC is on it. */
    isFmspcAllowed(fmspc: Hex): boolean {
      return !tcbPolicy().fmspcAllowlistOn || fmspcListed(fmspc)
    },
  }
}
export type RegistryState = ReturnType<typeof registryState>
