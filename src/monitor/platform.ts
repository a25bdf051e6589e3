// This platform's own attestation standing, for the operator (status page, metrics, alerts): the node quotes itself
// over report data that binds nothing, verifies the quote with its production verifier (the one it judges other
// nodes' quotes with), and reads the collateral that verification used: TCB status and advisories, when the
// collateral expires (the earliest nextUpdate of TCB info, QE identity and both CRLs), and Intel's TCB evaluation
// data number (a new number means a TCB recovery: platforms rated UpToDate today may not be under the new number).
//
// Operator information only: nothing here decides whether to release or accept the master secret. The expiry
// countdown uses the host clock, which is right for a warning to a person and is never used for a decision.
import { keccak256, toBytes } from 'viem'
import type { Collateral, CollateralRequest } from '../tee/collateral.ts'
import { collateralExpiresAt } from '../tee/collateral.ts'
import { QuoteVerificationError, type QuoteProvider, type QuoteVerifier, type TcbStatus } from '../tee/types.ts'

/**
 * Report data of the self-check quote: a label hash and 32 bytes of 0xff, so it has neither the shape of a protocol
 * report data (docs/protocol.md#report-data) nor that of an app's. The quote never leaves this module.
 */
export const PLATFORM_CHECK_REPORT_DATA: Uint8Array = new Uint8Array([
  ...toBytes(keccak256(toBytes('keymanager.platform-check.v1'))),
  ...new Uint8Array(32).fill(0xff),
])

export type PlatformReport = {
  /** Unix seconds (host clock) of the check. */
  checkedAt: number
  teeType: 'tdx' | 'sgx'
  status: TcbStatus
  advisoryIds: string[]
  fmspc: `0x${string}`
  measurementId: `0x${string}`
  /** Unix seconds; null when the collateral used could not be read back. */
  collateralExpiresAt: number | null
  tcbEvaluationDataNumber: number | null
}

export type PlatformCheckResult = { ok: true; report: PlatformReport } | { ok: false; checkedAt: number; reason: string; message: string }

/** Remembers the last collateral a verifier was given per TEE type and FMSPC (quote.ts `onCollateral`). */
export function collateralRecorder() {
  const seen = new Map<string, Collateral>()
  return {
    record(request: Pick<CollateralRequest, 'teeType' | 'fmspc'>, collateral: Collateral) {
      seen.set(`${request.teeType}:${request.fmspc.toLowerCase()}`, collateral)
    },
    last(teeType: string, fmspc: string): Collateral | undefined {
      return seen.get(`${teeType}:${fmspc.toLowerCase()}`)
    },
  }
}
export type CollateralRecorder = ReturnType<typeof collateralRecorder>

/** The TCB evaluation data number of a collateral's TCB info; null when absent or not a non-negative integer. */
export function tcbEvaluationDataNumber(collateral: Collateral): number | null {
  try {
    const value = (JSON.parse(collateral.tcb_info) as { tcbEvaluationDataNumber?: unknown }).tcbEvaluationDataNumber
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null
  } catch {
    return null
  }
}

export function createPlatformCheck(deps: {
  quoteProvider: Pick<QuoteProvider, 'getQuote'>
  verifier: QuoteVerifier
  collateral: CollateralRecorder
  now(): number
}) {
  return async function checkPlatform(): Promise<PlatformCheckResult> {
    const checkedAt = deps.now()
    try {
      const quote = await deps.quoteProvider.getQuote(PLATFORM_CHECK_REPORT_DATA)
      const verified = await deps.verifier.verify(quote, { now: checkedAt })
      const collateral = deps.collateral.last(verified.teeType, verified.fmspc)
      let expiresAt: number | null = null
      if (collateral) {
        try {
          expiresAt = collateralExpiresAt(collateral)
        } catch {
          expiresAt = null
        }
      }
      return {
        ok: true,
        report: {
          checkedAt,
          teeType: verified.teeType,
          status: verified.status,
          advisoryIds: verified.advisoryIds,
          fmspc: verified.fmspc,
          measurementId: verified.measurementId,
          collateralExpiresAt: expiresAt,
          tcbEvaluationDataNumber: collateral ? tcbEvaluationDataNumber(collateral) : null,
        },
      }
    } catch (error) {
      if (error instanceof QuoteVerificationError) return { ok: false, checkedAt, reason: error.reason, message: error.message }
      return { ok: false, checkedAt, reason: 'quote_unavailable', message: (error as Error).message }
    }
  }
}
