// Collateral kept with the decision (docs/protocol.md#node-state, `audit` in docs/protocol.md#command-line): kept once per
// content hash, read back from an archive or a peer as untrusted input, and used to judge an old quote at the time it
// was judged. Real DCAP verification over the devnet PKI, real SQLite, real HTTP.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, test } from 'node:test'
import { keccak256, stringToHex, type Hex } from 'viem'
import { createDevnetPki } from '../devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { openDatabase } from '../store/database.ts'
import { createKeptCollateralStore, keptCollateralReader } from '../store/keptCollateral.ts'
import { createDcapVerifier } from './dcap.ts'
import {
  canonicalCollateralJson,
  collateralHash,
  KEPT_COLLATERAL_FAULTS,
  MAX_KEPT_COLLATERAL_BYTES,
  parseKeptCollateral,
  peerKeptCollateralSource,
  verifyWithKeptCollateral,
  type KeptCollateral,
} from './keptCollateral.ts'
import { QuoteVerificationError } from './types.ts'

const DAY = 86_400
const now = Math.floor(Date.now() / 1000)
// A decision made 100 days ago, with collateral valid for 30 days from two days before it: expired long since.
const t0 = now - 100 * DAY
const pki = createDevnetPki({ now: t0 - 10 * DAY })
const platform = pki.mintPlatform({ now: t0 - 10 * DAY })
const then = pki.collateral({ issuedAt: t0 - 2 * DAY, validFor: 30 * DAY })
const quoteBlobHash: Hex = `0x01${'ab'.repeat(31)}`
const roots = [pki.rootCaDer]
const quote = await simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('kept-collateral-test') }).getQuote(new Uint8Array(64).fill(9))
const record = (overrides: Partial<KeptCollateral> = {}): KeptCollateral => ({ quoteBlobHash, collateralHash: collateralHash(then), judgedAt: t0, collateral: then, ...overrides })
const window = { notBefore: t0 - 60, notAfter: t0 + 3_600, trustedRootCaDer: roots }
const reason = (expected: string) => (error: unknown) => {
  assert.ok(error instanceof QuoteVerificationError, String(error))
  assert.equal(error.reason, expected, error.message)
  return true
}

test('default: a quote whose collateral has since expired still verifies with the collateral kept with its decision, at the time it was judged', async () => {
  const kept = parseKeptCollateral(JSON.parse(JSON.stringify(record())), quoteBlobHash)
  const verified = await verifyWithKeptCollateral(quote, kept, window)
  assert.equal(verified.status, 'UpToDate')
  assert.deepEqual(verified.reportData, new Uint8Array(64).fill(9))
  // The same collateral cannot judge it today: it expired, which is why it must be judged at its time.
  const today = createDcapVerifier({ collateral: { get: async () => then }, trustedRootCaDer: roots })
  await assert.rejects(today.verify(quote, { now }), reason('collateral_expired'))
})

test('security: tampered kept collateral is refused: a changed byte under its old hash, a re-hashed forgery, another root, a time outside the decision window', async () => {
  // A TCB info edited (a level re-rated), served under the hash of the original: the content address does not match.
  const edited = { ...then, tcb_info: then.tcb_info.replace('"OutOfDate"', '"UpToDate"') }
  assert.notEqual(edited.tcb_info, then.tcb_info)
  assert.throws(() => parseKeptCollateral(record({ collateral: edited }), quoteBlobHash), reason('collateral_invalid'))
  // The same forgery re-addressed under its own hash reads back, and the verifier refuses Intel's (here the devnet
  // root's) signature over it.
  const forged = parseKeptCollateral(record({ collateral: edited, collateralHash: collateralHash(edited) }), quoteBlobHash)
  await assert.rejects(verifyWithKeptCollateral(quote, forged, window), reason('bad_collateral_signature'))
  // Well-formed collateral of another PKI: it does not chain to the trusted root.
  const other = createDevnetPki({ now: t0 - 10 * DAY }).collateral({ issuedAt: t0 - 2 * DAY, validFor: 30 * DAY })
  await assert.rejects(
    verifyWithKeptCollateral(quote, parseKeptCollateral(record({ collateral: other, collateralHash: collateralHash(other) }), quoteBlobHash), window),
    (error: unknown) => error instanceof QuoteVerificationError && KEPT_COLLATERAL_FAULTS.has(error.reason),
  )
  // A record claiming the quote was judged before its block, or after its request could still be answered.
  for (const judgedAt of [window.notBefore - 1, window.notAfter + 1])
    await assert.rejects(verifyWithKeptCollateral(quote, parseKeptCollateral(record({ judgedAt }), quoteBlobHash), window), reason('collateral_invalid'))
  // Genuine collateral at a time it does not cover (a lie about the time within the window) fails in the verifier.
  const late = { ...window, notAfter: t0 + 40 * DAY }
  await assert.rejects(verifyWithKeptCollateral(quote, parseKeptCollateral(record({ judgedAt: t0 + 35 * DAY }), quoteBlobHash), late), reason('collateral_expired'))
  // A record for another quote blob, and a malformed one.
  assert.throws(() => parseKeptCollateral(record(), `0x01${'cd'.repeat(31)}`), reason('collateral_invalid'))
  assert.throws(() => parseKeptCollateral({ ...record(), judgedAt: 'yesterday' }, quoteBlobHash), reason('collateral_invalid'))
  assert.throws(() => parseKeptCollateral('{}', quoteBlobHash), reason('collateral_invalid'))
})

test('default: the store keeps each distinct collateral once, by hash, and which one every decision used; oversized collateral is not kept', () => {
  const db = openDatabase(':memory:')
  const store = createKeptCollateralStore(db)
  const other = pki.collateral({ issuedAt: t0 - DAY, validFor: 30 * DAY })
  const hashes = [1, 2, 3].map((i): Hex => `0x01${String(i).padStart(2, '0').repeat(31)}`)
  assert.equal(store.keep(hashes[0]!, then, t0, now), 'stored')
  assert.equal(store.keep(hashes[1]!, then, t0 + 12, now), 'deduplicated')
  assert.equal(store.keep(hashes[2]!, other, t0 + 24, now), 'stored')
  assert.deepEqual(store.stats(), { collaterals: 2, decisions: 3 })
  const huge = { ...then, pck_crl_issuer_chain: 'x'.repeat(MAX_KEPT_COLLATERAL_BYTES) }
  assert.equal(store.keep(`0x01${'ff'.repeat(31)}`, huge, t0, now), 'too_large')
  assert.deepEqual(store.stats(), { collaterals: 2, decisions: 3 })
  const row = store.get(hashes[1]!)!
  assert.deepEqual(row, { quoteBlobHash: hashes[1], collateralHash: keccak256(stringToHex(canonicalCollateralJson(then))), judgedAt: t0 + 12, collateral: canonicalCollateralJson(then) })
  assert.equal(store.get(`0x01${'ee'.repeat(31)}`), undefined)
  // A database from a build that kept no collateral reads as "nothing kept".
  const old = openDatabase(':memory:', { upTo: 7 })
  assert.equal(keptCollateralReader(old).get(hashes[0]!), undefined)
})

test('error: a peer serving more than a kept record\'s size cap is cut off before it is buffered; 404 is none kept', async () => {
  const body = JSON.stringify(record())
  const server = createServer((req, res) => {
    if (req.url!.includes('/collateral/0x01ab')) return res.end(body)
    if (req.url!.includes('/collateral/0x01cd')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      for (let i = 0; i < 8; i++) res.write(chunk)
      return res.end()
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  after(() => server.close())
  const source = peerKeptCollateralSource(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  assert.deepEqual(parseKeptCollateral(await source.get(quoteBlobHash), quoteBlobHash), parseKeptCollateral(record(), quoteBlobHash))
  await assert.rejects(source.get(`0x01${'cd'.repeat(31)}`), (error: unknown) => error instanceof QuoteVerificationError && /over \d+ bytes/.test(error.message))
  assert.equal(await source.get(`0x01${'ef'.repeat(31)}`), undefined)
})

test('default: the kept collateral\'s verdict on a quote is the verdict of its time: a platform it rated Revoked fails, and that is not a fault of the collateral', async () => {
  const revokedPlatform = pki.mintPlatform({ now: t0 - 10 * DAY, tcbStatus: 'Revoked' })
  const revokedQuote = await simulatedQuoteProvider({ platform: revokedPlatform, measurement: simulatedMeasurement('kept-collateral-test') }).getQuote(new Uint8Array(64).fill(9))
  await assert.rejects(verifyWithKeptCollateral(revokedQuote, parseKeptCollateral(record(), quoteBlobHash), window), (error: unknown) => {
    assert.ok(error instanceof QuoteVerificationError, String(error))
    assert.equal(error.reason, 'tcb_revoked', error.message)
    assert.ok(!KEPT_COLLATERAL_FAULTS.has(error.reason), 'audit reports it as the quote failing, not as a refused collateral')
    return true
  })
})
