import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { checkCrl, checkNotRevoked, parseCrl, readDer, type Crl } from './crl.ts'
import { INTEL_SGX_ROOT_CA_DER } from './dcap.ts'
import { QuoteVerificationError } from './types.ts'

const fixture = (path: string) => readFileSync(new URL(`../../test/fixtures/${path}`, import.meta.url))
const tdx = JSON.parse(fixture('dcap/tdx_quote_collateral.json').toString('utf8'))
const sgx = JSON.parse(fixture('dcap/sgx_quote_collateral.json').toString('utf8'))
const pckCrlDer = Buffer.from(tdx.pck_crl, 'hex')
const rootCrlDer = Buffer.from(tdx.root_ca_crl, 'hex')
const pemCerts = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p))
const platformCa = pemCerts(tdx.pck_crl_issuer_chain)[0]!
const processorCa = pemCerts(sgx.pck_crl_issuer_chain)[0]!
const intelRoot = new X509Certificate(INTEL_SGX_ROOT_CA_DER)
const now = 1751328000
const seconds = (iso: string) => Date.parse(iso) / 1000

function rejects(fn: () => unknown, reason: string, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QuoteVerificationError, String(e))
    assert.equal(e.reason, reason)
    if (typeof message === 'string') assert.equal(e.message, message)
    else assert.match(e.message, message)
    return true
  })
}

/** The CRL with one byte of its signature's `r` flipped (the signature is the last element of the DER). */
function flipSignature(der: Buffer): Buffer {
  const out = Buffer.from(der)
  out[out.length - 10]! ^= 0x01
  return out
}

test('default: Intel PCK Platform CA CRL', () => {
  const crl = parseCrl(pckCrlDer, 'PCK CRL')
  assert.equal(crl.thisUpdate, seconds('2025-06-19T10:00:35Z'))
  assert.equal(crl.nextUpdate, seconds('2025-07-19T10:00:35Z'))
  assert.equal(crl.revokedSerials.size, 44)
  assert.ok(crl.revokedSerials.has('6fc34e5023e728923435d61aa4b83c618166ad35'))
  assert.ok(crl.revokedSerials.has('efae6e9715fca13b87e333e8261ed6d990a926ad'))
  checkCrl(crl, platformCa, now)
})

test('default: Intel root CA CRL, signed by the root', () => {
  const crl = parseCrl(rootCrlDer, 'root CA CRL')
  assert.equal(crl.thisUpdate, seconds('2025-03-20T11:21:57Z'))
  assert.equal(crl.nextUpdate, seconds('2026-04-03T11:21:57Z'))
  assert.equal(crl.revokedSerials.size, 0)
  checkCrl(crl, intelRoot, now)
})

test('default: Intel PCK Processor CA CRL (SGX collateral)', () => {
  const crl = parseCrl(Buffer.from(sgx.pck_crl, 'hex'), 'PCK CRL')
  checkCrl(crl, processorCa, now)
})

test('default: the validity window is inclusive at both ends', () => {
  const crl = parseCrl(pckCrlDer, 'PCK CRL')
  checkCrl(crl, platformCa, crl.thisUpdate)
  checkCrl(crl, platformCa, crl.nextUpdate)
})

test('error: a flipped signature byte', () => {
  const crl = parseCrl(flipSignature(pckCrlDer), 'PCK CRL')
  rejects(() => checkCrl(crl, platformCa, now), 'crl_invalid', 'PCK CRL signature is invalid')
  const root = parseCrl(flipSignature(rootCrlDer), 'root CA CRL')
  rejects(() => checkCrl(root, intelRoot, now), 'crl_invalid', 'root CA CRL signature is invalid')
})

test('error: a flipped byte in the signed list (a revoked serial)', () => {
  const der = Buffer.from(pckCrlDer)
  const at = der.indexOf(Buffer.from('6fc34e5023e728923435d61aa4b83c618166ad35', 'hex'))
  assert.ok(at > 0)
  der[at]! ^= 0x01
  const crl = parseCrl(der, 'PCK CRL')
  assert.ok(!crl.revokedSerials.has('6fc34e5023e728923435d61aa4b83c618166ad35'))
  rejects(() => checkCrl(crl, platformCa, now), 'crl_invalid', 'PCK CRL signature is invalid')
})

test('error: a CRL checked against another issuer', () => {
  rejects(() => checkCrl(parseCrl(pckCrlDer, 'PCK CRL'), processorCa, now), 'crl_invalid', 'PCK CRL was not issued by "Intel SGX PCK Processor CA"')
  rejects(() => checkCrl(parseCrl(pckCrlDer, 'PCK CRL'), intelRoot, now), 'crl_invalid', 'PCK CRL was not issued by "Intel SGX Root CA"')
})

test('error: expired and not yet valid', () => {
  const crl = parseCrl(pckCrlDer, 'PCK CRL')
  rejects(() => checkCrl(crl, platformCa, crl.nextUpdate + 1), 'crl_expired', 'PCK CRL expired at 2025-07-19T10:00:35Z')
  rejects(() => checkCrl(crl, platformCa, crl.thisUpdate - 1), 'crl_not_yet_valid', 'PCK CRL is not valid before 2025-06-19T10:00:35Z')
})

test('error: unparsable CRLs', () => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), 'PCK CRL is not a valid CRL: truncated element at byte 0'],
    [pckCrlDer.subarray(0, 100), 'PCK CRL is not a valid CRL: element at byte 0 overruns its container'],
    [Buffer.concat([pckCrlDer, Buffer.of(0)]), 'PCK CRL is not a valid CRL: 1 trailing bytes'],
    [Buffer.from('not a crl'), 'PCK CRL is not a valid CRL: element at byte 0 overruns its container'],
    [Buffer.from('3080', 'hex'), 'PCK CRL is not a valid CRL: indefinite length at byte 0'],
    [Buffer.from('30810100', 'hex'), 'PCK CRL is not a valid CRL: non-minimal length at byte 0'],
    [Buffer.from('0400', 'hex'), 'PCK CRL is not a valid CRL: tag 0x4 at byte 0, expected 0x30'],
    [Buffer.from('3000', 'hex'), 'PCK CRL is not a valid CRL: missing element (tag 0x30)'],
    // A certificate is DER too, but not a CRL.
    [platformCa.raw, /^PCK CRL is not a valid CRL: /],
  ].map(([der, message]) => [der as Uint8Array, message as string])
  for (const [der, message] of cases) rejects(() => parseCrl(der, 'PCK CRL'), 'crl_invalid', message)
  // Every truncation of a real CRL fails cleanly.
  for (let n = 0; n < pckCrlDer.length; n += 13) {
    assert.throws(() => parseCrl(pckCrlDer.subarray(0, n), 'PCK CRL'), QuoteVerificationError)
  }
})

test('error: nextUpdate missing', () => {
  // tbsCertList without nextUpdate: drop the second time from Intel's root CA CRL and fix up the lengths.
  const der = Buffer.from(rootCrlDer)
  const outer = readDer(der)
  const tbs = readDer(der, outer.contentStart)
  const tbsHex = der.subarray(tbs.contentStart, tbs.end).toString('hex')
  const nextUpdate = '170d3236303430333131323135375a' // UTCTime 260403112157Z
  assert.ok(tbsHex.includes(nextUpdate))
  const newTbs = Buffer.from(tbsHex.replace(nextUpdate, ''), 'hex')
  const rest = der.subarray(tbs.end, outer.end)
  const body = Buffer.concat([Buffer.from([0x30, 0x81, newTbs.length]), newTbs, rest])
  const crl = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body])
  rejects(() => parseCrl(crl, 'root CA CRL'), 'crl_invalid', 'root CA CRL is not a valid CRL: no nextUpdate')
})

test('default: revocation is scoped to the CRL issuer', () => {
  const crl: Crl = parseCrl(pckCrlDer, 'PCK CRL')
  const fromPlatform = new X509Certificate(fixture('crl/revoked-serial-from-platform-ca.pem'))
  const fromProcessor = new X509Certificate(fixture('crl/revoked-serial-from-processor-ca.pem'))
  rejects(
    () => checkNotRevoked([crl], [fromPlatform]),
    'revoked',
    '"Intel SGX PCK Certificate" (serial 6fc34e5023e728923435d61aa4b83c618166ad35) is revoked by the PCK CRL',
  )
  // Same serial from another issuer: this CRL says nothing about it.
  checkNotRevoked([crl], [fromProcessor])
  checkNotRevoked([crl], [platformCa, processorCa, intelRoot])
})

test('error: a CRL with a critical extension it does not process', () => {
  // test/fixtures/devnet-pki: the devnet PCK CRL with a critical issuing distribution point (RFC 5280 §5.2.5).
  rejects(
    () => parseCrl(fixture('devnet-pki/pck-ca-critical-idp.crl'), 'PCK CRL'),
    'crl_invalid',
    'PCK CRL is not a valid CRL: critical extension 551d1c is not supported',
  )
  // The same CA's CRL without it parses.
  assert.equal(parseCrl(fixture('devnet-pki/pck-ca.crl'), 'PCK CRL').revokedSerials.size, 1)
})
