import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { bytesToHex } from '@noble/hashes/utils.js'
import {
  bootRuntimeEventPayload,
  DSTACK_RUNTIME_EVENT_TYPE,
  EventLogError,
  extendRtmr,
  parseCcel,
  parseEventLog,
  parseRuntimeEventLines,
  replayRtmrs,
  runtimeEvent,
  runtimeEventDigest,
  runtimeEventLine,
  withoutBootPayloads,
  type TdxEvent,
} from './eventLog.ts'
import { ccelTable } from '../../test/ccelTable.ts'

const sha384 = (...parts: Uint8Array[]) => createHash('sha384').update(Buffer.concat(parts)).digest()

test('vectors: the runtime event digest is SHA-384(le32(0x08000001) ":" name ":" payload), computed independently', () => {
  const expected = sha384(Buffer.from([0x01, 0x00, 0x00, 0x08]), Buffer.from(':app-id:'), Buffer.from('deadbeef', 'hex'))
  assert.equal(bytesToHex(runtimeEventDigest('app-id', Buffer.from('deadbeef', 'hex'))), expected.toString('hex'))
  const entry = runtimeEvent('compose-hash', Uint8Array.of(1, 2))
  assert.deepEqual(Object.keys(entry), ['imr', 'event_type', 'digest', 'event', 'event_payload'])
  assert.equal(entry.imr, 3)
  assert.equal(entry.event_type, DSTACK_RUNTIME_EVENT_TYPE)
  assert.equal(entry.event_payload, '0102')
})

test('default: replay extends each register from zero, padding short digests as the SDK does', () => {
  const boot: TdxEvent = { imr: 1, event_type: 4, digest: 'ab'.repeat(48), event: '', event_payload: '00' }
  const short: TdxEvent = { imr: 2, event_type: 4, digest: 'cd', event: '', event_payload: '' }
  const rt = runtimeEvent('x', new Uint8Array())
  const [r0, r1, r2, r3] = replayRtmrs([boot, short, rt])
  assert.equal(bytesToHex(r0!), '00'.repeat(48))
  assert.equal(bytesToHex(r1!), sha384(new Uint8Array(48), Buffer.from('ab'.repeat(48), 'hex')).toString('hex'))
  assert.equal(bytesToHex(r2!), sha384(new Uint8Array(48), Buffer.from('cd' + '00'.repeat(47), 'hex')).toString('hex'))
  assert.deepEqual(r3, extendRtmr(new Uint8Array(48), Buffer.from(rt.digest, 'hex')))
  assert.throws(() => extendRtmr(new Uint8Array(32), new Uint8Array(48)), RangeError)
})

test('default: GetQuote form drops boot-time payloads and keeps every digest', () => {
  const boot: TdxEvent = { imr: 0, event_type: 0x80000001, digest: 'aa'.repeat(48), event: '', event_payload: 'ff' }
  const rt = runtimeEvent('e', Uint8Array.of(9))
  assert.deepEqual(withoutBootPayloads([boot, rt]), [{ ...boot, event_payload: '' }, rt])
})

test('default: boot events are found before system-ready only (app events cannot impersonate them)', () => {
  const log = [runtimeEvent('compose-hash', Uint8Array.of(1)), runtimeEvent('system-ready', new Uint8Array()), runtimeEvent('instance-id', Uint8Array.of(2))]
  assert.deepEqual(bootRuntimeEventPayload(log, 'compose-hash'), Uint8Array.of(1))
  assert.equal(bootRuntimeEventPayload(log, 'instance-id'), undefined)
})

test('default: an agent log without runtime digests gets them filled in; a wrong one is refused', () => {
  const rt = runtimeEvent('app-id', Uint8Array.of(7))
  const boot = { imr: 0, event_type: 1, digest: '11'.repeat(48), event: '', event_payload: '' }
  const parsed = parseEventLog(JSON.stringify([boot, { ...rt, digest: '' }]))
  assert.deepEqual(parsed, [boot, rt])
  assert.deepEqual(parseEventLog(''), [])
  assert.throws(() => parseEventLog(JSON.stringify([{ ...rt, digest: '22'.repeat(48) }])), /does not match/)
})

test('error: malformed event logs are refused with EventLogError', () => {
  const cases: [string, RegExp][] = [
    ['{', /not JSON/],
    ['{}', /JSON array/],
    ['[1]', /not an object/],
    [JSON.stringify([{ imr: 4, event_type: 1, digest: '00'.repeat(48), event: '', event_payload: '' }]), /imr must be 0-3/],
    [JSON.stringify([{ imr: 0, event_type: -1, digest: '00'.repeat(48), event: '', event_payload: '' }]), /event_type must be a u32/],
    [JSON.stringify([{ imr: 0, event_type: 1, digest: 'zz', event: '', event_payload: '' }]), /digest must be hex/],
    [JSON.stringify([{ imr: 0, event_type: 1, digest: '00', event: '', event_payload: '' }]), /48-byte digest/],
    [JSON.stringify([{ imr: 2, event_type: DSTACK_RUNTIME_EVENT_TYPE, digest: '', event: 'x', event_payload: '' }]), /must extend RTMR3/],
    [JSON.stringify([{ imr: 0, event_type: 1, digest: '00'.repeat(48), event: 5, event_payload: '' }]), /event must be a string/],
  ]
  for (const [json, pattern] of cases) assert.throws(() => parseEventLog(json), (e: Error) => e instanceof EventLogError && pattern.test(e.message), json)
})

test('default: a CCEL table parses into zero-based RTMR entries, index 0 skipped, up to the filler', () => {
  const d = (b: number) => new Uint8Array(48).fill(b)
  const table = ccelTable([
    { index: 0, type: 3, digest: d(0), payload: new Uint8Array(0) },
    { index: 1, type: 0x80000001, digest: d(1), payload: Uint8Array.of(0xaa) },
    { index: 3, type: 4, digest: d(3), payload: new Uint8Array(4) },
  ])
  const events = parseCcel(table)
  assert.deepEqual(events, [
    { imr: 0, event_type: 0x80000001, digest: bytesToHex(d(1)), event: '', event_payload: 'aa' },
    { imr: 2, event_type: 4, digest: bytesToHex(d(3)), event: '', event_payload: '00000000' },
  ])
  assert.deepEqual(parseCcel(table.subarray(0, table.length - 16)), events, 'the end of the table also ends the log')
})

test('error: truncated or unexpected CCEL tables are refused with EventLogError', () => {
  const d = new Uint8Array(48)
  const good = ccelTable([{ index: 1, type: 1, digest: d, payload: new Uint8Array(8) }], 0)
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 10), /truncated/],
    [good.subarray(0, good.length - 3), /truncated/],
    [ccelTable([{ index: 1, type: 1, digest: d, payload: new Uint8Array(0), count: 2 }]), /expected 1 digest/],
    [ccelTable([{ index: 1, type: 1, digest: d, alg: 0x99, payload: new Uint8Array(0) }]), /unsupported digest algorithm/],
    [ccelTable([{ index: 7, type: 1, digest: d, payload: new Uint8Array(0) }]), /not a TDX measurement register/],
  ]
  for (const [bytes, pattern] of cases) assert.throws(() => parseCcel(bytes), (e: Error) => e instanceof EventLogError && pattern.test(e.message))
})

test('default: the runtime event log file reads back what runtimeEventLine wrote, in dstack line form', () => {
  const line = runtimeEventLine('app-id', Uint8Array.of(1, 2, 3))
  assert.equal(line, '{"event":"app-id","payload":"AQID"}')
  assert.deepEqual(parseRuntimeEventLines(`${line}\n\n${runtimeEventLine('x', new Uint8Array())}\n`), [
    runtimeEvent('app-id', Uint8Array.of(1, 2, 3)),
    runtimeEvent('x', new Uint8Array()),
  ])
  assert.throws(() => parseRuntimeEventLines('{"event":1,"payload":""}'), EventLogError)
  assert.throws(() => parseRuntimeEventLines('{"event":"a","payload":"A"}'), EventLogError)
  assert.throws(() => parseRuntimeEventLines('nope'), /line 1 is not JSON/)
})
