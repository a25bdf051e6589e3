import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readFileSync } from 'node:fs'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { AttestationCodecError, compact, decodeDstackAttestation, encodeDstackAttestation, type DstackAttestation } from './dstackAttestation.ts'
import { replayRtmrs, runtimeEvent } from './eventLog.ts'

test('vectors: SCALE compact integers in each mode (parity-scale-codec examples)', () => {
  assert.equal(bytesToHex(compact(0)), '00')
  assert.equal(bytesToHex(compact(1)), '04')
  assert.equal(bytesToHex(compact(63)), 'fc')
  assert.equal(bytesToHex(compact(64)), '0101')
  assert.equal(bytesToHex(compact(16383)), 'fdff')
  assert.equal(bytesToHex(compact(16384)), '02000100')
  assert.equal(bytesToHex(compact(1073741823)), 'feffffff')
  assert.equal(bytesToHex(compact(1073741824)), '0300000040')
})

const sample: DstackAttestation = {
  quote: new Uint8Array(700).fill(7),
  eventLog: [{ imr: 0, event_type: 0x80000001, digest: 'aa'.repeat(48), event: '', event_payload: '0102' }, runtimeEvent('app-id', Uint8Array.of(5))],
  runtimeEvents: [{ event: 'app-id', payload: Uint8Array.of(5) }],
  reportData: new Uint8Array(64).fill(3),
  config: '{"os_image_hash":"ab"}',
}

test('vectors: the layout is variant bytes, quote, event log, runtime events, report data, config', () => {
  const bytes = encodeDstackAttestation(sample)
  assert.equal(bytesToHex(bytes.subarray(0, 4)), '0000' + 'f10a', 'V0, DstackTdx, compact(700)')
  assert.equal(bytes[4 + 700], 2 << 2, 'two event log entries')
  assert.equal(bytesToHex(bytes.subarray(5 + 700, 5 + 708)), '00000000' + '01000080', 'imr 0, event_type LE')
  assert.equal(bytesToHex(bytes.subarray(bytes.length - 64 - 23, bytes.length - 23)), '03'.repeat(64))
  assert.equal(Buffer.from(bytes.subarray(bytes.length - 22)).toString(), sample.config)
  assert.deepEqual(decodeDstackAttestation(bytes), sample)
})

test('error: the decoder refuses other variants, truncation, trailing bytes and oversize lists', () => {
  const bytes = encodeDstackAttestation(sample)
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.of(1, 0), /not a VersionedAttestation::V0/],
    [Uint8Array.of(0, 1), /not a DstackTdx/],
    [bytes.subarray(0, bytes.length - 1), /truncated/],
    [Buffer.concat([bytes, Uint8Array.of(0)]), /1 trailing bytes/],
    [Uint8Array.of(0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff), /list of/],
    [Uint8Array.of(0, 0, 0x07, 0, 0, 0, 0, 0), /wider than 32 bits/],
  ]
  for (const [input, pattern] of cases) assert.throws(() => decodeDstackAttestation(input), (e: Error) => e instanceof AttestationCodecError && pattern.test(e.message))
})

test("vectors: dstack's simulator attestation decodes, re-encodes byte for byte, and its log (runtime digests ours) replays to its quote", () => {
  const vector = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-simulator-attestation.json', import.meta.url), 'utf8')) as { attestation: string }
  const bytes = hexToBytes(vector.attestation)
  const decoded = decodeDstackAttestation(bytes)
  assert.equal(bytesToHex(encodeDstackAttestation(decoded)), vector.attestation)
  const rtmrs = [376, 424, 472, 520].map((o) => bytesToHex(decoded.quote.subarray(o, o + 48)))
  assert.deepEqual(replayRtmrs(decoded.eventLog).map(bytesToHex), rtmrs)
  // Each runtime event's digest, as we compute it, is the one dstack logged.
  const logged = decoded.eventLog.filter((e) => e.imr === 3)
  assert.equal(logged.length, decoded.runtimeEvents.length)
  assert.ok(logged.length > 0)
  for (const [i, e] of decoded.runtimeEvents.entries()) assert.equal(runtimeEvent(e.event, e.payload).digest, logged[i]!.digest, e.event)
})
