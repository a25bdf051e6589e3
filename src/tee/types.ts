// The seams between the sidecar and the TEE (docs/protocol.md#tee-providers). Production and simulated quotes pass through the
// same interfaces, so the devnet exercises the code path a real node runs.
import type { Hex } from 'viem'
import type { Collateral } from './collateral.ts'
import type { TdxEvent } from './eventLog.ts'
import { KeymanagerError } from '../errors.ts'

export type TeeType = 'tdx' | 'sgx'

/** TCB statuses as Intel's TCB info names them; bit positions follow docs/protocol.md#registry-contract (`setTcbPolicy`). */
export const TCB_STATUS_BITS = {
  UpToDate: 0,
  SWHardeningNeeded: 1,
  ConfigurationNeeded: 2,
  ConfigurationAndSWHardeningNeeded: 3,
  OutOfDate: 4,
  OutOfDateConfigurationNeeded: 5,
} as const
export type TcbStatus = keyof typeof TCB_STATUS_BITS | 'Revoked'

/** A quote with what a verifier needs to read its registers (dstack `GetQuote`, docs/protocol.md#dstack-api). */
export type QuoteEvidence = {
  quote: Uint8Array
  /** Full event log (boot-time payloads included where the platform gives them); replays to the quote's RTMRs. */
  eventLog: TdxEvent[]
  /** The platform's VM config JSON (dstack's `vm_config`), "" when it has none. */
  vmConfig: string
}

/**
 * Facts of the CVM that only the platform knows, for dstack `Info` (docs/protocol.md#dstack-api): informational, no
 * decision rests on them. "" where the platform does not say.
 */
export type PlatformInfo = {
  /** dstack's device id (hex without 0x). */
  deviceId: string
  /** The CVM's app-compose.json, as the dstack agent reports it. */
  appCompose: string
  cloudVendor: string
  cloudProduct: string
}

/** Produces a quote whose report data is exactly the 64 bytes asked for. */
export interface QuoteProvider {
  readonly name: string
  readonly teeType: TeeType
  getQuote(reportData: Uint8Array): Promise<Uint8Array>
  /** The quote together with its event log and VM config, read as one (TDX providers). */
  quoteWithEvidence?(reportData: Uint8Array): Promise<QuoteEvidence>
  /**
   * Extends RTMR3 with a dstack runtime event and appends it to the event log (where the platform lets the guest do
   * so). Every later quote of this TEE, the node's own included, carries the new RTMR3.
   */
  emitEvent?(event: string, payload: Uint8Array): Promise<void>
  /** What the platform says of the CVM (provider `dstack`: the agent's `Info`). */
  platformInfo?(): Promise<PlatformInfo>
}

/** What a successfully verified quote tells (docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#command-line `quote verify --json`). */
export type VerifiedQuote = {
  teeType: TeeType
  status: TcbStatus
  advisoryIds: string[]
  /** 6-byte FMSPC, 0x-prefixed lowercase hex. */
  fmspc: Hex
  /** Named raw measurement fields (mrTd, rtMr0…, or mrEnclave, mrSigner…), 0x-hex. */
  measurements: Record<string, Hex>
  /** keccak256 of `measurementRaw` (docs/protocol.md#measurements-and-tcb-policy). */
  measurementId: Hex
  /** The packed preimage of the measurement id, as `addMeasurement(id, raw)` takes it. */
  measurementRaw: Hex
  /** The 64 report-data bytes. */
  reportData: Uint8Array
  /** Unix seconds the collateral was issued (the oldest of its parts); for the policy's max collateral age. */
  collateralIssuedAt: number
  /**
   * The lower of the TCB info's and the QE identity's `tcbEvaluationDataNumber`: how recent Intel's rating of this
   * platform is (docs/protocol.md#measurements-and-tcb-policy, `minTcbEvaluationDataNumber`).
   */
  tcbEvaluationDataNumber: number
  /**
   * The exact collateral the quote was checked against (public Intel data), so a node can keep it with its decision
   * for a later audit (docs/protocol.md#node-state). Absent from verifiers that do not use DCAP collateral.
   */
  collateral?: Collateral
}

/** Verifies a quote's signatures and TCB level; throws `QuoteVerificationError` with a reason when it fails. */
export interface QuoteVerifier {
  verify(quote: Uint8Array, options?: { now?: number }): Promise<VerifiedQuote>
}

/** A quote that does not verify, with the reason a helper records (docs/protocol.md#help). */
export class QuoteVerificationError extends KeymanagerError {
  override name = 'QuoteVerificationError'
  constructor(
    /** Short machine-readable reason, e.g. `bad_signature`, `collateral_expired`, `malformed_quote`. */
    readonly reason: string,
    message: string,
  ) {
    super(reason === 'collateral_unavailable' ? 'upstream_failed' : 'unprocessable', message)
  }
}
