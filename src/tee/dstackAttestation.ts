// dstack's versioned attestation (docs/protocol.md#dstack-api `Attest`): the SCALE encoding of
// `VersionedAttestation::V0 { attestation: Attestation { quote: AttestationQuote::DstackTdx(TdxQuote { quote,
// event_log }), runtime_events, report_data, config } }`, as Dstack-TEE/dstack v0.5.8 (dstack-attest
// `attestation.rs`, cc-eventlog `TdxEvent`/`RuntimeEvent`) derives it with parity-scale-codec:
// enum = one variant byte; Vec<u8>/String = compact length ‖ bytes; Vec<T> = compact count ‖ items; u32 = 4 bytes LE;
// [u8; 64] = the 64 bytes; TdxEvent = imr u32 ‖ event_type u32 ‖ digest Vec<u8> ‖ event String ‖ event_payload Vec<u8>;
// RuntimeEvent = event String ‖ payload Vec<u8>; `report: ()` encodes to nothing.
//
// The decoder is strict (no trailing bytes, bounded lengths) and throws AttestationCodecError on bad input: it reads
// what a dstack agent answered, which the sidecar checks before passing it on.
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { MAX_EVENT_LOG_ENTRIES, type TdxEvent } from './eventLog.ts'
import { KeymanagerError } from '../errors.ts'

export type DstackAttestation = {
  quote: Uint8Array
  /** The TDX event log (boot-time payloads included where the platform gives them). */
  eventLog: TdxEvent[]
  runtimeEvents: { event: string; payload: Uint8Array }[]
  reportData: Uint8Array
  /** The VM config JSON string ("" when there is none). */
  config: string
}

/** Attestation bytes that do not decode (strict SCALE: no trailing bytes, bounded lengths). */
export class AttestationCodecError extends KeymanagerError {
  override name = 'AttestationCodecError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

/** SCALE compact encoding of a non-negative integer below 2^32. */
export function compact(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`compact: ${n} out of range`)
  if (n < 1 << 6) return Uint8Array.of(n << 2)
  if (n < 1 << 14) return Uint8Array.of(((n << 2) | 1) & 0xff, n >> 6)
  if (n < 1 << 30) {
    const out = new Uint8Array(4)
    new DataView(out.buffer).setUint32(0, ((n << 2) | 2) >>> 0, true)
    return out
  }
  const out = new Uint8Array(5)
  out[0] = 0b11 // big-integer mode, 4 bytes follow
  new DataView(out.buffer).setUint32(1, n, true)
  return out
}

const u32 = (n: number) => {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n, true)
  return out
}
const bytes = (b: Uint8Array) => [compact(b.length), b]
const text = (s: string) => bytes(Buffer.from(s, 'utf8'))

/** SCALE bytes of `VersionedAttestation::V0` with a DstackTdx quote. */
export function encodeDstackAttestation(a: DstackAttestation): Uint8Array {
  if (a.reportData.length !== 64) throw new RangeError('reportData must be 64 bytes')
  const parts: Uint8Array[] = [Uint8Array.of(0), Uint8Array.of(0), ...bytes(a.quote), compact(a.eventLog.length)]
  for (const e of a.eventLog) {
    parts.push(u32(e.imr), u32(e.event_type), ...bytes(hexToBytes(e.digest)), ...text(e.event), ...bytes(hexToBytes(e.event_payload)))
  }
  parts.push(compact(a.runtimeEvents.length))
  for (const e of a.runtimeEvents) parts.push(...text(e.event), ...bytes(e.payload))
  parts.push(a.reportData, ...text(a.config))
  return new Uint8Array(Buffer.concat(parts))
}

const MAX_FIELD_BYTES = 1024 * 1024

/** Decodes what {@link encodeDstackAttestation} writes (and dstack's agent answers to `Attest` on TDX). */
export function decodeDstackAttestation(input: Uint8Array): DstackAttestation {
  let at = 0
  const need = (n: number) => {
    if (at + n > input.length) throw new AttestationCodecError(`attestation truncated at byte ${at}`)
  }
  const byte = () => {
    need(1)
    return input[at++]!
  }
  const readU32 = () => {
    need(4)
    const v = new DataView(input.buffer, input.byteOffset + at, 4).getUint32(0, true)
    at += 4
    return v
  }
  const readCompact = (): number => {
    const first = byte()
    switch (first & 0b11) {
      case 0:
        return first >> 2
      case 1:
        return (first >> 2) | (byte() << 6)
      case 2:
        at -= 1
        return readU32() >>> 2
      default:
        if (first >> 2 !== 0) throw new AttestationCodecError('compact integer wider than 32 bits')
        return readU32()
    }
  }
  const readBytes = () => {
    const n = readCompact()
    if (n > MAX_FIELD_BYTES) throw new AttestationCodecError(`field of ${n} bytes`)
    need(n)
    const out = input.slice(at, at + n)
    at += n
    return out
  }
  const readText = () => {
    const raw = readBytes()
    const s = Buffer.from(raw).toString('utf8')
    if (!Buffer.from(s, 'utf8').equals(raw)) throw new AttestationCodecError('string is not UTF-8')
    return s
  }
  const count = () => {
    const n = readCompact()
    if (n > MAX_EVENT_LOG_ENTRIES) throw new AttestationCodecError(`list of ${n} entries`)
    return n
  }
  if (byte() !== 0) throw new AttestationCodecError('not a VersionedAttestation::V0')
  if (byte() !== 0) throw new AttestationCodecError('not a DstackTdx attestation')
  const quote = readBytes()
  const eventLog: TdxEvent[] = []
  for (let i = count(); i > 0; i--) {
    const imr = readU32()
    const eventType = readU32()
    const digest = bytesToHex(readBytes())
    const event = readText()
    eventLog.push({ imr, event_type: eventType, digest, event, event_payload: bytesToHex(readBytes()) })
  }
  const runtimeEvents: DstackAttestation['runtimeEvents'] = []
  for (let i = count(); i > 0; i--) runtimeEvents.push({ event: readText(), payload: readBytes() })
  need(64)
  const reportData = input.slice(at, at + 64)
  at += 64
  const config = readText()
  if (at !== input.length) throw new AttestationCodecError(`${input.length - at} trailing bytes`)
  return { quote, eventLog, runtimeEvents, reportData, config }
}
