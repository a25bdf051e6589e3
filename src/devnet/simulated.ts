// The `simulated` TEE (docs/protocol.md#tee-providers): devnets only. It mints DCAP-shaped TDX v4 quotes with Intel's real layout:
// 48-byte header, 584-byte TD report, the attestation key's ECDSA signature, then certification data type 6 holding
// the QE report (its report data binding the attestation key), the QE report's signature by the platform's PCK key,
// the QE auth data and certification data type 5 with the PCK certificate chain. The chain leads to a devnet root
// (devnetPki.ts), so these quotes are verified by the production verifier, `createDcapVerifier`, with that root
// trusted explicitly; without it they are refused (`untrusted_root`) like any other forgery.
import { createHash, createPrivateKey, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { p256 } from '@noble/curves/nist.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import { createDevnetPki, DEVNET_QE, DEVNET_TD } from './pki.ts'
import type { QuoteProvider } from '../tee/types.ts'

/** TDX measurement fields of docs/protocol.md#measurements-and-tcb-policy, as raw bytes. */
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

/** The platform a simulated TD runs on: its PCK certificate chain and PCK key (devnetPki.ts `mintPlatform`). */
export type SimulatedPlatform = {
  /** PEM, leaf first: PCK certificate, PCK CA, root. Goes into the quote as is. */
  pckChainPem: string
  /** The PCK private key (P-256, PKCS#8 PEM): signs the QE report. */
  pckKeyPem: string
}

const HEADER_LENGTH = 48
const BODY_LENGTH = 584
const SIGNED_LENGTH = HEADER_LENGTH + BODY_LENGTH
/** Offsets of the TD report fields in a TDX v4 quote (header + TD report; Intel TDX DCAP quote layout, TOOLCHAIN.md). */
const OFFSET = {
  teeTcbSvn: 48,
  mrSignerSeam: 112,
  seamAttributes: 160,
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
const INTEL_QE_VENDOR_ID = hexToBytes('939a7233f79c4ca9940a0db3957f0607')
const ECDSA_P256 = 2
const TEE_TYPE_TDX = 0x81
const QE_REPORT_CERTIFICATION_DATA = 6
const PCK_CERT_CHAIN = 5
/** QE auth data, as Intel's TD quoting enclave fills it. */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i)

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
    // SEPT_VE_DISABLE (bit 28) set, debug off: what a production TD has and what DCAP verification requires.
    tdAttributes: hexToBytes('0000001000000000'),
  }
}

/** A fresh P-256 attestation key (what a TD quoting enclave generates at start). */
export function generateSimulatedAttestationKey(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const secretKey = p256.utils.randomSecretKey()
  return { secretKey, publicKey: p256.getPublicKey(secretKey, false).subarray(1) }
}

/** Reads a platform's PCK chain (PEM) and PCK key (PKCS#8 PEM) from the files a devnet wrote for a node. */
export function loadSimulatedPlatform({ pckChainFile, pckKeyFile }: { pckChainFile: string; pckKeyFile: string }): SimulatedPlatform {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      throw new Error(`${what} file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  const pckChainPem = read(pckChainFile, 'PCK chain')
  if ((pckChainPem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length < 2) throw new Error(`PCK chain file ${pckChainFile}: expected a PEM chain, leaf first`)
  const pckKeyPem = read(pckKeyFile, 'PCK key')
  try {
    createPrivateKey(pckKeyPem)
  } catch {
    throw new Error(`PCK key file ${pckKeyFile}: not a PEM private key`)
  }
  return { pckChainPem, pckKeyPem }
}

function attestationKey(secretKey: Uint8Array | undefined): { secretKey: Uint8Array; publicKey: Uint8Array } {
  if (secretKey === undefined) return generateSimulatedAttestationKey()
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new RangeError('attestationSecretKey: expected 32 bytes')
  const copy = Uint8Array.from(secretKey)
  return { secretKey: copy, publicKey: p256.getPublicKey(copy, false).subarray(1) }
}

const u16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n)
  return b
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

/**
 * Quote provider `simulated`: TDX v4 quotes over the asked report data, from a TD with `measurement` on `platform`.
 * The attestation key lives as long as the provider (a quoting enclave makes one at start): its QE report, signed by
 * the PCK key, is made once. Without `platform` the quotes lead to a throwaway root nobody trusts (for tests that
 * only parse quotes); without `attestationSecretKey` a fresh key is made.
 */
export function simulatedQuoteProvider({
  measurement,
  platform,
  attestationSecretKey,
}: {
  measurement: TdxMeasurementFields
  platform?: SimulatedPlatform
  attestationSecretKey?: Uint8Array
}): QuoteProvider {
  for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) checkField(name, measurement[name])
  const { pckChainPem, pckKeyPem } = platform ?? throwawayPlatform()
  const pckKey = createPrivateKey(pckKeyPem)
  const attestation = attestationKey(attestationSecretKey)

  // Header and TD report without the report data: fixed for this provider.
  const template = Buffer.alloc(SIGNED_LENGTH)
  template.writeUInt16LE(4, 0) // version
  template.writeUInt16LE(ECDSA_P256, 2)
  template.writeUInt32LE(TEE_TYPE_TDX, 4)
  template.writeUInt16LE(DEVNET_QE.isvSvn, 8) // QE SVN
  template.writeUInt16LE(13, 10) // PCE SVN
  template.set(INTEL_QE_VENDOR_ID, 12)
  template.set(DEVNET_TD.teeTcbSvn, OFFSET.teeTcbSvn)
  template.set(DEVNET_TD.mrSignerSeam, OFFSET.mrSignerSeam)
  template.set(DEVNET_TD.seamAttributes, OFFSET.seamAttributes)
  for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) template.set(measurement[name], OFFSET[name])

  // The QE report binds the attestation key: report data = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes.
  const qeReport = Buffer.alloc(384)
  qeReport.set(DEVNET_QE.attributes, 48)
  qeReport.set(DEVNET_QE.mrEnclave, 64)
  qeReport.set(DEVNET_QE.mrSigner, 128)
  qeReport.writeUInt16LE(DEVNET_QE.isvProdId, 256)
  qeReport.writeUInt16LE(DEVNET_QE.isvSvn, 258)
  createHash('sha256').update(attestation.publicKey).update(QE_AUTH_DATA).digest().copy(qeReport, 320)
  const qeReportSignature = sign('sha256', qeReport, { key: pckKey, dsaEncoding: 'ieee-p1363' })
  const chain = Buffer.from(pckChainPem, 'latin1')
  const qeCertification = Buffer.concat([
    qeReport,
    qeReportSignature,
    u16(QE_AUTH_DATA.length),
    QE_AUTH_DATA,
    u16(PCK_CERT_CHAIN),
    u32(chain.length),
    chain,
  ])
  const certification = Buffer.concat([u16(QE_REPORT_CERTIFICATION_DATA), u32(qeCertification.length), qeCertification])
  const attestationPublicKey = Buffer.from(attestation.publicKey)

  return Object.freeze({
    name: 'simulated',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      if (!(reportData instanceof Uint8Array) || reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes')
      const signed = Buffer.from(template)
      signed.set(reportData, OFFSET.reportData)
      // RFC 6979 (deterministic): the same report data gives the same quote for the provider's lifetime.
      const signature = p256.sign(signed, attestation.secretKey)
      const authData = Buffer.concat([signature, attestationPublicKey, certification])
      return new Uint8Array(Buffer.concat([signed, u32(authData.length), authData]))
    },
  })
}

let throwaway: SimulatedPlatform | undefined
function throwawayPlatform(): SimulatedPlatform {
  throwaway ??= createDevnetPki().mintPlatform()
  return throwaway
}
