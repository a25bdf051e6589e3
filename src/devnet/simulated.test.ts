import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { p256 } from '@noble/curves/nist.js'
import { Quote } from '@phala/dcap-qvl'
import { createDcapVerifier } from '../tee/dcap.ts'
import { createDevnetPki } from './pki.ts'
import { measurementOf } from '../tee/measurement.ts'
import { generateSimulatedAttestationKey, loadSimulatedPlatform, MAX_SIMULATED_RUNTIME_EVENTS, simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from './simulated.ts'
import { replayRtmrs, runtimeEvent } from '../tee/eventLog.ts'
import { QuoteVerificationError } from '../tee/types.ts'

const pki = createDevnetPki()
const platform = pki.mintPlatform()

test('default: a TDX v4 quote in Intel\'s layout, measurement fields where docs/protocol.md#measurements-and-tcb-policy reads them', async () => {
  const measurement = simulatedMeasurement('layout')
  const reportData = Uint8Array.from({ length: 64 }, (_, i) => i)
  const quote = await simulatedQuoteProvider({ platform, measurement }).getQuote(reportData)
  const parsed = measurementOf(quote)
  assert.equal(parsed.teeType, 'tdx')
  assert.equal(parsed.version, 4)
  assert.equal(parsed.usedLength, quote.length)
  assert.deepEqual(parsed.reportData, reportData)
  for (const [name, value] of Object.entries(measurement)) assert.equal(parsed.measurements[name], `0x${Buffer.from(value).toString('hex')}`, name)
  // dcap-qvl parses it as Intel's: type-6 certification data nesting the QE report and the type-5 PCK chain.
  const q = Quote.parse(Buffer.from(quote))
  assert.equal(q.authData.version, 4)
  const auth = q.authData.intoV3()
  assert.equal(auth.certificationData.certType, 5)
  assert.equal(Buffer.from(auth.certificationData.body).toString('latin1'), platform.pckChainPem)
  assert.equal(auth.qeAuthData.length, 32)
})

test('default: labels give distinct measurements; one provider keeps its attestation key and signs deterministically', async () => {
  const a = simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('a') })
  const b = simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('b') })
  const qa1 = await a.getQuote(new Uint8Array(64))
  const qa2 = await a.getQuote(new Uint8Array(64).fill(1))
  const qb = await b.getQuote(new Uint8Array(64))
  assert.notEqual(measurementOf(qa1).measurementId, measurementOf(qb).measurementId)
  assert.equal(measurementOf(qa1).measurementId, measurementOf(qa2).measurementId)
  const key = (q: Uint8Array) => Buffer.from(q.subarray(636 + 64, 636 + 128)).toString('hex')
  assert.equal(key(qa1), key(qa2))
  assert.notEqual(key(qa1), key(qb))
  // Deterministic (RFC 6979): the same report data gives the same quote, as the dstack GetQuote tests rely on.
  assert.deepEqual(await a.getQuote(new Uint8Array(64)), qa1)
})

test('default: a given attestation key is the quote\'s', async () => {
  const attestation = generateSimulatedAttestationKey()
  const quote = await simulatedQuoteProvider({ platform, attestationSecretKey: attestation.secretKey, measurement: simulatedMeasurement('k') }).getQuote(new Uint8Array(64))
  assert.deepEqual(quote.subarray(636 + 64, 636 + 128), attestation.publicKey)
  assert.ok(p256.verify(quote.subarray(636, 700), quote.subarray(0, 632), Uint8Array.of(4, ...attestation.publicKey), { lowS: false }))
})

test('default: without a platform, quotes lead to a throwaway root nobody trusts', async () => {
  const quote = await simulatedQuoteProvider({ measurement: simulatedMeasurement('x') }).getQuote(new Uint8Array(64))
  assert.equal(measurementOf(quote).teeType, 'tdx')
  const verifier = createDcapVerifier({ collateral: { get: async () => pki.collateral() }, trustedRootCaDer: [pki.rootCaDer] })
  await assert.rejects(verifier.verify(quote), (e: unknown) => e instanceof QuoteVerificationError && e.reason === 'untrusted_root')
})

test('error: bad measurement fields, report data and platform files', async () => {
  const measurement = simulatedMeasurement('bad')
  assert.throws(() => simulatedQuoteProvider({ platform, measurement: { ...measurement, mrTd: new Uint8Array(47) } }), { name: 'RangeError', message: 'mrTd: expected 48 bytes, got 47' })
  assert.throws(() => simulatedQuoteProvider({ platform, measurement: { ...measurement, xfam: 'e7' as never } }), { name: 'TypeError', message: 'xfam: expected Uint8Array' })
  assert.throws(() => simulatedQuoteProvider({ platform, measurement, attestationSecretKey: new Uint8Array(31) }), { name: 'RangeError', message: 'attestationSecretKey: expected 32 bytes' })
  const provider = simulatedQuoteProvider({ platform, measurement })
  await assert.rejects(provider.getQuote(new Uint8Array(32)), { name: 'RangeError', message: 'reportData: expected 64 bytes' })
  const dir = mkdtempSync(join(tmpdir(), 'km-sim-'))
  writeFileSync(join(dir, 'chain.pem'), platform.pckChainPem)
  writeFileSync(join(dir, 'bad.key'), 'not a key')
  assert.throws(() => loadSimulatedPlatform({ pckChainFile: join(dir, 'none.pem'), pckKeyFile: join(dir, 'bad.key') }), { message: `PCK chain file ${join(dir, 'none.pem')}: ENOENT` })
  assert.throws(() => loadSimulatedPlatform({ pckChainFile: join(dir, 'chain.pem'), pckKeyFile: join(dir, 'bad.key') }), { message: `PCK key file ${join(dir, 'bad.key')}: not a PEM private key` })
  assert.throws(() => loadSimulatedPlatform({ pckChainFile: join(dir, 'bad.key'), pckKeyFile: join(dir, 'bad.key') }), { message: `PCK chain file ${join(dir, 'bad.key')}: expected a PEM chain, leaf first` })
})

test('default: the simulated TD keeps an event log; emitEvent extends RTMR3 in every later quote, as hardware does', async () => {
  const label = 'events'
  const td = simulatedQuoteProvider({ platform, measurement: simulatedMeasurement(label), bootEventLog: simulatedBootEventLog(label) })
  const rtmrs = (q: Uint8Array) => [376, 424, 472, 520].map((o) => Buffer.from(q.subarray(o, o + 48)).toString('hex'))
  const before = await td.quoteWithEvidence!(new Uint8Array(64))
  assert.deepEqual(before.eventLog, simulatedBootEventLog(label))
  assert.deepEqual(replayRtmrs(before.eventLog).map((r) => Buffer.from(r).toString('hex')), rtmrs(before.quote))
  await td.emitEvent!('deployed', Buffer.from('v2'))
  const after = await td.quoteWithEvidence!(new Uint8Array(64))
  const own = await td.getQuote(new Uint8Array(64).fill(1))
  assert.deepEqual(after.eventLog.at(-1), runtimeEvent('deployed', Buffer.from('v2')))
  assert.deepEqual(replayRtmrs(after.eventLog).map((r) => Buffer.from(r).toString('hex')), rtmrs(after.quote))
  assert.notEqual(measurementOf(after.quote).measurementId, measurementOf(before.quote).measurementId)
  assert.equal(measurementOf(own).measurementId, measurementOf(after.quote).measurementId, 'the node\'s own quotes carry it too')
  // Still a valid quote under the devnet root: RTMR3 is inside the signed TD report.
  const verifier = createDcapVerifier({ collateral: { get: async () => pki.collateral() }, trustedRootCaDer: [pki.rootCaDer] })
  assert.equal((await verifier.verify(after.quote)).measurements.rtMr3, `0x${rtmrs(after.quote)[3]}`)
})

test('error: a boot log that does not replay to the measurement, a full runtime log', async () => {
  assert.throws(() => simulatedQuoteProvider({ measurement: simulatedMeasurement('a'), bootEventLog: simulatedBootEventLog('b') }), /does not replay to the measurement's rtMr0/)
  const td = simulatedQuoteProvider({ measurement: simulatedMeasurement('full') })
  for (let i = 0; i < MAX_SIMULATED_RUNTIME_EVENTS; i++) await td.emitEvent!('e', new Uint8Array())
  await assert.rejects(td.emitEvent!('e', new Uint8Array()), /runtime event log is full/)
})
