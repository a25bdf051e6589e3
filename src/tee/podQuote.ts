// Quotes for pods (dstack `GetQuote`, docs/protocol.md#http-api) come from the node's own quote provider, so they carry the
// node's allow-listed measurement. A pod is trusted for its own keys only (docs/protocol.md#actors-and-trust): it must never obtain a
// quote that a helper would accept as this node's bootstrap, register or rotate quote, or it could request onboarding
// with its own key and receive the master secret. Every protocol report data ends in PROTOCOL_MARKER
// (docs/protocol.md#report-data), so exactly the report data whose last 32 bytes equal the marker is refused, and
// everything else is served: dstack apps' usual 32-byte data (zero-padded to 64), 64 bytes, text.
import { KeymanagerError } from '../errors.ts'
import { isProtocolShaped } from '../keys/reportData.ts'
import type { QuoteProvider } from './types.ts'

export const POD_REPORT_DATA_REFUSED =
  'report data whose last 32 bytes are keccak256("keymanager.report-data.v2") is reserved for keymanager protocol quotes'

/** Throws KeymanagerError `forbidden` for report data the protocol reserves; every pod-reachable quote path calls it. */
export function assertPodReportData(reportData: Uint8Array): void {
  if (reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes (zero-padded)')
  if (isProtocolShaped(reportData)) throw new KeymanagerError('forbidden', POD_REPORT_DATA_REFUSED)
}

/** Wraps the node's quote provider for pods: the report data is taken as given (zero-padded, not hashed). */
export function podQuoteSource(provider: Pick<QuoteProvider, 'getQuote'>) {
  return async function podQuote(reportData: Uint8Array): Promise<Uint8Array> {
    assertPodReportData(reportData)
    return provider.getQuote(reportData)
  }
}
