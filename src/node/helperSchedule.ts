// Who answers a batch of onboarding requests (docs/protocol.md#help-schedule): one designated helper per batch,
// chosen from chain data every helper reads alike, the others waiting their turn behind it.
//
// A batch is named by its oldest pending request id. The helpers are the members (requests proven `confirmed`),
// ordered by node-key address. The designated helper is the member at index
//   keccak256(abi.encode("keymanager.help-schedule.v1", oldestRequestId)) mod n
// and the member k places after it in address order (wrapping around) has rank k: ranks are a permutation of 0..n-1,
// so no two members ever share a turn. A ready node that is not a proven member (the bootstrap node before it joins,
// a newcomer whose confirmation is not yet proven) takes rank n: it covers only when every member let its turn pass.
//
// This decides liveness only. A host that lies about ids or members can make its own node act early (its transaction
// reverts and costs its own gas) or late; every release of `M` is still judged on the verified view (judge.ts).
import { encodeAbiParameters, keccak256, type Address } from 'viem'

export const HELP_SCHEDULE_TAG = 'keymanager.help-schedule.v1'
export const ESCROW_SCHEDULE_TAG = 'keymanager.escrow-schedule.v1'

export type ScheduleMember = { memberId: bigint; key: Address }

/** Members in schedule order: ascending node-key address (ties, which the contract cannot produce, by member id). */
export function orderMembers(members: readonly ScheduleMember[]): ScheduleMember[] {
  const seen = new Set<bigint>()
  const unique = members.filter((m) => (seen.has(m.memberId) ? false : (seen.add(m.memberId), true)))
  return unique.sort((a, b) => {
    const ka = BigInt(a.key)
    const kb = BigInt(b.key)
    if (ka !== kb) return ka < kb ? -1 : 1
    return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0
  })
}

/** Index in `orderMembers(...)` of the batch's designated helper (n > 0). */
export function designatedIndex(batch: bigint, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`member count must be a positive integer, got ${n}`)
  if (batch < 0n) throw new RangeError(`batch (a request id) must not be negative, got ${batch}`)
  const seed = keccak256(encodeAbiParameters([{ type: 'string' }, { type: 'uint256' }], [HELP_SCHEDULE_TAG, batch]))
  return Number(BigInt(seed) % BigInt(n))
}

/**
 * This node's rank for `batch` (0 acts first). `self` is its member id, or null when it is not a member; a member id
 * absent from `members` (not proven confirmed) counts as not a member: rank `members.length`.
 */
export function helperRank(batch: bigint, members: readonly ScheduleMember[], self: bigint | null): number {
  const ordered = orderMembers(members)
  const index = self === null ? -1 : ordered.findIndex((m) => m.memberId === self)
  if (index < 0) return ordered.length
  const start = designatedIndex(batch, ordered.length)
  return (index - start + ordered.length) % ordered.length
}

/** The members in the order they act on `batch`: designated first. */
export function helperOrder(batch: bigint, members: readonly ScheduleMember[]): ScheduleMember[] {
  const ordered = orderMembers(members)
  if (ordered.length === 0) return []
  const start = designatedIndex(batch, ordered.length)
  return [...ordered.slice(start), ...ordered.slice(0, start)]
}

/**
 * How long a helper of `rank` waits after it first saw the batch before acting: a short gathering window (requests
 * sent together share one answer) plus one turn per rank ahead of it. A turn must outlast a helper's round (freshness
 * mark, view, judging, blob, mined answer) or two helpers answer and one reverts.
 */
export function turnDelayMs(rank: number, { gatherMs, turnMs }: { gatherMs: number; turnMs: number }): number {
  if (!Number.isSafeInteger(rank) || rank < 0) throw new RangeError(`rank must be a non-negative integer, got ${rank}`)
  return gatherMs + rank * turnMs
}

/**
 * The batch of an escrow (docs/protocol.md#guardians): generation g's escrow to guardian set s is scheduled like a batch
 * of requests, named by `keccak256(abi.encode("keymanager.escrow-schedule.v1", s, g))`, so one member is designated
 * per generation and set and the others wait their turns behind it.
 */
export function escrowBatch(guardianSet: bigint, generation: bigint): bigint {
  if (guardianSet <= 0n || generation <= 0n) throw new RangeError(`guardian set and generation must be positive, got ${guardianSet} and ${generation}`)
  return BigInt(keccak256(encodeAbiParameters([{ type: 'string' }, { type: 'uint64' }, { type: 'uint64' }], [ESCROW_SCHEDULE_TAG, guardianSet, generation])))
}
