// Collateral of a past time (docs/protocol.md#command-line `audit`): the file whose window covers the quote's time and
// FMSPC is chosen, the latest issued among several, and a time no file covers is a clear error. The choice is then
// checked in full by the real DCAP verifier at that time (devnet PKI, simulated quote).
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Hex } from 'viem'
import { createDevnetPki, DEVNET_FMSPC } from '../devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { createDcapVerifier } from './dcap.ts'
import { datedCollateral } from './datedCollateral.ts'
import { QuoteVerificationError } from './types.ts'

const DAY = 86_400
const now = Math.floor(Date.now() / 1000)
const t0 = now - 200 * DAY
// A PKI and platform from before every collateral file, so their certificates are valid at each time judged.
const pki = createDevnetPki({ now: t0 - DAY })
const platform = pki.mintPlatform({ now: t0 - DAY })
const OTHER_FMSPC: Hex = '0x00906ed50000'
const dir = mkdtempSync(join(tmpdir(), 'km-dated-'))
const file = (name: string, options: Parameters<typeof pki.collateral>[0]) => {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(pki.collateral(options)))
  return path
}
// a: t0 … t0+30d; b: t0+10d … t0+40d (issued later, overlapping a); c: t0+100d … t0+130d; other: another FMSPC.
const a = file('a.json', { issuedAt: t0, validFor: 30 * DAY })
const b = file('b.json', { issuedAt: t0 + 10 * DAY, validFor: 30 * DAY })
const c = file('c.json', { issuedAt: t0 + 100 * DAY, validFor: 30 * DAY })
const other = file('other.json', { fmspc: OTHER_FMSPC, issuedAt: t0, validFor: 200 * DAY })
const source = datedCollateral([a, b, c, other])
const request = (at: number, fmspc: Hex = DEVNET_FMSPC) => source.get({ quote: new Uint8Array(), teeType: 'tdx', fmspc, ca: 'platform', now: at })
const issueDate = async (at: number, fmspc?: Hex) => (JSON.parse((await request(at, fmspc)).tcb_info) as { issueDate: string }).issueDate
const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')

test('default: the file whose window covers the time is chosen; of two, the later issued', async () => {
  assert.equal(await issueDate(t0 + DAY), iso(t0))
  assert.equal(await issueDate(t0 + 20 * DAY), iso(t0 + 10 * DAY), 'a and b cover it: b, what a node fetching then would have had')
  assert.equal(await issueDate(t0 + 35 * DAY), iso(t0 + 10 * DAY))
  assert.equal(await issueDate(t0 + 110 * DAY), iso(t0 + 100 * DAY))
  assert.equal(await issueDate(t0 + 110 * DAY, OTHER_FMSPC), iso(t0), 'another FMSPC gets its own file')
})

test('error: a time no file covers for the FMSPC is collateral_unavailable, naming the time, the FMSPC and the files', async () => {
  for (const at of [t0 - DAY, t0 + 50 * DAY, t0 + 140 * DAY]) {
    await assert.rejects(request(at), (error: unknown) => {
      assert.ok(error instanceof QuoteVerificationError)
      assert.equal(error.reason, 'collateral_unavailable')
      assert.equal(error.message, `no collateral file covers ${new Date(at * 1000).toISOString()} for FMSPC ${DEVNET_FMSPC.slice(2)} (files: ${[a, b, c, other].join(', ')})`)
      return true
    })
  }
})

test('error: an unreadable or malformed file is refused when the source is made', () => {
  assert.throws(() => datedCollateral([join(dir, 'missing.json')]), (error: unknown) => error instanceof QuoteVerificationError && error.reason === 'collateral_unavailable')
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ ...pki.collateral({ issuedAt: t0 }), tcb_info: '{"issueDate":"yesterday"}' }))
  assert.throws(() => datedCollateral([bad]), (error: unknown) => error instanceof QuoteVerificationError && error.reason === 'collateral_invalid')
})

test('default: a quote is verified at a past time with the collateral of then, and not at a time no file covers', async () => {
  const quote = await simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('dated-collateral-test') }).getQuote(new Uint8Array(64).fill(7))
  const verifier = createDcapVerifier({ collateral: datedCollateral([a, c]), trustedRootCaDer: [pki.rootCaDer] })
  assert.equal((await verifier.verify(quote, { now: t0 + DAY })).status, 'UpToDate')
  assert.equal((await verifier.verify(quote, { now: t0 + 101 * DAY })).status, 'UpToDate')
  await assert.rejects(verifier.verify(quote, { now: t0 + 60 * DAY }), (error: unknown) => error instanceof QuoteVerificationError && error.reason === 'collateral_unavailable')
})
