// Quotes for pods (dstack `GetQuote`, docs/protocol.md#http-api) come from the node's own quote provider, so they carry the
// node's allow-listed measurement. A pod is trusted for its own keys only (docs/protocol.md#actors-and-trust): it must never obtain a
// quote that a helper would accept as this node's bootstrap or register quote, or it could request onboarding with
// its own key and receive the master secret. The protocol's report data is `keccak256(…) ‖ 32 zero bytes`
// (docs/protocol.md#report-data), so pod report data whose last 32 bytes are all zero is refused: a pod's report data must use
// more than 32 bytes (or put a non-zero byte in the second half). This keeps docs/protocol.md#report-data's byte format unchanged.
import { KeymanagerError } from '../errors.ts'
import type { QuoteProvider } from './types.ts'

export const POD_REPORT_DATA_REFUSED =
  'report data whose last 32 bytes are zero is reserved for keymanager protocol quotes; use 33 to 64 bytes'

/** Throws KeymanagerError `forbidden` for report data the protocol reserves; every pod-reachable quote path calls it. */
export function assertPodReportData(reportData: Uint8Array): void {
  if (reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes (zero-padded)')
  if (reportData.subarray(32).every((byte) => byte === 0)) throw new KeymanagerError('forbidden', POD_REPORT_DATA_REFUSED)
}

/** Wraps the node's quote provider for pods: the report data is taken as given (zero-padded, not hashed). */
export function podQuoteSource(provider: Pick<QuoteProvider, 'getQuote'>) {
  return async function podQuote(reportData: Uint8Array): Promise<Uint8Array> {
    assertPodReportData(reportData)
    return provider.getQuote(reportData)
  }
}
