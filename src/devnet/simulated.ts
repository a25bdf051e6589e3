// The `simulated` TEE (docs/protocol.md#tee-providers): devnets only. It mints DCAP-shaped TDX v4 quotes with Intel's real layout:
// 48-byte header, 584-byte TD report, the attestation key's ECDSA signature, then certification data type 6 holding
// the QE report (its report data binding the attestation key), the QE report's signature by the platform's PCK key,
// the QE auth data and certification data type 5 with the PCK certificate chain. The chain leads to a devnet root
// (devnetPki.ts), so these quotes are verified by the production verifier, `createDcapVerifier`, with that root
// trusted explicitly; without it they are refused (`untrusted_root`) like any other forgery.
//
// The simulated TD also keeps an event log the way a TDX guest does (docs/protocol.md#dstack-api, "event log and
// RTMRs"): a boot-time log whose replay gives RTMR0–2 (`simulatedBootEventLog`), and runtime events that
// `emitEvent` appends while extending RTMR3, so every later quote's RTMR3 (and so its measurement id) moves with them
// exactly as on hardware. The RTMR3 state lives as long as the provider: a new provider is a rebooted TD.
import { createHash, createPrivateKey, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { p256 } from '@noble/curves/nist.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import { createDevnetPki, DEVNET_QE, DEVNET_TD } from './pki.ts'
import { EventLogError, extendRtmr, replayRtmrs, runtimeEvent, type TdxEvent } from '../tee/eventLog.ts'
import {
  ATTESTATION_KEY_TYPE_ECDSA_P256,
  CERTIFICATION_DATA_TYPE,
  INTEL_QE_VENDOR_ID as INTEL_QE_VENDOR_ID_HEX,
  QUOTE_HEADER,
  QUOTE_HEADER_LENGTH,
  SGX_REPORT,
  SGX_REPORT_LENGTH,
  TD10_REPORT_LENGTH,
  TD_REPORT,
  tdQuoteOffset,
  TEE_TYPE,
  type TdReportField,
} from '../tee/quoteLayout.ts'
import type { QuoteEvidence, QuoteProvider } from '../tee/types.ts'

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

const SIGNED_LENGTH = QUOTE_HEADER_LENGTH + TD10_REPORT_LENGTH
/** Offsets of the TD report fields in a TDX v4 quote (header + TD report), from the one quote layout (quoteLayout.ts). */
const OFFSET = Object.fromEntries(Object.keys(TD_REPORT).map((name) => [name, tdQuoteOffset(name as TdReportField, 4)])) as Record<TdReportField, number>
const FIELD_LENGTH = Object.fromEntries(
  (['mrTd', 'rtMr0', 'rtMr1', 'rtMr2', 'rtMr3', 'mrConfigId', 'xfam', 'tdAttributes'] as const).map((name) => [name, TD_REPORT[name].length]),
) as Record<keyof TdxMeasurementFields, number>
const INTEL_QE_VENDOR_ID = hexToBytes(INTEL_QE_VENDOR_ID_HEX)
/** QE auth data, as Intel's TD quoting enclave fills it. */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i)

function checkField(name: keyof TdxMeasurementFields, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`)
  if (value.length !== FIELD_LENGTH[name]) throw new RangeError(`${name}: expected ${FIELD_LENGTH[name]} bytes, got ${value.length}`)
}

/** Largest runtime event log a simulated TD keeps (a real one is bounded by its tmpfs; dstack's by nothing). */
export const MAX_SIMULATED_RUNTIME_EVENTS = 1024

// TCG event types of the simulated boot log (PC Client Platform Firmware Profile): what firmware, boot loader and
// kernel measure on a real TD.
const EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000000a
const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
const EV_IPL = 0x0000000d

/**
 * The boot-time event log of a simulated build: two entries per RTMR0–2, digests derived from the label, payloads
 * naming what a real TD would have measured there. Its replay is the build's RTMR0–2 ({@link simulatedMeasurement}).
 */
export function simulatedBootEventLog(label: string): TdxEvent[] {
  const stages = [
    [EV_EFI_PLATFORM_FIRMWARE_BLOB2, 'firmware'],
    [EV_EFI_BOOT_SERVICES_APPLICATION, 'boot loader'],
    [EV_IPL, 'kernel and initrd'],
  ] as const
  return stages.flatMap(([eventType, what], imr) =>
    [0, 1].map((k) => ({
      imr,
      event_type: eventType,
      digest: createHash('sha384').update(`keymanager.simulated:${label}:rtmr${imr}:${k}`).digest('hex'),
      event: '',
      event_payload: Buffer.from(`simulated ${what} ${k}`).toString('hex'),
    })),
  )
}

/** A devnet measurement derived from a label, so a devnet and its tests can name distinct "builds". */
export function simulatedMeasurement(label: string): TdxMeasurementFields {
  const seed = (field: string, length: number) => {
    const out = new Uint8Array(length)
    const bytes = new TextEncoder().encode(`keymanager.simulated:${label}:${field}`)
    for (let i = 0; i < length; i++) out[i] = bytes[i % bytes.length]! ^ i
    return out
  }
  const [rtMr0, rtMr1, rtMr2] = replayRtmrs(simulatedBootEventLog(label))
  return {
    mrTd: seed('mrtd', 48),
    rtMr0: rtMr0!,
    rtMr1: rtMr1!,
    rtMr2: rtMr2!,
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

/** The provider's attestation key: the given secret (checked, and copied, when the provider is made) or a fresh one. */
function attestationKey(secretKey: Uint8Array | undefined): { secretKey: Uint8Array; publicKey: Uint8Array } {
  if (secretKey === undefined) return generateSimulatedAttestationKey()
  return { secretKey, publicKey: p256.getPublicKey(secretKey, false).subarray(1) }
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
 * only parse quotes); without `attestationSecretKey` a fresh key is made. `bootEventLog` (RTMR0–2 entries) must
 * replay to the measurement's RTMR0–2 ({@link simulatedBootEventLog} does for {@link simulatedMeasurement}); without
 * it the evidence carries runtime events only. `measurement.rtMr3` is RTMR3 at boot; `emitEvent` extends it.
 */
export function simulatedQuoteProvider({
  measurement,
  platform,
  attestationSecretKey,
  bootEventLog = [],
}: {
  measurement: TdxMeasurementFields
  platform?: SimulatedPlatform
  attestationSecretKey?: Uint8Array
  bootEventLog?: readonly TdxEvent[]
}): QuoteProvider {
  for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) checkField(name, measurement[name])
  if (bootEventLog.length > 0) {
    if (bootEventLog.some((e) => e.imr > 2)) throw new RangeError('bootEventLog: boot-time entries extend RTMR0-2 only')
    const replayed = replayRtmrs(bootEventLog)
    for (const [i, name] of (['rtMr0', 'rtMr1', 'rtMr2'] as const).entries()) {
      if (!Buffer.from(replayed[i]!).equals(measurement[name])) throw new RangeError(`bootEventLog does not replay to the measurement's ${name}`)
    }
  }
  const bootLog = bootEventLog.map((e) => ({ ...e }))
  const { pckChainPem, pckKeyPem } = platform ?? throwawayPlatform()
  const pckKey = createPrivateKey(pckKeyPem)
  if (attestationSecretKey !== undefined && (!(attestationSecretKey instanceof Uint8Array) || attestationSecretKey.length !== 32))
    throw new RangeError('attestationSecretKey: expected 32 bytes')
  const attestationSecret = attestationSecretKey && Uint8Array.from(attestationSecretKey)

  // Header and TD report without the report data: fixed for this provider.
  const template = Buffer.alloc(SIGNED_LENGTH)
  template.writeUInt16LE(4, QUOTE_HEADER.version.offset)
  template.writeUInt16LE(ATTESTATION_KEY_TYPE_ECDSA_P256, QUOTE_HEADER.attestationKeyType.offset)
  template.writeUInt32LE(TEE_TYPE.tdx, QUOTE_HEADER.teeType.offset)
  template.writeUInt16LE(DEVNET_QE.isvSvn, QUOTE_HEADER.qeSvn.offset)
  template.writeUInt16LE(13, QUOTE_HEADER.pceSvn.offset)
  template.set(INTEL_QE_VENDOR_ID, QUOTE_HEADER.qeVendorId.offset)
  template.set(DEVNET_TD.teeTcbSvn, OFFSET.teeTcbSvn)
  template.set(DEVNET_TD.mrSignerSeam, OFFSET.mrSignerSeam)
  template.set(DEVNET_TD.seamAttributes, OFFSET.seamAttributes)
  for (const name of Object.keys(FIELD_LENGTH) as (keyof TdxMeasurementFields)[]) template.set(measurement[name], OFFSET[name])

  // The attestation key and the QE certification that binds it are made on the first quote: a P-256 public key costs the
  // curve's base-point table (about 70 ms), which a node restarting from sealed state, that quotes nothing, need not pay.
  let signing: { secretKey: Uint8Array; publicKey: Buffer; certification: Buffer } | undefined
  function signer() {
    if (signing) return signing
    const attestation = attestationKey(attestationSecret)
    // The QE report binds the attestation key: report data = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes.
    const qeReport = Buffer.alloc(SGX_REPORT_LENGTH)
    qeReport.set(DEVNET_QE.attributes, SGX_REPORT.attributes.offset)
    qeReport.set(DEVNET_QE.mrEnclave, SGX_REPORT.mrEnclave.offset)
    qeReport.set(DEVNET_QE.mrSigner, SGX_REPORT.mrSigner.offset)
    qeReport.writeUInt16LE(DEVNET_QE.isvProdId, SGX_REPORT.isvProdId.offset)
    qeReport.writeUInt16LE(DEVNET_QE.isvSvn, SGX_REPORT.isvSvn.offset)
    createHash('sha256').update(attestation.publicKey).update(QE_AUTH_DATA).digest().copy(qeReport, SGX_REPORT.reportData.offset)
    const qeReportSignature = sign('sha256', qeReport, { key: pckKey, dsaEncoding: 'ieee-p1363' })
    const chain = Buffer.from(pckChainPem, 'latin1')
    const qeCertification = Buffer.concat([
      qeReport,
      qeReportSignature,
      u16(QE_AUTH_DATA.length),
      QE_AUTH_DATA,
      u16(CERTIFICATION_DATA_TYPE.pckCertChain),
      u32(chain.length),
      chain,
    ])
    const certification = Buffer.concat([u16(CERTIFICATION_DATA_TYPE.qeReportCertificationData), u32(qeCertification.length), qeCertification])
    signing = { secretKey: attestation.secretKey, publicKey: Buffer.from(attestation.publicKey), certification }
    return signing
  }
  const runtimeLog: TdxEvent[] = []

  // Synchronous from the copy of the template to the signature, so a quote and the log read with it never straddle
  // an emitEvent (which also runs without awaiting).
  function quote(reportData: Uint8Array): Uint8Array {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes')
    const signed = Buffer.from(template)
    signed.set(reportData, OFFSET.reportData)
    // RFC 6979 (deterministic): the same report data and RTMR3 give the same quote for the provider's lifetime.
    const { secretKey, publicKey, certification } = signer()
    const signature = p256.sign(signed, secretKey)
    const authData = Buffer.concat([signature, publicKey, certification])
    return new Uint8Array(Buffer.concat([signed, u32(authData.length), authData]))
  }

  return Object.freeze({
    name: 'simulated',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      return quote(reportData)
    },
    async quoteWithEvidence(reportData: Uint8Array): Promise<QuoteEvidence> {
      const bytes = quote(reportData)
      return { quote: bytes, eventLog: [...bootLog, ...runtimeLog].map((e) => ({ ...e })), vmConfig: '' }
    },
    async emitEvent(event: string, payload: Uint8Array): Promise<void> {
      if (typeof event !== 'string' || !(payload instanceof Uint8Array)) throw new TypeError('emitEvent(event: string, payload: Uint8Array)')
      if (runtimeLog.length >= MAX_SIMULATED_RUNTIME_EVENTS) throw new EventLogError(`the runtime event log is full (${MAX_SIMULATED_RUNTIME_EVENTS} events)`)
      const entry = runtimeEvent(event, payload)
      const rtmr3 = extendRtmr(template.subarray(OFFSET.rtMr3, OFFSET.rtMr3 + 48), Buffer.from(entry.digest, 'hex'))
      template.set(rtmr3, OFFSET.rtMr3)
      runtimeLog.push(entry)
    },
  })
}

let throwaway: SimulatedPlatform | undefined
function throwawayPlatform(): SimulatedPlatform {
  throwaway ??= createDevnetPki().mintPlatform()
  return throwaway
}
