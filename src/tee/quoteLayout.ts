// The byte layout of Intel DCAP quotes (docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#tee-providers):
// the one place in the code base that knows where a field of a quote lives. The parser (measurement.ts), the verifier
// (dcap.ts) and the devnet's quote simulator (src/devnet/simulated.ts) all read their offsets from here, so a
// simulated quote is laid out exactly as the parser reads a real one. Sources: Intel's "SGX ECDSA Quote Library API"
// (quote v3), "TDX DCAP Quoting Library API" (quote v4, v5), cross-checked against @phala/dcap-qvl's parser on the
// Intel-signed fixtures in quoteLayout.test.ts. All integers are little-endian.

/** A field of a structure: its offset from the start of that structure and its length, in bytes. */
export type QuoteField = { readonly offset: number; readonly length: number }

const field = (offset: number, length: number): QuoteField => Object.freeze({ offset, length })

/** The 48-byte quote header, at offset 0 of every quote version. */
export const QUOTE_HEADER_LENGTH = 48
export const QUOTE_HEADER = Object.freeze({
  version: field(0, 2),
  attestationKeyType: field(2, 2),
  teeType: field(4, 4),
  qeSvn: field(8, 2),
  pceSvn: field(10, 2),
  qeVendorId: field(12, 16),
  userData: field(28, 20),
})

/** `teeType` of the header. */
export const TEE_TYPE = Object.freeze({ sgx: 0x00000000, tdx: 0x00000081 })
/** `attestationKeyType` of the header: ECDSA-256 with P-256, the only type DCAP quotes use. */
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
/** Intel's quoting enclave vendor id (`qeVendorId`). */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607'

/** Quote v5 puts a body descriptor between the header and the body: body type (u16) and body size (u32). */
export const V5_BODY_DESCRIPTOR_LENGTH = 6
export const V5_BODY_DESCRIPTOR = Object.freeze({ bodyType: field(0, 2), bodySize: field(2, 4) })
/** v5 body types: a TDX 1.0 TD report, or a TDX 1.5 one (the 1.0 fields plus TEE_TCB_SVN2 and MRSERVICETD). */
export const V5_BODY_TYPE = Object.freeze({ td10: 2, td15: 3 })

/** The TDX TD report (the body of quote v4, and of v5 after the descriptor); offsets from the start of the body. */
export const TD10_REPORT_LENGTH = 584
export const TD15_REPORT_LENGTH = 648
export const TD_REPORT = Object.freeze({
  teeTcbSvn: field(0, 16),
  mrSeam: field(16, 48),
  mrSignerSeam: field(64, 48),
  seamAttributes: field(112, 8),
  tdAttributes: field(120, 8),
  xfam: field(128, 8),
  mrTd: field(136, 48),
  mrConfigId: field(184, 48),
  mrOwner: field(232, 48),
  mrOwnerConfig: field(280, 48),
  rtMr0: field(328, 48),
  rtMr1: field(376, 48),
  rtMr2: field(424, 48),
  rtMr3: field(472, 48),
  reportData: field(520, 64),
})
export type TdReportField = keyof typeof TD_REPORT

/**
 * The SGX enclave report: the body of quote v3, and the QE report inside every quote's certification data;
 * offsets from the start of the report.
 */
export const SGX_REPORT_LENGTH = 384
export const SGX_REPORT = Object.freeze({
  cpuSvn: field(0, 16),
  miscSelect: field(16, 4),
  attributes: field(48, 16),
  mrEnclave: field(64, 32),
  mrSigner: field(128, 32),
  isvProdId: field(256, 2),
  isvSvn: field(258, 2),
  reportData: field(320, 64),
})
export type SgxReportField = keyof typeof SGX_REPORT

/**
 * Auth data, after the signed part (header and body) and its u32 length: the attestation key's signature over the
 * signed part, the attestation public key (raw P-256 x ‖ y), then certification data.
 */
export const AUTH_DATA = Object.freeze({ signature: field(0, 64), attestationKey: field(64, 64), certificationData: 128 })
/** Certification data: type (u16), size (u32), then `size` bytes. */
export const CERTIFICATION_DATA_HEADER = Object.freeze({ type: field(0, 2), size: field(2, 4), length: 6 })
export const CERTIFICATION_DATA_TYPE = Object.freeze({ pckCertChain: 5, qeReportCertificationData: 6 })

/** Offset of the body in a quote of `version` (3 and 4: right after the header; 5: after the body descriptor). */
export function bodyOffset(version: 3 | 4 | 5): number {
  return version === 5 ? QUOTE_HEADER_LENGTH + V5_BODY_DESCRIPTOR_LENGTH : QUOTE_HEADER_LENGTH
}

/** Offset of a TD report field from the start of a TDX quote of `version`. */
export function tdQuoteOffset(name: TdReportField, version: 4 | 5 = 4): number {
  return bodyOffset(version) + TD_REPORT[name].offset
}

/** Offset of an enclave report field from the start of an SGX quote (v3). */
export function sgxQuoteOffset(name: SgxReportField): number {
  return QUOTE_HEADER_LENGTH + SGX_REPORT[name].offset
}

/** A copy of `f` from `bytes` at `base` (copies never alias the caller's buffer). */
export function readField(bytes: Uint8Array, f: QuoteField, base = 0): Uint8Array {
  return bytes.slice(base + f.offset, base + f.offset + f.length)
}
