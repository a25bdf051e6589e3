// Why the verified chain view refused to answer (docs/protocol.md#verified-chain-view). Each reason is a stable
// string: a helper records it as the reason of its refusal, `/status` shows it and metrics count it.
import { ChainError, type ChainErrorParameters } from '../errors.ts'

export const CHAIN_VIEW_REASONS = [
  /** An account or storage proof does not lead from the verified state root to the value the RPC claims. */
  'invalid_proof',
  /** The block the RPC served for the verified block hash does not hash to it, or carries another state root. */
  'invalid_block',
  /** The registry account's code hash is not the one pinned in the measured settings (or there is no account). */
  'registry_code_mismatch',
  /** The verified view did not reach a block holding this decision's freshness mark in time. */
  'stale_chain_view',
  /** No verified header could be had (light client not synced, beacon data refused or unreachable). */
  'unverified_chain',
] as const
export type ChainViewReason = (typeof CHAIN_VIEW_REASONS)[number]

export function isChainViewReason(reason: string | null | undefined): reason is ChainViewReason {
  return (CHAIN_VIEW_REASONS as readonly string[]).includes(reason ?? '')
}

/** The chain as the enclave verified it cannot answer this read; nothing may be decided on it. */
export class ChainViewError extends ChainError {
  override name = 'ChainViewError'
  constructor(
    readonly reason: ChainViewReason,
    shortMessage: string,
    parameters: ChainErrorParameters = {},
  ) {
    super(reason === 'unverified_chain' || reason === 'stale_chain_view' ? 'not_ready' : 'upstream_failed', shortMessage, parameters)
  }
}
