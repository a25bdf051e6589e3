// The quote layout against @phala/dcap-qvl's own parser on Intel-signed quotes: every field the layout names reads
// the same bytes dcap-qvl decodes (TDX v4, TDX v5 made from it, SGX v3, the QE report inside each), and the devnet
// simulator writes its quotes by the same layout (a simulated quote parses back field by field).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Quote } from '@phala/dcap-qvl'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import {
  AUTH_DATA,
  bodyOffset,
  QUOTE_HEADER,
  QUOTE_HEADER_LENGTH,
  readField,
  SGX_REPORT,
  sgxQuoteOffset,
  TD10_REPORT_LENGTH,
  TD_REPORT,
  tdQuoteOffset,
  type SgxReportField,
  type TdReportField,
} from './quoteLayout.ts'

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../test/fixtures/dcap/${name}`, import.meta.url)))
const hex = (bytes: Uint8Array | Buffer) => Buffer.from(bytes).toString('hex')
const u16 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint16(0, true)
const u32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true)

function checkTdFields(quote: Uint8Array, version: 4 | 5) {
  const td = Quote.parse(Buffer.from(quote)).report.asTd10()! as unknown as Record<TdReportField, Uint8Array>
  for (const name of Object.keys(TD_REPORT) as TdReportField[]) {
    const start = tdQuoteOffset(name, version)
    assert.equal(hex(quote.subarray(start, start + TD_REPORT[name].length)), hex(td[name]), `TD report ${name} (v${version})`)
  }
}

function checkSgxReport(report: Uint8Array, parsed: Record<string, unknown>, what: string) {
  for (const name of Object.keys(SGX_REPORT) as SgxReportField[]) {
    const bytes = readField(report, SGX_REPORT[name])
    const expected = parsed[name]
    if (typeof expected === 'number') assert.equal(SGX_REPORT[name].length === 2 ? u16(bytes) : u32(bytes), expected, `${what} ${name}`)
    else assert.equal(hex(bytes), hex(expected as Uint8Array), `${what} ${name}`)
  }
}

test('default: the header fields read what dcap-qvl decodes, for TDX and SGX', () => {
  for (const name of ['tdx_quote', 'sgx_quote']) {
    const quote = fixture(name)
    const header = Quote.parse(Buffer.from(quote)).header as unknown as Record<string, unknown>
    for (const [key, f] of Object.entries(QUOTE_HEADER)) {
      const bytes = readField(quote, f)
      const expected = header[key]
      if (typeof expected === 'number') assert.equal(f.length === 2 ? u16(bytes) : u32(bytes), expected, `${name} header ${key}`)
      else assert.equal(hex(bytes), hex(expected as Uint8Array), `${name} header ${key}`)
    }
  }
})

test('default: every TD report field of a TDX v4 quote and of the same report in v5', () => {
  const v4 = fixture('tdx_quote')
  checkTdFields(v4, 4)
  const v5 = new Uint8Array(v4.length + 6)
  v5.set(v4.subarray(0, QUOTE_HEADER_LENGTH))
  new DataView(v5.buffer).setUint16(0, 5, true)
  new DataView(v5.buffer).setUint16(QUOTE_HEADER_LENGTH, 2, true)
  new DataView(v5.buffer).setUint32(QUOTE_HEADER_LENGTH + 2, TD10_REPORT_LENGTH, true)
  v5.set(v4.subarray(QUOTE_HEADER_LENGTH), bodyOffset(5))
  checkTdFields(v5, 5)
})

test('default: every enclave report field of an SGX v3 quote, and of the QE reports of both quotes', () => {
  const sgx = fixture('sgx_quote')
  const parsed = Quote.parse(Buffer.from(sgx))
  checkSgxReport(sgx.subarray(sgxQuoteOffset('cpuSvn')), parsed.report.asSgx()! as unknown as Record<string, unknown>, 'SGX body')
  // dcap-qvl decodes a QE report only inside auth data; put each QE report in an SGX quote's body to decode it as one.
  for (const name of ['tdx_quote', 'sgx_quote']) {
    const qeReport = new Uint8Array(Quote.parse(Buffer.from(fixture(name))).authData.intoV3().qeReport)
    const carrier = new Uint8Array(sgx)
    carrier.set(qeReport, sgxQuoteOffset('cpuSvn'))
    checkSgxReport(qeReport, Quote.parse(Buffer.from(carrier)).report.asSgx()! as unknown as Record<string, unknown>, `${name} QE report`)
  }
})

test('default: a simulated quote is written by the layout (fields, report data, auth data)', async () => {
  const measurement = simulatedMeasurement('layout')
  const reportData = Uint8Array.from({ length: 64 }, (_, i) => i + 1)
  const quote = await simulatedQuoteProvider({ measurement }).getQuote(reportData)
  const td = Quote.parse(Buffer.from(quote)).report.asTd10()! as unknown as Record<TdReportField, Uint8Array>
  for (const name of ['mrTd', 'rtMr0', 'rtMr1', 'rtMr2', 'rtMr3', 'mrConfigId', 'xfam', 'tdAttributes'] as const) {
    assert.equal(hex(readField(quote, TD_REPORT[name], bodyOffset(4))), hex(measurement[name]), `simulated ${name}`)
    assert.equal(hex(td[name]), hex(measurement[name]), `dcap-qvl reads simulated ${name}`)
  }
  assert.equal(hex(readField(quote, TD_REPORT.reportData, bodyOffset(4))), hex(reportData))
  const signedLength = bodyOffset(4) + TD10_REPORT_LENGTH
  const auth = Quote.parse(Buffer.from(quote)).authData.intoV3()
  const authStart = signedLength + 4
  assert.equal(hex(readField(quote, AUTH_DATA.attestationKey, authStart)), hex(auth.ecdsaAttestationKey))
  assert.equal(hex(readField(quote, AUTH_DATA.signature, authStart)), hex(auth.ecdsaSignature))
})
