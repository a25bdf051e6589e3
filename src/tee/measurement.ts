// Quote bodies → measurement fields and the measurement id of docs/protocol.md#measurements-and-tcb-policy. Offsets follow Intel's quote formats
// (48-byte header; TDX v4 TD report at 48, v5 adds a 6-byte body descriptor; SGX v3 enclave report at 48) and are
// cross-checked against @phala/dcap-qvl's parser in measurement.test.ts. This module parses; it verifies nothing.
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, type Hex } from 'viem'
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

const HEADER_LENGTH = 48
const SGX_REPORT_LENGTH = 384
const TD10_REPORT_LENGTH = 584
const TD15_REPORT_LENGTH = 648
const V5_BODY_DESCRIPTOR_LENGTH = 6
const TEE_TYPE_SGX = 0x00000000
const TEE_TYPE_TDX = 0x00000081

/** Measurement id domain bytes (docs/protocol.md#measurements-and-tcb-policy): the first byte of the packed preimage. */
const ID_PREFIX = { tdx: 1, sgx: 2 } as const

/** TDX fields of the id, as (name, offset in the TD report, length). */
const TDX_FIELDS = [
  ['mrTd', 136, 48],
  ['rtMr0', 328, 48],
  ['rtMr1', 376, 48],
  ['rtMr2', 424, 48],
  ['rtMr3', 472, 48],
  ['mrConfigId', 184, 48],
  ['xfam', 128, 8],
  ['tdAttributes', 120, 8],
] as const
const TD_REPORT_DATA_OFFSET = 520

const SGX_MRENCLAVE_OFFSET = 64
const SGX_MRSIGNER_OFFSET = 128
const SGX_ISVPRODID_OFFSET = 256
const SGX_ISVSVN_OFFSET = 258
const SGX_REPORT_DATA_OFFSET = 320

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
  const version = view.getUint16(0, true)
  const teeTypeCode = view.getUint32(4, true)

  let teeType: TeeType
  let bodyStart = HEADER_LENGTH
  let bodyLength: number
  if (version === 3) {
    if (teeTypeCode !== TEE_TYPE_SGX) throw unsupported(`quote v3 with TEE type 0x${teeTypeCode.toString(16)}, expected SGX`)
    teeType = 'sgx'
    bodyLength = SGX_REPORT_LENGTH
  } else if (version === 4 || version === 5) {
    if (teeTypeCode !== TEE_TYPE_TDX) throw unsupported(`quote v${version} with TEE type 0x${teeTypeCode.toString(16)}, expected TDX`)
    teeType = 'tdx'
    bodyLength = TD10_REPORT_LENGTH
    if (version === 5) {
      if (quote.length < HEADER_LENGTH + V5_BODY_DESCRIPTOR_LENGTH) throw malformed('quote v5 is truncated in its body descriptor')
      const bodyType = view.getUint16(HEADER_LENGTH, true)
      const declared = view.getUint32(HEADER_LENGTH + 2, true)
      if (bodyType === 2) bodyLength = TD10_REPORT_LENGTH
      else if (bodyType === 3) bodyLength = TD15_REPORT_LENGTH
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
    for (const [name, offset, length] of TDX_FIELDS) {
      const field = body.slice(offset, offset + length)
      measurements[name] = bytesToHex(field)
      parts.push(field)
    }
    reportData = body.slice(TD_REPORT_DATA_OFFSET, TD_REPORT_DATA_OFFSET + 64)
  } else {
    const bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength)
    const isvProdId = uint16BigEndian(bodyView.getUint16(SGX_ISVPRODID_OFFSET, true))
    const isvSvn = uint16BigEndian(bodyView.getUint16(SGX_ISVSVN_OFFSET, true))
    const fields = {
      mrEnclave: body.slice(SGX_MRENCLAVE_OFFSET, SGX_MRENCLAVE_OFFSET + 32),
      mrSigner: body.slice(SGX_MRSIGNER_OFFSET, SGX_MRSIGNER_OFFSET + 32),
      isvProdId,
      isvSvn,
    }
    for (const [name, field] of Object.entries(fields)) {
      measurements[name] = bytesToHex(field)
      parts.push(field)
    }
    reportData = body.slice(SGX_REPORT_DATA_OFFSET, SGX_REPORT_DATA_OFFSET + 64)
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
