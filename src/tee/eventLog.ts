// TDX event logs in dstack's shape (docs/protocol.md#dstack-api, "event log and RTMRs"): what dstack `GetQuote`
// returns next to a quote so that a verifier (and @phala/dstack-sdk's `replayRtmrs()`) can recompute RTMR0–3.
//
// Checked against Dstack-TEE/dstack v0.5.8 (cc-eventlog `tdx.rs`, `tcg.rs`, `runtime_events.rs`):
// - An entry is `{imr, event_type, digest, event, event_payload}`, bytes as lowercase hex; imr is zero-based
//   (0 = RTMR0 … 3 = RTMR3; the TCG log's index 1 is RTMR0, its index 0 — MRTD — is dropped).
// - RTMR[i] = SHA-384(RTMR[i] ‖ digest), from 48 zero bytes; the SDK right-pads a digest shorter than 48 bytes.
// - A dstack runtime event (event_type 0x08000001, always RTMR3) has digest
//   SHA-384(le32(0x08000001) ‖ ":" ‖ utf8(event) ‖ ":" ‖ payload) (dstack's v1 digest).
// - Boot-time entries come from the firmware's CCEL ACPI table (TCG PC Client crypto-agile log, one SHA-384 digest per
//   entry); runtime entries from a JSON-lines log, `{"event": name, "payload": base64}` per line.
//
// Decisions written down here:
// - dstack's agent empties the digest of runtime entries in `GetQuote` (its verifier recomputes it), which makes the
//   SDK's `replayRtmrs()` miss RTMR3. This module always fills it in: dstack's verifiers ignore it for runtime
//   entries, and the SDK's replay then reproduces every RTMR. Boot-time payloads are dropped as dstack drops them.
// - Everything parsed here may come from outside the enclave (a file the host can touch, an agent's answer): parsers
//   are strict and bounded and throw EventLogError, never anything else, on bad bytes.
import { sha384 } from '@noble/hashes/sha2.js'
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { KeymanagerError } from '../errors.ts'

/** The dstack runtime event type (not a TCG type). */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001
/** RTMR3: the only register runtime events extend. */
export const RUNTIME_IMR = 3
export const RTMR_BYTES = 48
/** Most entries accepted in one log (a TDX boot log has ~100; runtime events are capped far lower). */
export const MAX_EVENT_LOG_ENTRIES = 4096
/** Largest single payload accepted when parsing (boot-time entries such as an ACPI table can be tens of KiB). */
export const MAX_EVENT_PAYLOAD_BYTES = 256 * 1024

/** One event log entry, as dstack serializes it: hex strings without 0x. */
export type TdxEvent = {
  imr: number
  event_type: number
  digest: string
  event: string
  event_payload: string
}

/** An event log or runtime event that is not what the platform writes (bad bytes, bounds, names). */
export class EventLogError extends KeymanagerError {
  override name = 'EventLogError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

const COLON = utf8ToBytes(':')
const TYPE_LE = Uint8Array.of(0x01, 0x00, 0x00, 0x08)

/** SHA-384 digest of a dstack runtime event (v1): le32(type) ‖ ":" ‖ event ‖ ":" ‖ payload. */
export function runtimeEventDigest(event: string, payload: Uint8Array): Uint8Array {
  return sha384(concatBytes(TYPE_LE, COLON, utf8ToBytes(event), COLON, payload))
}

/** The RTMR3 entry of a runtime event, digest filled in. */
export function runtimeEvent(event: string, payload: Uint8Array): TdxEvent {
  return {
    imr: RUNTIME_IMR,
    event_type: DSTACK_RUNTIME_EVENT_TYPE,
    digest: bytesToHex(runtimeEventDigest(event, payload)),
    event,
    event_payload: bytesToHex(payload),
  }
}

/** RTMR extension: SHA-384(mr ‖ digest), a digest shorter than 48 bytes right-padded with zeros (as the SDK does). */
export function extendRtmr(mr: Uint8Array, digest: Uint8Array): Uint8Array {
  if (mr.length !== RTMR_BYTES) throw new RangeError(`mr must be ${RTMR_BYTES} bytes, got ${mr.length}`)
  const padded = digest.length < RTMR_BYTES ? concatBytes(digest, new Uint8Array(RTMR_BYTES - digest.length)) : digest
  return sha384(concatBytes(mr, padded))
}

/** RTMR0–3 replayed from a log, each from 48 zero bytes (what the SDK's `replayRtmrs()` computes). */
export function replayRtmrs(events: readonly TdxEvent[]): Uint8Array[] {
  const rtmrs: Uint8Array[] = [0, 1, 2, 3].map(() => new Uint8Array(RTMR_BYTES))
  for (const entry of events) {
    if (entry.imr < 0 || entry.imr > 3) continue
    rtmrs[entry.imr] = extendRtmr(rtmrs[entry.imr]!, hexToBytes(entry.digest))
  }
  return rtmrs
}

/** The `GetQuote` form of a log: boot-time payloads dropped (dstack does), every digest kept (see above). */
export function withoutBootPayloads(events: readonly TdxEvent[]): TdxEvent[] {
  return events.map((e) => (e.event_type === DSTACK_RUNTIME_EVENT_TYPE ? { ...e } : { ...e, event_payload: '' }))
}

/** The runtime (RTMR3, dstack type) entries of a log as `{event, payload}`: dstack `Attestation.runtime_events`. */
export function runtimeEventsOf(events: readonly TdxEvent[]): { event: string; payload: Uint8Array }[] {
  return events
    .filter((e) => e.imr === RUNTIME_IMR && e.event_type === DSTACK_RUNTIME_EVENT_TYPE)
    .map((e) => ({ event: e.event, payload: hexToBytes(e.event_payload) }))
}

/**
 * dstack's `find_event`: the payload of the first runtime event named `name` before the `system-ready` event (what
 * dstack's boot wrote; events emitted by apps come later and cannot impersonate these), or undefined.
 */
export function bootRuntimeEventPayload(events: readonly TdxEvent[], name: string): Uint8Array | undefined {
  for (const { event, payload } of runtimeEventsOf(events)) {
    if (event === 'system-ready') return undefined
    if (event === name) return payload
  }
  return undefined
}

// ---- parsing ------------------------------------------------------------------------------------------------------

const HEX = /^(?:[0-9a-f]{2})*$/

function checkEntry(value: unknown, index: number): TdxEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EventLogError(`event log entry ${index} is not an object`)
  const e = value as Record<string, unknown>
  const u32 = (name: string) => {
    const v = e[name]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new EventLogError(`event log entry ${index}: ${name} must be a u32`)
    return v
  }
  const hex = (name: string, max: number) => {
    const v = e[name] ?? ''
    if (typeof v !== 'string' || !HEX.test(v.toLowerCase()) || v.length > max * 2) throw new EventLogError(`event log entry ${index}: ${name} must be hex of at most ${max} bytes`)
    return v.toLowerCase()
  }
  const imr = u32('imr')
  if (imr > 3) throw new EventLogError(`event log entry ${index}: imr must be 0-3, got ${imr}`)
  const event = e.event ?? ''
  if (typeof event !== 'string' || event.length > 1024) throw new EventLogError(`event log entry ${index}: event must be a string of at most 1024 characters`)
  const entry: TdxEvent = { imr, event_type: u32('event_type'), digest: hex('digest', 64), event, event_payload: hex('event_payload', MAX_EVENT_PAYLOAD_BYTES) }
  if (entry.event_type === DSTACK_RUNTIME_EVENT_TYPE) {
    if (imr !== RUNTIME_IMR) throw new EventLogError(`event log entry ${index}: a runtime event must extend RTMR3`)
    // dstack's agent sends runtime entries without their digest: it is a function of the event, so fill it in.
    const digest = bytesToHex(runtimeEventDigest(event, hexToBytes(entry.event_payload)))
    if (entry.digest !== '' && entry.digest !== digest) throw new EventLogError(`event log entry ${index}: runtime event digest does not match its event and payload`)
    entry.digest = digest
  } else if (entry.digest.length !== RTMR_BYTES * 2) {
    throw new EventLogError(`event log entry ${index}: a boot-time entry needs its 48-byte digest`)
  }
  return entry
}

/** Parses a dstack event log JSON string (an agent's `GetQuote.event_log`); runtime digests are filled in. */
export function parseEventLog(json: string): TdxEvent[] {
  if (typeof json !== 'string') throw new EventLogError('event log must be a JSON string')
  if (json === '') return []
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    throw new EventLogError('event log is not JSON')
  }
  if (!Array.isArray(value)) throw new EventLogError('event log must be a JSON array')
  if (value.length > MAX_EVENT_LOG_ENTRIES) throw new EventLogError(`event log has more than ${MAX_EVENT_LOG_ENTRIES} entries`)
  return value.map(checkEntry)
}

const TPM_ALG_DIGEST_BYTES: Record<number, number> = { 0x4: 20, 0xb: 32, 0xc: 48, 0xd: 64 }

/**
 * Parses the firmware's CCEL table (TCG PC Client crypto-agile event log): the SHA-1-format spec-id header, then
 * `TCG_PCR_EVENT2` entries until the 0xFFFFFFFF filler or the end of the table. As dstack's `to_cc_event_log`: each
 * entry must carry exactly one digest, entries with index 0 are skipped, imr = index − 1, event name empty.
 */
export function parseCcel(bytes: Uint8Array): TdxEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  const need = (n: number, what: string) => {
    if (at + n > bytes.length) throw new EventLogError(`CCEL truncated in ${what} at byte ${at}`)
  }
  const u32 = (what: string) => {
    need(4, what)
    const v = view.getUint32(at, true)
    at += 4
    return v
  }
  const take = (n: number, what: string) => {
    need(n, what)
    const out = bytes.subarray(at, at + n)
    at += n
    return out
  }
  // Header: pcrIndex, eventType, SHA-1 digest, eventSize, TCG_EfiSpecIDEvent.
  u32('header')
  u32('header')
  take(20, 'header digest')
  const headerSize = u32('header size')
  if (headerSize > 4096) throw new EventLogError(`CCEL spec-id header of ${headerSize} bytes`)
  take(headerSize, 'header event')
  const events: TdxEvent[] = []
  while (at + 4 <= bytes.length) {
    const index = view.getUint32(at, true)
    if (index === 0xffffffff) break
    at += 4
    const eventType = u32('event type')
    const count = u32('digest count')
    if (count !== 1) throw new EventLogError(`CCEL entry ${events.length}: expected 1 digest, got ${count}`)
    need(2, 'digest algorithm')
    const alg = view.getUint16(at, true)
    at += 2
    const size = TPM_ALG_DIGEST_BYTES[alg]
    if (size === undefined) throw new EventLogError(`CCEL entry ${events.length}: unsupported digest algorithm 0x${alg.toString(16)}`)
    const digest = take(size, 'digest')
    const eventSize = u32('event size')
    if (eventSize > MAX_EVENT_PAYLOAD_BYTES) throw new EventLogError(`CCEL entry ${events.length}: event of ${eventSize} bytes`)
    const payload = take(eventSize, 'event')
    if (events.length >= MAX_EVENT_LOG_ENTRIES) throw new EventLogError(`CCEL has more than ${MAX_EVENT_LOG_ENTRIES} entries`)
    if (index === 0) continue
    if (index > 4) throw new EventLogError(`CCEL entry ${events.length}: index ${index} is not a TDX measurement register`)
    events.push({ imr: index - 1, event_type: eventType, digest: bytesToHex(digest), event: '', event_payload: bytesToHex(payload) })
  }
  return events
}

/** One line of dstack's runtime event log file: `{"event": name, "payload": base64}` (serde field order). */
export function runtimeEventLine(event: string, payload: Uint8Array): string {
  return JSON.stringify({ event, payload: Buffer.from(payload).toString('base64') })
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Parses dstack's runtime event log file (JSON lines; blank lines skipped) into RTMR3 entries. */
export function parseRuntimeEventLines(text: string): TdxEvent[] {
  const events: TdxEvent[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    if (events.length >= MAX_EVENT_LOG_ENTRIES) throw new EventLogError(`runtime event log has more than ${MAX_EVENT_LOG_ENTRIES} entries`)
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      throw new EventLogError(`runtime event log line ${i + 1} is not JSON`)
    }
    const { event, payload } = (value ?? {}) as { event?: unknown; payload?: unknown }
    if (typeof event !== 'string' || typeof payload !== 'string' || !BASE64.test(payload) || payload.length % 4 !== 0) {
      throw new EventLogError(`runtime event log line ${i + 1} must be {"event": string, "payload": base64}`)
    }
    events.push(runtimeEvent(event, Buffer.from(payload, 'base64')))
  }
  return events
}
