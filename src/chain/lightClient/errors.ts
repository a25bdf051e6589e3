// Typed errors of the light client (docs/protocol.md#verified-chain-view), in viem's manner: one base class, a stable
// `reason` fit for a stored refusal or `/status`, a one-line `shortMessage` and the facts as `metaMessages`. Every
// message is public data (roots, slots, URLs, sizes), never a secret.
import { ChainError, type ChainErrorParameters } from '../errors.ts'

export type LightClientErrorReason =
  /** The beacon node could not be reached, timed out, or answered with an HTTP error. */
  | 'beacon_unavailable'
  /** The answer was bigger than the cap for its route. */
  | 'response_too_large'
  /** Not JSON, not `{version, data}`, or `data` does not decode as the named fork's SSZ type. */
  | 'malformed_response'
  /** A fork name this build does not know, or a fork scheduled after what it can verify. */
  | 'unknown_fork'
  /** The `version` an answer names is not the fork our config has at the header's slot. */
  | 'fork_mismatch'
  /** The bootstrap's header is not the measured checkpoint root. */
  | 'bootstrap_root_mismatch'
  /** The bootstrap's committee branch or execution branch does not verify. */
  | 'invalid_bootstrap'
  /** An update failed the spec's checks: too few signers, a bad branch, a bad signature, an unknown committee. */
  | 'invalid_update'
  /** Nothing verified yet: no bootstrap, and no sealed store to resume from. */
  | 'not_initialized'
  /** The sealed store does not unseal (another key or label, or tampered) or does not decode. */
  | 'sealed_store'

export class LightClientError extends ChainError {
  override name = 'LightClientError'
  constructor(
    readonly reason: LightClientErrorReason,
    shortMessage: string,
    parameters: ChainErrorParameters = {},
  ) {
    super(reason === 'beacon_unavailable' ? 'upstream_failed' : reason === 'not_initialized' ? 'not_ready' : 'unprocessable', shortMessage, parameters)
  }
}
