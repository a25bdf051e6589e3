// The on-chain TCB policy applied to a verified quote (docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#registry-contract `setTcbPolicy`, `isFmspcAllowed`,
// `isMeasurementAllowed`). Verification says what the quote is; this says whether the network accepts it.
import type { Hex } from 'viem'
import { TCB_STATUS_BITS, type VerifiedQuote } from './types.ts'

export type TcbPolicy = {
  /** Bitmask of accepted TCB statuses, bit positions as `TCB_STATUS_BITS` (docs/protocol.md#registry-contract); Revoked is never accepted. */
  acceptedStatuses: number
  /** Oldest acceptable collateral, in seconds since `collateralIssuedAt`; 0 means no limit. */
  maxCollateralAge: bigint | number
  fmspcAllowlistOn: boolean
  /** `minTcbEvaluationDataNumber()`: the collateral's evaluation number must be at least this; 0 means no minimum. */
  minTcbEvaluationDataNumber: number
  isFmspcAllowed(fmspc: Hex): Promise<boolean>
  isMeasurementAllowed(measurementId: Hex): Promise<boolean>
}

export type PolicyReason =
  | 'measurement_not_allowed'
  | 'tcb_status_not_accepted'
  | 'tcb_evaluation_too_old'
  | 'fmspc_not_allowed'
  | 'collateral_too_old'
export type PolicyDecision = { ok: true } | { ok: false; reason: PolicyReason; message: string }

/**
 * Checks a verified quote against the policy at `now` (unix seconds), in this order: measurement allowed, TCB
 * status accepted, TCB evaluation data number at least the minimum, FMSPC allowed (when the allow-list is on),
 * collateral not older than `maxCollateralAge`.
 */
export async function checkPolicy(verified: VerifiedQuote, policy: TcbPolicy, now: number): Promise<PolicyDecision> {
  const { acceptedStatuses } = policy
  if (!Number.isInteger(acceptedStatuses) || acceptedStatuses < 0 || acceptedStatuses > 0xffff) {
    throw new RangeError(`acceptedStatuses must be a uint16 bitmask, got ${acceptedStatuses}`)
  }
  const maxAge = BigInt(policy.maxCollateralAge)
  if (maxAge < 0n) throw new RangeError(`maxCollateralAge must not be negative, got ${maxAge}`)
  if (!Number.isSafeInteger(now)) throw new RangeError(`now must be unix seconds, got ${now}`)
  const minimum = policy.minTcbEvaluationDataNumber
  if (!Number.isInteger(minimum) || minimum < 0 || minimum > 0xffffffff) {
    throw new RangeError(`minTcbEvaluationDataNumber must be a uint32, got ${minimum}`)
  }

  if (!(await policy.isMeasurementAllowed(verified.measurementId))) {
    return deny('measurement_not_allowed', `measurement ${verified.measurementId} is not allowed`)
  }
  const status = verified.status
  const accepted = status !== 'Revoked' && Object.hasOwn(TCB_STATUS_BITS, status) && (acceptedStatuses >> TCB_STATUS_BITS[status]) & 1
  if (!accepted) return deny('tcb_status_not_accepted', `TCB status ${status} is not accepted`)
  // A TCB status is only as current as the evaluation that rated it: collateral from before Intel's last TCB recovery
  // can still say UpToDate for a platform that recovery moved to OutOfDate.
  if (verified.tcbEvaluationDataNumber < minimum) {
    return deny(
      'tcb_evaluation_too_old',
      `collateral has TCB evaluation data number ${verified.tcbEvaluationDataNumber}, the policy requires at least ${minimum}`,
    )
  }
  if (policy.fmspcAllowlistOn && !(await policy.isFmspcAllowed(verified.fmspc))) {
    return deny('fmspc_not_allowed', `FMSPC ${verified.fmspc} is not on the allow-list`)
  }
  const age = BigInt(now) - BigInt(verified.collateralIssuedAt)
  if (maxAge > 0n && age > maxAge) {
    return deny('collateral_too_old', `collateral issued ${age} s ago, the policy accepts at most ${maxAge} s`)
  }
  return { ok: true }
}

const deny = (reason: PolicyReason, message: string): PolicyDecision => ({ ok: false, reason, message })
