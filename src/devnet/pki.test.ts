import assert from 'node:assert/strict'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { QuoteVerifier as DcapQvlVerifier } from '@phala/dcap-qvl'
import type { Hex } from 'viem'
import { collateralExpiresAt, memoryCollateralCache, pccsCollateral, type Collateral } from '../tee/collateral.ts'
import { certificateFields, checkCrl, parseCrl } from '../tee/crl.ts'
import { createDcapVerifier, pckFmspc } from '../tee/dcap.ts'
import { serveDevnetPccs } from './pccs.ts'
import { createDevnetPki, DEVNET_FMSPC, DEVNET_TCB_LEVELS, loadDevnetPki, saveDevnetPlatform } from './pki.ts'
import { loadSimulatedPlatform, simulatedMeasurement, simulatedQuoteProvider } from './simulated.ts'
import { QuoteVerificationError } from '../tee/types.ts'

const pki = createDevnetPki()
const measurement = simulatedMeasurement('devnet-pki-test')
const reportData = new Uint8Array(64).fill(0x5a)
const staticSource = (collateral: Collateral) => ({ get: async () => collateral })
const verifier = (collateral: Collateral = pki.collateral(), roots: Uint8Array[] = [pki.rootCaDer]) =>
  createDcapVerifier({ collateral: staticSource(collateral), trustedRootCaDer: roots })
const quoteOn = (platform = pki.mintPlatform()) => simulatedQuoteProvider({ platform, measurement }).getQuote(reportData)
const certs = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c))

async function rejects(promise: Promise<unknown>, reason: string, message?: string | RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof QuoteVerificationError, String(e))
    assert.equal(e.reason, reason, e.message)
    if (typeof message === 'string') assert.equal(e.message, message)
    else if (message) assert.match(e.message, message)
    return true
  })
}

test('default: certificates in Intel\'s shape (CA flags, names, key usage, the SGX extension)', () => {
  const platform = pki.mintPlatform()
  const [leaf, pckCa, root] = certs(platform.pckChainPem)
  assert.ok(leaf && pckCa && root)
  assert.equal(root.subject, 'CN=Devnet SGX Root CA\nO=keymanager devnet')
  assert.ok(root.ca && root.checkIssued(root) && root.verify(root.publicKey))
  assert.deepEqual(new Uint8Array(root.raw), pki.rootCaDer)
  assert.ok(pckCa.ca && pckCa.checkIssued(root) && pckCa.verify(root.publicKey))
  assert.match(pckCa.subject, /^CN=Devnet SGX PCK Platform CA/)
  assert.ok(!leaf.ca && leaf.checkIssued(pckCa) && leaf.verify(pckCa.publicKey))
  assert.deepEqual(leaf.keyUsage, undefined) // node lists extended key usage only; key usage is checked below
  const leafFields = certificateFields(leaf.raw)
  assert.equal(leafFields.serial, platform.serial.replace(/^(00)+/, ''))
  assert.ok(leafFields.extensions.has('551d0f'), 'key usage')
  assert.equal(pckFmspc(leaf), DEVNET_FMSPC)
  assert.ok(leaf.checkPrivateKey(createPrivateKey(platform.pckKeyPem)))
  // Random serials: no two certificates share one, whoever issued them.
  const serials = [leaf, pckCa, root, ...certs(pki.mintPlatform().pckChainPem).slice(0, 1)].map((c) => c.serialNumber)
  assert.equal(new Set(serials).size, 4)
  assert.ok(serials.every((s) => s.length >= 30))
})

test('default: a simulated quote verifies through createDcapVerifier with the devnet root trusted', async () => {
  const quote = await quoteOn()
  const verified = await verifier().verify(quote)
  assert.equal(verified.teeType, 'tdx')
  assert.equal(verified.status, 'UpToDate')
  assert.deepEqual(verified.advisoryIds, [])
  assert.equal(verified.fmspc, DEVNET_FMSPC)
  assert.deepEqual(verified.reportData, reportData)
  assert.equal(verified.measurements.mrTd, `0x${Buffer.from(measurement.mrTd).toString('hex')}`)
  // dcap-qvl alone agrees.
  const collateral = pki.collateral()
  assert.equal(new DcapQvlVerifier(Buffer.from(pki.rootCaDer)).verify(Buffer.from(quote), collateral, Math.floor(Date.now() / 1000)).status, 'UpToDate')
})

test('default: each TCB status comes from the platform\'s CPUSVN, rated by the shared devnet TCB info', async () => {
  const collateral = pki.collateral()
  for (const [status] of DEVNET_TCB_LEVELS) {
    const quote = await quoteOn(pki.mintPlatform({ tcbStatus: status }))
    if (status === 'Revoked') {
      await rejects(verifier(collateral).verify(quote), 'tcb_revoked', 'TCB status is invalid: Revoked')
      continue
    }
    const verified = await verifier(collateral).verify(quote)
    assert.equal(verified.status, status)
    assert.equal(verified.advisoryIds.length, status === 'UpToDate' ? 0 : 1, status)
  }
})

test('default: another FMSPC needs its own TCB info', async () => {
  const fmspc: Hex = '0xde7e000000ff'
  const quote = await quoteOn(pki.mintPlatform({ fmspc }))
  await rejects(verifier().verify(quote), 'collateral_mismatch', "TCB info is for FMSPC de7e00000001, the PCK certificate's is de7e000000ff")
  assert.equal((await verifier(pki.collateral({ fmspc })).verify(quote)).fmspc, fmspc)
})

test('default: collateral issued long ago is still valid until nextUpdate, and says when it was issued', async () => {
  const issuedAt = Math.floor(Date.now() / 1000) - 20 * 86_400
  const collateral = pki.collateral({ issuedAt, validFor: 60 * 86_400 })
  assert.equal((await verifier(collateral).verify(await quoteOn())).collateralIssuedAt, issuedAt)
  assert.equal(collateralExpiresAt(collateral), issuedAt + 60 * 86_400)
  for (const [crl, issuer] of [
    [collateral.root_ca_crl, pki.rootCaPem],
    [collateral.pck_crl, collateral.pck_crl_issuer_chain],
  ] as const) {
    const parsed = parseCrl(Buffer.from(crl, 'hex'), 'CRL')
    assert.equal(parsed.thisUpdate, issuedAt)
    checkCrl(parsed, certs(issuer)[0]!, issuedAt + 1)
  }
  await rejects(verifier(pki.collateral({ issuedAt, validFor: 10 * 86_400 })).verify(await quoteOn()), 'collateral_expired')
})

test('error: quotes under the devnet root are refused without it', async () => {
  const quote = await quoteOn()
  await rejects(createDcapVerifier({ collateral: staticSource(pki.collateral()) }).verify(quote), 'untrusted_root', 'PCK certificate chain ends at "Devnet SGX Root CA", not a trusted root CA')
  const other = createDevnetPki()
  await rejects(verifier(other.collateral(), [other.rootCaDer]).verify(quote), 'untrusted_root')
  // Collateral of another devnet, with this devnet's root trusted: its signing chain does not lead here.
  await rejects(verifier(other.collateral()).verify(quote), 'untrusted_root', 'TCB info issuer chain does not lead to a trusted root CA')
})

test('error: a PCK certificate on the devnet PCK CRL', async () => {
  const platform = pki.mintPlatform()
  await rejects(verifier(pki.collateral({ revokedPckSerials: [platform.serial] })).verify(await quoteOn(platform)), 'revoked', /^"Devnet SGX PCK Certificate" \(serial [0-9a-f]+\) is revoked by the PCK CRL$/)
})

test('error: a QE report that binds another attestation key, and one flipped byte of the signed region', async () => {
  const quote = await quoteOn()
  const attestationKeyAt = 632 + 4 + 64
  const flipped = quote.slice()
  flipped[attestationKeyAt + 3]! ^= 1
  await rejects(verifier().verify(flipped), 'bad_signature', 'QE report hash mismatch')
  const v = verifier()
  for (let offset = 0; offset < 632; offset += 7) {
    const bad = quote.slice()
    bad[offset]! ^= 0x80
    await assert.rejects(v.verify(bad), QuoteVerificationError, `byte ${offset}`)
  }
})

test('default: save and load keep the PKI; platforms round-trip through files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-pki-'))
  pki.save(dir)
  assert.equal(statSync(join(dir, 'root.key')).mode & 0o777, 0o600)
  const loaded = loadDevnetPki(dir)
  assert.deepEqual(loaded.rootCaDer, pki.rootCaDer)
  const files = saveDevnetPlatform(loaded.mintPlatform({ tcbStatus: 'OutOfDate' }), join(dir, 'node1'))
  const platform = loadSimulatedPlatform(files)
  const quote = await simulatedQuoteProvider({ platform, measurement }).getQuote(reportData)
  assert.equal((await verifier(loaded.collateral()).verify(quote)).status, 'OutOfDate')
  assert.equal((await verifier(pki.collateral()).verify(quote)).status, 'OutOfDate')
})

test('error: loading a PKI whose key does not match, or missing files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-pki-'))
  pki.save(dir)
  writeFileSync(join(dir, 'pck-ca.key'), readFileSync(join(dir, 'root.key')))
  assert.throws(() => loadDevnetPki(dir), { message: 'devnet PKI: the key does not match "CN=Devnet SGX PCK Platform CA, O=keymanager devnet"' })
  assert.throws(() => loadDevnetPki(join(dir, 'nope')), { message: `devnet PKI ${join(dir, 'nope')}: ENOENT (root.pem, root.key)` })
  assert.throws(() => pki.mintPlatform({ fmspc: '0x1234' as Hex }), { name: 'TypeError', message: 'fmspc must be 0x and 12 hex digits, got 0x1234' })
  assert.throws(() => pki.mintPlatform({ tcbStatus: 'Fine' as never }), { name: 'TypeError', message: /^tcbStatus must be one of UpToDate, / })
})

test('default: the devnet PCCS serves collateral for any FMSPC to pccsCollateral', async () => {
  const pccs = await serveDevnetPccs(pki)
  try {
    const v = createDcapVerifier({ collateral: pccsCollateral({ url: pccs.url, cache: memoryCollateralCache() }), trustedRootCaDer: [pki.rootCaDer] })
    assert.equal((await v.verify(await quoteOn())).fmspc, DEVNET_FMSPC)
    assert.equal((await v.verify(await quoteOn(pki.mintPlatform({ fmspc: '0xde7e00000002', tcbStatus: 'OutOfDate' })))).status, 'OutOfDate')
    assert.equal((await fetch(`${pccs.url}/sgx/certification/v4/pckcrl?ca=processor&encoding=der`)).status, 404)
    assert.equal((await fetch(`${pccs.url}/tdx/certification/v4/tcb?fmspc=zz`)).status, 404)
  } finally {
    await pccs.close()
  }
})
