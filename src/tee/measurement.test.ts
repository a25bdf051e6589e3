import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Quote } from '@phala/dcap-qvl'
import { bytesToHex, encodePacked, keccak256, type Hex } from 'viem'
import { measurementOf } from './measurement.ts'
import { QuoteVerificationError } from './types.ts'

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../test/fixtures/dcap/${name}`, import.meta.url)))
const tdxQuote = fixture('tdx_quote')
const sgxQuote = fixture('sgx_quote')
const hex = (b: Uint8Array): Hex => bytesToHex(b)

function rejects(quote: Uint8Array, reason: string, message: string | RegExp) {
  assert.throws(
    () => measurementOf(quote),
    (e: unknown) => {
      assert.ok(e instanceof QuoteVerificationError)
      assert.equal(e.reason, reason)
      if (typeof message === 'string') assert.equal(e.message, message)
      else assert.match(e.message, message)
      return true
    },
  )
}

/** A TDX v5 quote (body type 2) made from the v4 fixture: same TD report behind a 6-byte body descriptor. */
function toV5(v4: Uint8Array, bodyType = 2, bodySize = 584): Uint8Array {
  const out = new Uint8Array(v4.length + 6)
  out.set(v4.subarray(0, 48))
  const view = new DataView(out.buffer)
  view.setUint16(0, 5, true)
  view.setUint16(48, bodyType, true)
  view.setUint32(50, bodySize, true)
  out.set(v4.subarray(48), 54)
  return out
}

test('default: TDX v4 fields match dcap-qvl and the id is keccak256 of the packed fields', () => {
  const m = measurementOf(tdxQuote)
  const td = Quote.parse(tdxQuote).report.asTd10()!
  assert.equal(m.teeType, 'tdx')
  assert.equal(m.version, 4)
  assert.deepEqual(m.measurements, {
    mrTd: hex(td.mrTd),
    rtMr0: hex(td.rtMr0),
    rtMr1: hex(td.rtMr1),
    rtMr2: hex(td.rtMr2),
    rtMr3: hex(td.rtMr3),
    mrConfigId: hex(td.mrConfigId),
    xfam: hex(td.xfam),
    tdAttributes: hex(td.tdAttributes),
  })
  assert.ok(m.measurements.mrTd!.startsWith('0x91eb2b44d141d4ec'))
  assert.ok(m.measurements.mrTd!.endsWith('873118b7'))
  assert.equal(m.measurements.rtMr3, `0x${'00'.repeat(48)}`)
  assert.deepEqual(m.reportData, new Uint8Array(td.reportData))
  const raw = encodePacked(
    ['uint8', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes8', 'bytes8'],
    [1, hex(td.mrTd), hex(td.rtMr0), hex(td.rtMr1), hex(td.rtMr2), hex(td.rtMr3), hex(td.mrConfigId), hex(td.xfam), hex(td.tdAttributes)],
  )
  assert.equal(m.measurementRaw, raw)
  assert.equal((raw.length - 2) / 2, 1 + 6 * 48 + 2 * 8)
  assert.equal(m.measurementId, keccak256(raw))
  assert.equal(m.measurementId, '0x8ee35132f2012859433fa8ab8a6b4515e0d1daaaa547214345f46bc18e0a8437')
  assert.equal(m.signedLength, Quote.parse(tdxQuote).signedLength())
})

test('default: SGX v3 fields match dcap-qvl; ISVPRODID and ISVSVN are packed as big-endian uint16', () => {
  const m = measurementOf(sgxQuote)
  const report = Quote.parse(sgxQuote).report.asSgx()!
  assert.equal(m.teeType, 'sgx')
  assert.equal(m.version, 3)
  assert.deepEqual(m.measurements, {
    mrEnclave: hex(report.mrEnclave),
    mrSigner: hex(report.mrSigner),
    isvProdId: '0x0000',
    isvSvn: '0x0000',
  })
  assert.ok(m.measurements.mrEnclave!.startsWith('0x33d8736db756ed49'))
  assert.ok(m.measurements.mrSigner!.startsWith('0x815f42f11cf64430'))
  const expectedReportData = new Uint8Array(64)
  expectedReportData.set(new TextEncoder().encode('Hello, world!'))
  assert.deepEqual(m.reportData, expectedReportData)
  const raw = encodePacked(['uint8', 'bytes32', 'bytes32', 'uint16', 'uint16'], [2, hex(report.mrEnclave), hex(report.mrSigner), 0, 0])
  assert.equal(m.measurementRaw, raw)
  assert.equal(m.measurementId, keccak256(raw))
  assert.equal(m.signedLength, Quote.parse(sgxQuote).signedLength())
})

test('default: SGX ISVPRODID 0x0102 and ISVSVN 0x0304 (stored little-endian) pack as 0x0102 0x0304', () => {
  const quote = sgxQuote.slice()
  quote.set([0x02, 0x01, 0x04, 0x03], 304)
  const m = measurementOf(quote)
  assert.equal(m.measurements.isvProdId, '0x0102')
  assert.equal(m.measurements.isvSvn, '0x0304')
  assert.ok(m.measurementRaw.endsWith('01020304'))
  assert.deepEqual(Quote.parse(quote).report.asSgx()!.isvProdId, 0x0102)
})

test('default: TDX v5 shifts the TD fields by 6 bytes and gives the same measurement', () => {
  const v4 = measurementOf(tdxQuote)
  const v5quote = toV5(tdxQuote)
  const v5 = measurementOf(v5quote)
  assert.equal(v5.version, 5)
  assert.equal(v5.measurementId, v4.measurementId)
  assert.deepEqual(v5.measurements, v4.measurements)
  assert.deepEqual(v5.reportData, v4.reportData)
  assert.equal(v5.signedLength, 638)
  assert.equal(v5.signedLength, Quote.parse(v5quote).signedLength())
  assert.deepEqual(hex(Quote.parse(v5quote).report.asTd10()!.mrTd), v4.measurements.mrTd)
})

test('default: TDX v5 with a TDX 1.5 body (type 3, 648 bytes)', () => {
  const v5 = toV5(tdxQuote, 3, 648)
  const out = new Uint8Array(v5.length + 64)
  out.set(v5.subarray(0, 54 + 584))
  out.set(v5.subarray(54 + 584), 54 + 648)
  const m = measurementOf(out)
  assert.equal(m.signedLength, 48 + 6 + 648)
  assert.equal(m.measurementId, measurementOf(tdxQuote).measurementId)
})

test('default: the result does not alias the input buffer', () => {
  const quote = tdxQuote.slice()
  const m = measurementOf(quote)
  quote.fill(0xff, 48, 632)
  assert.equal(m.reportData[0], 0x9a)
})

test('error: truncated quotes', () => {
  rejects(new Uint8Array(0), 'malformed_quote', 'quote is 0 bytes, shorter than its 48-byte header')
  rejects(tdxQuote.subarray(0, 47), 'malformed_quote', 'quote is 47 bytes, shorter than its 48-byte header')
  rejects(tdxQuote.subarray(0, 600), 'malformed_quote', 'TDX quote v4 is 600 bytes, truncated before its auth data')
  rejects(sgxQuote.subarray(0, 435), 'malformed_quote', 'SGX quote v3 is 435 bytes, truncated before its auth data')
  rejects(sgxQuote.subarray(0, 4599), 'malformed_quote', 'quote is 4599 bytes, truncated: its auth data length makes 4600')
  rejects(toV5(tdxQuote).subarray(0, 50), 'malformed_quote', 'quote v5 is truncated in its body descriptor')
  // Every prefix fails cleanly, never with anything but a QuoteVerificationError.
  for (let n = 0; n < 4936; n += 7) {
    assert.throws(() => measurementOf(tdxQuote.subarray(0, n)), QuoteVerificationError)
  }
})

test('error: trailing bytes other than zero padding', () => {
  const padded = new Uint8Array(sgxQuote.length + 10)
  padded.set(sgxQuote)
  assert.equal(measurementOf(padded).usedLength, 4600)
  padded[4605] = 1
  rejects(padded, 'malformed_quote', 'quote has non-zero bytes after its 4600 bytes of header, body and auth data')
})

test('error: unknown versions, TEE types and v5 body types', () => {
  const withHeader = (quote: Uint8Array, offset: number, bytes: number[]) => {
    const q = quote.slice()
    q.set(bytes, offset)
    return q
  }
  rejects(withHeader(tdxQuote, 0, [2, 0]), 'unsupported_quote', 'quote version 2, expected 3 (SGX), 4 or 5 (TDX)')
  rejects(withHeader(tdxQuote, 0, [6, 0]), 'unsupported_quote', 'quote version 6, expected 3 (SGX), 4 or 5 (TDX)')
  rejects(withHeader(tdxQuote, 4, [0, 0, 0, 0]), 'unsupported_quote', 'quote v4 with TEE type 0x0, expected TDX')
  rejects(withHeader(sgxQuote, 4, [0x81, 0, 0, 0]), 'unsupported_quote', 'quote v3 with TEE type 0x81, expected SGX')
  rejects(toV5(tdxQuote, 1, 384), 'unsupported_quote', 'quote v5 body type 1, expected 2 (TDX 1.0) or 3 (TDX 1.5)')
  rejects(toV5(tdxQuote, 2, 648), 'malformed_quote', 'quote v5 body size 648, expected 584 for body type 2')
})

test('error: not a Uint8Array', () => {
  assert.throws(() => measurementOf('0x00' as unknown as Uint8Array), { name: 'TypeError', message: 'quote must be a Uint8Array' })
})
