// The `simulated` TEE (DESIGN.md §10): devnets only. It lays quotes out exactly as a TDX v4 quote (48-byte
// header, 584-byte TD report body, then the ECDSA-P256 signature data), signed by a devnet attestation key
// instead of an Intel-certified one. Everything downstream (envelopes, report data, measurement ids, the
// on-chain allow-list and TCB policy) runs the production code.
import { p256 } from '@noble/curves/nist.js'
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js'
import { measurementOf } from './measurement.ts'
import { QuoteVerificationError, type QuoteProvider, type QuoteVerifier, type VerifiedQuote } from './types.ts'

/** TDX measurement fields of DESIGN.md §4, as raw bytes. */
export type TdxMeasurementFields = {
  mrTd: Uint8Array
  rtMr0: Uint8Array
  rtMr1: Uint8Array
  rtMr2: Uint8Array
  rtMr3: Uint8Array
  mrConfigId: Uint8Array
  xfam: Uint8Array
  tdAttributes: Uint8Array
}

const HEADER_LENGTH = 48
const BODY_LENGTH = 584
const SIGNED_LENGTH = HEADER_LENGTH + BODY_LENGTH
// Offsets inside a TDX v4 quote (TOOLCHAIN.md; Intel TDX DCAP quote layout).
const OFFSET = {
  tdAttributes: 168,
  xfam: 176,
  mrTd: 184,
  mrConfigId: 232,
  rtMr0: 376,
  rtMr1: 424,
  rtMr2: 472,
  rtMr3: 520,
  reportData: 568,
} as const
const FIELD_LENGTH = { mrTd: 48, rtMr0: 48, rtMr1: 48, rtMr2: 48, rtMr3: 48, mrConfigId: 48, xfam: 8, tdAttributes: 8 } as const
/** Marks the certification data of a simulated quote so it can never be mistaken for a PCK chain (type 6). */
const SIMULATED_CERT_TYPE = 0x7fff

function checkField(name: keyof TdxMeasurementFields, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`)
  if (value.length !== FIELD_LENGTH[name]) throw new RangeError(`${name}: expected ${FIELD_LENGTH[name]} bytes, got ${value.length}`)
}

/** A devnet measurement derived from a label, so a devnet and its tests can name distinct "builds". */
export function simulatedMeasurement(label: string): TdxMeasurementFields {
  const seed = (field: string, length: number) => {
    const out = new Uint8Array(length)
    const bytes = new TextEncoder().encode(`keymanager.simulated:${label}:${field}`)
    for (let i = 0; i < length; i++) out[i] = bytes[i % bytes.length]! ^ i
    return out
  }
  return {
    mrTd: seed('mrtd', 48),
    rtMr0: seed('rtmr0', 48),
    rtMr1: seed('rtmr1', 48),
    rtMr2: seed('rtmr2', 48),
    rtMr3: new Uint8Array(48),
    mrConfigId: new Uint8Array(48),
    xfam: hexToBytes('e718060000000000'),
    tdAttributes: new Uint8Array(8),
  }
}

/** A fresh P-256 devnet attestation key (the stand-in for a TD quoting enclave's attestation key). */
export function generateSimulatedAttestationKey(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const secretKey = p256.utils.randomSecretKey()
  return { secretKey, publicKey: p256.getPublicKey(secretKey, false).subarray(1) }
}

/** Quote provider `simulated`: TDX v4-shaped quotes over the asked report data. */
export function simulatedQuoteProvider({
  attestationSecretKey,
  measurement,
}: {
  attestationSecretKey: Uint8Array
  measurement: TdxMeasurementFields
}): QuoteProvider {
  for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) checkField(name, measurement[name])
  const key = Uint8Array.from(attestationSecretKey)
  const attestationPublicKey = p256.getPublicKey(key, false).subarray(1)
  return Object.freeze({
    name: 'simulated',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      if (!(reportData instanceof Uint8Array) || reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes')
      const signed = new Uint8Array(SIGNED_LENGTH)
      const header = new DataView(signed.buffer)
      header.setUint16(0, 4, true) // version 4
      header.setUint16(2, 2, true) // attestation key type: ECDSA-256-with-P-256
      header.setUint32(4, 0x81, true) // TEE type: TDX
      signed.set(new TextEncoder().encode('keymanager-simulated').subarray(0, 16), 12) // QE vendor id slot: not Intel's
      for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) signed.set(measurement[name], OFFSET[name])
      signed.set(reportData, OFFSET.reportData)
      const signature = p256.sign(signed, key) // SHA-256 prehash, as DCAP quotes
      const certification = new Uint8Array(6)
      new DataView(certification.buffer).setUint16(0, SIMULATED_CERT_TYPE, true)
      const signatureData = concatBytes(signature, attestationPublicKey, certification)
      const length = new Uint8Array(4)
      new DataView(length.buffer).setUint32(0, signatureData.length, true)
      return concatBytes(signed, length, signatureData)
    },
  })
}

/**
 * Verifier for `simulated` quotes: trusts exactly one devnet attestation key, given explicitly. It reports TCB
 * status UpToDate, FMSPC zero and collateral issued "now", so on-chain policy checks still run.
 */
export function simulatedQuoteVerifier({ attestationPublicKey }: { attestationPublicKey: Uint8Array }): QuoteVerifier {
  if (attestationPublicKey.length !== 64) throw new RangeError('attestationPublicKey: expected 64 bytes')
  const trusted = bytesToHex(attestationPublicKey)
  return Object.freeze({
    async verify(quote: Uint8Array, options: { now?: number } = {}): Promise<VerifiedQuote> {
      if (!(quote instanceof Uint8Array) || quote.length < SIGNED_LENGTH + 4 + 128 + 6)
        throw new QuoteVerificationError('malformed_quote', `quote too short: ${quote?.length ?? 0} bytes`)
      const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength)
      if (view.getUint16(0, true) !== 4 || view.getUint32(4, true) !== 0x81)
        throw new QuoteVerificationError('malformed_quote', 'not a TDX v4 quote')
      const signatureLength = view.getUint32(SIGNED_LENGTH, true)
      if (signatureLength !== 128 + 6 || quote.length !== SIGNED_LENGTH + 4 + signatureLength)
        throw new QuoteVerificationError('malformed_quote', 'unexpected signature data length')
      const sigStart = SIGNED_LENGTH + 4
      const signature = quote.subarray(sigStart, sigStart + 64)
      const publicKey = quote.subarray(sigStart + 64, sigStart + 128)
      if (view.getUint16(sigStart + 128, true) !== SIMULATED_CERT_TYPE)
        throw new QuoteVerificationError('malformed_quote', 'not a simulated quote (certification data type)')
      if (bytesToHex(publicKey) !== trusted)
        throw new QuoteVerificationError('untrusted_root', 'quote signed by an attestation key this devnet does not trust')
      let valid = false
      try {
        valid = p256.verify(signature, quote.subarray(0, SIGNED_LENGTH), concatBytes(new Uint8Array([4]), publicKey))
      } catch {
        valid = false
      }
      if (!valid) throw new QuoteVerificationError('bad_signature', 'quote signature does not verify')
      const parsed = measurementOf(quote)
      return {
        teeType: parsed.teeType,
        status: 'UpToDate',
        advisoryIds: [],
        fmspc: '0x000000000000',
        measurements: parsed.measurements,
        measurementId: parsed.measurementId,
        measurementRaw: parsed.measurementRaw,
        reportData: parsed.reportData,
        collateralIssuedAt: options.now ?? Math.floor(Date.now() / 1000),
      }
    },
  })
}
