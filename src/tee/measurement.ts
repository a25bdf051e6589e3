// Quote bodies → measurement fields and the measurement id of docs/protocol.md#measurements-and-tcb-policy. Offsets come
// from quoteLayout.ts (Intel's quote formats: 48-byte header; TDX v4 TD report at 48, v5 adds a 6-byte body
// descriptor; SGX v3 enclave report at 48) and are cross-checked against @phala/dcap-qvl's parser in
// measurement.test.ts. This module parses; it verifies nothing.
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, type Hex } from 'viem'
import {
  QUOTE_HEADER,
  QUOTE_HEADER_LENGTH as HEADER_LENGTH,
  readField,
  SGX_REPORT,
  SGX_REPORT_LENGTH,
  TD10_REPORT_LENGTH,
  TD15_REPORT_LENGTH,
  TD_REPORT,
  TEE_TYPE,
  V5_BODY_DESCRIPTOR,
  V5_BODY_DESCRIPTOR_LENGTH,
  V5_BODY_TYPE,
  type TdReportField,
} from './quoteLayout.ts'
import { QuoteVerificationError, type TeeType } from './types.ts'

export type QuoteMeasurement = {
  teeType: TeeType
  /** Quote format version from the header: 3 (SGX), 4 or 5 (TDX). */
  version: 3 | 4 | 5
  /** The fields of the measurement id, in preimage order, 0x-hex as the packed encoding holds them. */
  measurements: Record<string, Hex>
  /** The packed preimage (docs/protocol.md#measurements-and-tcb-policy), as `addMeasurement(id, raw)` takes it. */
  measurementRaw: Hex
  measurementId: Hex
  reportData: Uint8Array
  /** Length of the signed prefix (header + body): the bytes the attestation key signs. */
  signedLength: number
  /** Length of header, body and auth data; zero padding may follow. */
  usedLength: number
}

/** Measurement id domain bytes (docs/protocol.md#measurements-and-tcb-policy): the first byte of the packed preimage. */
const ID_PREFIX = { tdx: 1, sgx: 2 } as const

/** TDX fields of the id, in preimage order. */
const TDX_FIELDS: readonly TdReportField[] = ['mrTd', 'rtMr0', 'rtMr1', 'rtMr2', 'rtMr3', 'mrConfigId', 'xfam', 'tdAttributes']

const malformed = (message: string) => new QuoteVerificationError('malformed_quote', message)
const unsupported = (message: string) => new QuoteVerificationError('unsupported_quote', message)

/**
 * Parses a TDX v4/v5 or SGX v3 quote's header and body and computes its measurement id (docs/protocol.md#measurements-and-tcb-policy):
 * - TDX: `keccak256(abi.encodePacked(uint8(1), MRTD, RTMR0, RTMR1, RTMR2, RTMR3, MRCONFIGID, XFAM, TDATTRIBUTES))`,
 *   XFAM and TDATTRIBUTES as the 8 bytes the quote holds (`bytes8`, not byte-swapped);
 * - SGX: `keccak256(abi.encodePacked(uint8(2), MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN))`, ISVPRODID and ISVSVN as
 *   `uint16` and so **big-endian** in the packed encoding, although the quote stores them little-endian.
 * The whole quote must be well formed (the auth data must fit; only zero padding may follow it):
 * throws `malformed_quote` or `unsupported_quote`, never anything else, for any byte string.
 */
export function measurementOf(quote: Uint8Array): QuoteMeasurement {
  if (!(quote instanceof Uint8Array)) throw new TypeError('quote must be a Uint8Array')
  if (quote.length < HEADER_LENGTH) throw malformed(`quote is ${quote.length} bytes, shorter than its 48-byte header`)
  const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength)
  const version = view.getUint16(QUOTE_HEADER.version.offset, true)
  const teeTypeCode = view.getUint32(QUOTE_HEADER.teeType.offset, true)

  let teeType: TeeType
  let bodyStart = HEADER_LENGTH
  let bodyLength: number
  if (version === 3) {
    if (teeTypeCode !== TEE_TYPE.sgx) throw unsupported(`quote v3 with TEE type 0x${teeTypeCode.toString(16)}, expected SGX`)
    teeType = 'sgx'
    bodyLength = SGX_REPORT_LENGTH
  } else if (version === 4 || version === 5) {
    if (teeTypeCode !== TEE_TYPE.tdx) throw unsupported(`quote v${version} with TEE type 0x${teeTypeCode.toString(16)}, expected TDX`)
    teeType = 'tdx'
    bodyLength = TD10_REPORT_LENGTH
    if (version === 5) {
      if (quote.length < HEADER_LENGTH + V5_BODY_DESCRIPTOR_LENGTH) throw malformed('quote v5 is truncated in its body descriptor')
      const bodyType = view.getUint16(HEADER_LENGTH + V5_BODY_DESCRIPTOR.bodyType.offset, true)
      const declared = view.getUint32(HEADER_LENGTH + V5_BODY_DESCRIPTOR.bodySize.offset, true)
      if (bodyType === V5_BODY_TYPE.td10) bodyLength = TD10_REPORT_LENGTH
      else if (bodyType === V5_BODY_TYPE.td15) bodyLength = TD15_REPORT_LENGTH
      else throw unsupported(`quote v5 body type ${bodyType}, expected 2 (TDX 1.0) or 3 (TDX 1.5)`)
      if (declared !== bodyLength) throw malformed(`quote v5 body size ${declared}, expected ${bodyLength} for body type ${bodyType}`)
      bodyStart += V5_BODY_DESCRIPTOR_LENGTH
    }
  } else {
    throw unsupported(`quote version ${version}, expected 3 (SGX), 4 or 5 (TDX)`)
  }

  const signedLength = bodyStart + bodyLength
  if (quote.length < signedLength + 4) {
    throw malformed(`${teeType.toUpperCase()} quote v${version} is ${quote.length} bytes, truncated before its auth data`)
  }
  const authDataLength = view.getUint32(signedLength, true)
  const usedLength = signedLength + 4 + authDataLength
  if (quote.length < usedLength) {
    throw malformed(`quote is ${quote.length} bytes, truncated: its auth data length makes ${usedLength}`)
  }
  // Quote generators hand out fixed-size buffers: real TDX quotes carry zero padding after the auth data (the
  // TDX fixture has 70 bytes of it). Padding is unsigned, so only zeros are accepted there.
  if (quote.subarray(usedLength).some((b) => b !== 0)) {
    throw malformed(`quote has non-zero bytes after its ${usedLength} bytes of header, body and auth data`)
  }

  // Copies, so results never alias the caller's buffer (a Node Buffer's slice would).
  const body = new Uint8Array(quote.subarray(bodyStart, signedLength))
  const parts: Uint8Array[] = [Uint8Array.of(ID_PREFIX[teeType])]
  const measurements: Record<string, Hex> = {}
  let reportData: Uint8Array
  if (teeType === 'tdx') {
    for (const name of TDX_FIELDS) {
      const field = readField(body, TD_REPORT[name])
      measurements[name] = bytesToHex(field)
      parts.push(field)
    }
    reportData = readField(body, TD_REPORT.reportData)
  } else {
    const bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength)
    const isvProdId = uint16BigEndian(bodyView.getUint16(SGX_REPORT.isvProdId.offset, true))
    const isvSvn = uint16BigEndian(bodyView.getUint16(SGX_REPORT.isvSvn.offset, true))
    const fields = {
      mrEnclave: readField(body, SGX_REPORT.mrEnclave),
      mrSigner: readField(body, SGX_REPORT.mrSigner),
      isvProdId,
      isvSvn,
    }
    for (const [name, field] of Object.entries(fields)) {
      measurements[name] = bytesToHex(field)
      parts.push(field)
    }
    reportData = readField(body, SGX_REPORT.reportData)
  }
  const raw = concat(parts)
  return {
    teeType,
    version,
    measurements,
    measurementRaw: bytesToHex(raw),
    measurementId: bytesToHex(keccak_256(raw)),
    reportData,
    signedLength,
    usedLength,
  }
}

const uint16BigEndian = (value: number): Uint8Array => Uint8Array.of(value >> 8, value & 0xff)

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}
