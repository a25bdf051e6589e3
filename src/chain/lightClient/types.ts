// What the consensus half of the verified chain view hands to the execution half (docs/protocol.md#verified-chain-view).
// A `VerifiedHeader` is an execution block whose hash, state root, number and timestamp were read from a beacon
// block header that the sync-committee light client accepted: 2/3 of the committee signed it (or, for `finalized:
// false`, the explicit devnet optimistic option allowed it), and the execution payload header is proven against the
// beacon body root by its Merkle branch. Nothing in it comes from the host unverified.
import type { Hex } from 'viem'

export type VerifiedHeader = {
  /** Beacon slot of the header. */
  slot: bigint
  /** hash_tree_root of the beacon block header. */
  beaconRoot: Hex
  /** Execution block number. */
  blockNumber: bigint
  /** Execution block hash. */
  blockHash: Hex
  /** Execution state root, from the verified execution payload header. */
  stateRoot: Hex
  /** Execution block timestamp, seconds. */
  timestamp: bigint
  /** False only when the devnet optimistic option is on and the header is not finalized yet. */
  finalized: boolean
}

export interface HeaderSource {
  /** Latest verified header (finalized unless the devnet optimistic option is on); fetches updates first. */
  latest(): Promise<VerifiedHeader>
}
