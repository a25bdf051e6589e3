// DCAP verification end to end on real Intel-signed quotes (test/fixtures/dcap), at a pinned now.
import assert from 'node:assert/strict'
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { QuoteVerifier as DcapQvlVerifier } from '@phala/dcap-qvl'
import fc from 'fast-check'
import { parseCollateral, type Collateral, type CollateralSource } from '../src/tee/collateral.ts'
import { createDcapVerifier, INTEL_SGX_ROOT_CA_DER } from '../src/tee/dcap.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { QuoteVerificationError, type VerifiedQuote } from '../src/tee/types.ts'

const fixture = (path: string) => readFileSync(new URL(`fixtures/${path}`, import.meta.url))
const tdxQuote = new Uint8Array(fixture('dcap/tdx_quote'))
const sgxQuote = new Uint8Array(fixture('dcap/sgx_quote'))
const tdxCollateral = parseCollateral(JSON.parse(fixture('dcap/tdx_quote_collateral.json').toString('utf8')))
const sgxCollateral = parseCollateral(JSON.parse(fixture('dcap/sgx_quote_collateral.json').toString('utf8')))
const now = 1751328000 // 2025-07-01T00:00:00Z
const seconds = (iso: string) => Date.parse(iso) / 1000

const dcapQvlVerify = (quote: Uint8Array, collateral: Collateral, at: number, root = INTEL_SGX_ROOT_CA_DER) =>
  new DcapQvlVerifier(Buffer.from(root)).verify(Buffer.from(quote), collateral, at)
const staticCollateral = (collateral: Collateral): CollateralSource => ({ get: async () => collateral })
const verifierWith = (collateral: Collateral, trustedRootCaDer?: Uint8Array[]) =>
  createDcapVerifier({ collateral: staticCollateral(collateral), ...(trustedRootCaDer ? { trustedRootCaDer } : {}) })

async function rejects(promise: Promise<unknown>, reason: string, message?: string | RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof QuoteVerificationError, String(e))
    assert.equal(e.reason, reason, e.message)
    if (typeof message === 'string') assert.equal(e.message, message)
    else if (message) assert.match(e.message, message)
    return true
  })
}

const flip = (quote: Uint8Array, at: number, mask = 0x01) => {
  const out = quote.slice()
  out[at]! ^= mask
  return out
}

/** Byte offsets inside a quote's auth data (Intel DCAP quote formats; v4 nests the QE report in type-6 data). */
function layout(quote: Uint8Array) {
  const { signedLength } = measurementOf(quote)
  const view = new DataView(quote.buffer, quote.byteOffset)
  const signature = signedLength + 4
  const attestationKey = signature + 64
  const qeReport = attestationKey + 64 + (quote[0] === 4 ? 6 : 0)
  const qeReportSignature = qeReport + 384
  const qeAuthDataSize = view.getUint16(qeReportSignature + 64, true)
  const qeAuthData = qeReportSignature + 64 + 2
  const pem = Buffer.from(quote).indexOf('-----BEGIN CERTIFICATE-----')
  // A base64 letter in the middle of the PCK leaf whose flipped low bit is another base64 letter.
  let leafLetter = pem + 600
  while (!/[A-Za-z]/.test(String.fromCharCode(quote[leafLetter]!)) || !/[A-Za-z]/.test(String.fromCharCode(quote[leafLetter]! ^ 1))) leafLetter++
  return { signedLength, signature, attestationKey, qeReport, qeReportSignature, qeAuthData, qeAuthDataSize, pem, leafLetter }
}

test('default: TDX v4 quote → UpToDate', async () => {
  const verified = await verifierWith(tdxCollateral).verify(tdxQuote, { now })
  const m = measurementOf(tdxQuote)
  assert.deepEqual(verified, {
    teeType: 'tdx',
    status: 'UpToDate',
    advisoryIds: [],
    fmspc: '0xb0c06f000000',
    measurements: m.measurements,
    measurementId: m.measurementId,
    measurementRaw: m.measurementRaw,
    reportData: m.reportData,
    collateralIssuedAt: seconds('2025-06-19T10:00:35Z'),
    tcbEvaluationDataNumber: 17,
    // The exact collateral it was checked against, for a helper to keep with its decision.
    collateral: tdxCollateral,
  } satisfies VerifiedQuote)
  assert.ok(verified.measurements.mrTd!.startsWith('0x91eb2b44d141d4ec'))
  assert.equal(verified.measurements.rtMr3, `0x${'00'.repeat(48)}`)
  assert.equal(verified.measurementId, '0x8ee35132f2012859433fa8ab8a6b4515e0d1daaaa547214345f46bc18e0a8437')
  assert.equal(verified.reportData.length, 64)
})

test('default: SGX v3 quote → ConfigurationAndSWHardeningNeeded with its advisories', async () => {
  const verified = await verifierWith(sgxCollateral).verify(sgxQuote, { now })
  assert.equal(verified.teeType, 'sgx')
  assert.equal(verified.status, 'ConfigurationAndSWHardeningNeeded')
  assert.deepEqual(verified.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615'])
  assert.equal(verified.fmspc, '0x00a067110000')
  const reportData = new Uint8Array(64)
  reportData.set(new TextEncoder().encode('Hello, world!'))
  assert.deepEqual(verified.reportData, reportData)
  assert.ok(verified.measurements.mrEnclave!.startsWith('0x33d8736db756ed49'))
  assert.ok(verified.measurements.mrSigner!.startsWith('0x815f42f11cf64430'))
  assert.equal(verified.measurementId, measurementOf(sgxQuote).measurementId)
  assert.equal(verified.collateralIssuedAt, seconds('2025-06-19T10:01:18Z'))
})

test('default: the collateral source is asked for the quote\'s TEE type, FMSPC and PCK CA', async () => {
  const requests: unknown[] = []
  const source: CollateralSource = {
    get: async ({ teeType, fmspc, ca, now }) => {
      requests.push({ teeType, fmspc, ca, now })
      return teeType === 'tdx' ? tdxCollateral : sgxCollateral
    },
  }
  const verifier = createDcapVerifier({ collateral: source })
  await verifier.verify(tdxQuote, { now })
  await verifier.verify(sgxQuote, { now })
  assert.deepEqual(requests, [
    { teeType: 'tdx', fmspc: '0xb0c06f000000', ca: 'platform', now },
    { teeType: 'sgx', fmspc: '0x00a067110000', ca: 'processor', now },
  ])
})

test('default: a PCK chain in the collateral is ignored; the quote\'s own is verified', async () => {
  // dcap-qvl prefers `pck_certificate_chain` from the collateral over the quote's; collateral is untrusted and
  // shared per FMSPC, so parseCollateral drops it.
  const sgxChain = Buffer.from(sgxQuote).toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*-----END CERTIFICATE-----/)![0]
  const withChain = { ...tdxCollateral, pck_certificate_chain: sgxChain } as Collateral
  assert.throws(() => dcapQvlVerify(tdxQuote, withChain, now), { message: 'Signature is invalid for qe_report in quote' })
  assert.equal((await verifierWith(withChain).verify(tdxQuote, { now })).status, 'UpToDate')
})

test('default: without `now`, the current time is used', async () => {
  // The fixtures' collateral expired in July 2025.
  await rejects(verifierWith(tdxCollateral).verify(tdxQuote), 'collateral_expired', 'TCB info expired at 2025-07-19T10:16:03Z')
  await assert.rejects(verifierWith(tdxCollateral).verify(tdxQuote, { now: 1.5 }), { name: 'TypeError', message: 'now must be unix seconds' })
})

test('default: several trusted roots; the chain picks its own', async () => {
  const other = new X509Certificate(fixture('pki/other-root-ca.pem')).raw
  const verified = await verifierWith(tdxCollateral, [other, INTEL_SGX_ROOT_CA_DER]).verify(tdxQuote, { now })
  assert.equal(verified.status, 'UpToDate')
})

for (const [name, quote, collateral] of [
  ['TDX', tdxQuote, tdxCollateral],
  ['SGX', sgxQuote, sgxCollateral],
] as const) {
  test(`error: ${name}: one flipped byte in the header, body, report data, signature, QE report or certification data`, async () => {
    const verifier = verifierWith(collateral)
    // The untouched quote first: its chain is then parsed and its signatures verified in the caches (src/tee/dcap.ts),
    // which must vouch for no other bytes.
    assert.equal((await verifier.verify(quote, { now })).teeType, name.toLowerCase())
    const at = layout(quote)
    const reportDataAt = name === 'TDX' ? 568 : 368
    const cases: [string, number, string, string?][] = [
      ['header: QE SVN', 8, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['header: user data', 30, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['header: version', 0, 'unsupported_quote'],
      ['header: attestation key type', 2, 'unsupported_quote', 'attestation key type 3, expected 2 (ECDSA P-256)'],
      ['header: TEE type', 4, 'unsupported_quote'],
      ['body: first byte', 48, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['body: MRTD / MRENCLAVE', name === 'TDX' ? 200 : 120, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['report data: first byte', reportDataAt, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['report data: last byte', reportDataAt + 63, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['signature', at.signature + 5, 'bad_signature', 'ISV enclave report signature is invalid'],
      ['attestation key', at.attestationKey + 5, 'bad_signature', 'QE report hash mismatch'],
      ['QE report', at.qeReport + 100, 'bad_signature', 'Signature is invalid for qe_report in quote'],
      ['QE report data', at.qeReport + 330, 'bad_signature', 'Signature is invalid for qe_report in quote'],
      ['QE report signature', at.qeReportSignature + 5, 'bad_signature', 'Signature is invalid for qe_report in quote'],
      ['PCK leaf certificate', at.leafLetter, 'bad_certificate_chain'],
    ]
    if (at.qeAuthDataSize > 0) cases.push(['QE auth data', at.qeAuthData, 'bad_signature', 'QE report hash mismatch'])
    for (const [what, offset, reason, message] of cases) {
      await assert.rejects(verifier.verify(flip(quote, offset), { now }), (e: unknown) => {
        assert.ok(e instanceof QuoteVerificationError, `${what}: ${String(e)}`)
        assert.equal(e.reason, reason, `${what} (byte ${offset}): ${e.message}`)
        if (message) assert.equal(e.message, message, what)
        return true
      })
    }
  })

  test(`error: ${name}: every single-byte change of the signed region fails`, async () => {
    const verifier = verifierWith(collateral)
    const { signedLength } = measurementOf(quote)
    for (let offset = 0; offset < signedLength; offset++) {
      await assert.rejects(verifier.verify(flip(quote, offset, 0x80), { now }), QuoteVerificationError, `byte ${offset}`)
    }
  })
}

test('error: a non-zero byte in the TDX quote\'s zero padding', async () => {
  await rejects(verifierWith(tdxCollateral).verify(flip(tdxQuote, 4950), { now }), 'malformed_quote', 'quote has non-zero bytes after its 4936 bytes of header, body and auth data')
})

test('error: mismatched collateral', async () => {
  await rejects(verifierWith(sgxCollateral).verify(tdxQuote, { now }), 'collateral_mismatch', 'TDX quote with TCB info "SGX", expected "TDX"')
  await rejects(verifierWith(tdxCollateral).verify(sgxQuote, { now }), 'collateral_mismatch', 'SGX quote with TCB info "TDX", expected "SGX"')
  const qeSwapped = { ...tdxCollateral, qe_identity: sgxCollateral.qe_identity }
  await rejects(verifierWith(qeSwapped).verify(tdxQuote, { now }), 'collateral_mismatch', 'TDX quote with QE identity "QE", expected "TD_QE"')
  const otherFmspc = { ...tdxCollateral, tcb_info: tdxCollateral.tcb_info.replace('"fmspc":"B0C06F000000"', '"fmspc":"B0C06F000001"') }
  await rejects(verifierWith(otherFmspc).verify(tdxQuote, { now }), 'collateral_mismatch', "TCB info is for FMSPC b0c06f000001, the PCK certificate's is b0c06f000000")
})

test('error: tampered TCB info or QE identity', async () => {
  const tcbInfo = { ...sgxCollateral, tcb_info: sgxCollateral.tcb_info.replace('"tcbStatus":"ConfigurationAndSWHardeningNeeded"', '"tcbStatus":"UpToDate"') }
  assert.notEqual(tcbInfo.tcb_info, sgxCollateral.tcb_info)
  await rejects(verifierWith(tcbInfo).verify(sgxQuote, { now }), 'bad_collateral_signature', 'Signature is invalid for tcb_info')
  const qeIdentity = { ...tdxCollateral, qe_identity: tdxCollateral.qe_identity.replace('"isvsvn":4', '"isvsvn":3') }
  assert.notEqual(qeIdentity.qe_identity, tdxCollateral.qe_identity)
  await rejects(verifierWith(qeIdentity).verify(tdxQuote, { now }), 'bad_collateral_signature', 'Signature is invalid for qe_identity')
  const signature = { ...tdxCollateral, tcb_info_signature: `${tdxCollateral.tcb_info_signature.slice(0, -2)}00` }
  await rejects(verifierWith(signature).verify(tdxQuote, { now }), 'bad_collateral_signature', 'Signature is invalid for tcb_info')
})

test('error: now outside the collateral validity window', async () => {
  await rejects(verifierWith(tdxCollateral).verify(tdxQuote, { now: seconds('2025-08-01T00:00:00Z') }), 'collateral_expired', 'TCB info expired at 2025-07-19T10:16:03Z')
  await rejects(verifierWith(sgxCollateral).verify(sgxQuote, { now: seconds('2025-07-19T10:30:00Z') }), 'collateral_expired', 'QE identity expired at 2025-07-19T10:01:18Z')
  await rejects(verifierWith(tdxCollateral).verify(tdxQuote, { now: seconds('2025-06-01T00:00:00Z') }), 'collateral_not_yet_valid', 'TCB info is not valid before 2025-06-19T10:16:03Z')
})

/** The DER with one byte of its trailing ECDSA signature flipped. */
const flipCrlSignature = (hex: string) => {
  const der = Buffer.from(hex, 'hex')
  der[der.length - 10]! ^= 0x01
  return der.toString('hex')
}

test('error: a CRL with one flipped signature byte', async () => {
  await rejects(verifierWith({ ...tdxCollateral, pck_crl: flipCrlSignature(tdxCollateral.pck_crl) }).verify(tdxQuote, { now }), 'crl_invalid', 'PCK CRL signature is invalid')
  await rejects(verifierWith({ ...tdxCollateral, root_ca_crl: flipCrlSignature(tdxCollateral.root_ca_crl) }).verify(tdxQuote, { now }), 'crl_invalid', 'root CA CRL signature is invalid')
  await rejects(verifierWith({ ...sgxCollateral, pck_crl: flipCrlSignature(sgxCollateral.pck_crl) }).verify(sgxQuote, { now }), 'crl_invalid', 'PCK CRL signature is invalid')
})

test('error: an expired CRL (now past its nextUpdate, the rest of the collateral still valid)', async () => {
  // The PCK CRL's nextUpdate (10:00:35) comes before the TCB info's (10:16:03) and the QE identity's (10:32:27).
  await rejects(verifierWith(tdxCollateral).verify(tdxQuote, { now: seconds('2025-07-19T10:05:00Z') }), 'crl_expired', 'PCK CRL expired at 2025-07-19T10:00:35Z')
})

test('error: unparsable or misplaced CRLs', async () => {
  await rejects(verifierWith({ ...tdxCollateral, pck_crl: 'deadbeef' }).verify(tdxQuote, { now }), 'crl_invalid', /^PCK CRL is not a valid CRL: /)
  await rejects(verifierWith({ ...tdxCollateral, root_ca_crl: '' }).verify(tdxQuote, { now }), 'crl_invalid', 'root CA CRL is not a valid CRL: truncated element at byte 0')
  const truncated = tdxCollateral.pck_crl.slice(0, -20)
  await rejects(verifierWith({ ...tdxCollateral, pck_crl: truncated }).verify(tdxQuote, { now }), 'crl_invalid', /^PCK CRL is not a valid CRL: /)
  await rejects(
    verifierWith({ ...tdxCollateral, root_ca_crl: tdxCollateral.pck_crl }).verify(tdxQuote, { now }),
    'crl_invalid',
    'root CA CRL was not issued by "Intel SGX Root CA"',
  )
  // The SGX collateral's PCK CRL comes from the Processor CA; the TDX quote's PCK certificate from the Platform CA.
  await rejects(
    verifierWith({ ...tdxCollateral, pck_crl: sgxCollateral.pck_crl }).verify(tdxQuote, { now }),
    'crl_invalid',
    'PCK CRL was not issued by "Intel SGX PCK Platform CA"',
  )
})

test('error: an untrusted root (same name as Intel\'s, another key)', async () => {
  const other = new X509Certificate(fixture('pki/other-root-ca.pem')).raw
  await rejects(verifierWith(tdxCollateral, [other]).verify(tdxQuote, { now }), 'untrusted_root', 'PCK certificate chain ends at "Intel SGX Root CA", not a trusted root CA')
})

test('error: a CA certificate as the leaf of a collateral chain', async () => {
  const swapped = { ...tdxCollateral, tcb_info_issuer_chain: tdxCollateral.pck_crl_issuer_chain }
  await rejects(verifierWith(swapped).verify(tdxQuote, { now }), 'bad_certificate_chain', 'TCB info issuer chain: the leaf "Intel SGX PCK Platform CA" is a CA certificate')
})

test('error: collateral that cannot be had or read', async () => {
  const failing = createDcapVerifier({ collateral: { get: async () => Promise.reject(new Error('connection refused')) } })
  await rejects(failing.verify(tdxQuote, { now }), 'collateral_unavailable', 'no collateral for FMSPC b0c06f000000: connection refused')
  const missing = { ...tdxCollateral } as Partial<Collateral>
  delete missing.qe_identity
  await rejects(verifierWith(missing as Collateral).verify(tdxQuote, { now }), 'collateral_invalid', /^collateral field qe_identity: /)
  await rejects(verifierWith({ ...tdxCollateral, tcb_info: '[1,2]' }).verify(tdxQuote, { now }), 'collateral_invalid', 'tcb_info is not a JSON object')
  const badDate = { ...tdxCollateral, tcb_info: tdxCollateral.tcb_info.replace('"issueDate":"2025-06-19T10:16:03Z"', '"issueDate":"yesterday"') }
  await rejects(verifierWith(badDate).verify(tdxQuote, { now }), 'collateral_invalid', 'TCB info issueDate is not a UTC date: "yesterday"')
})

test('error: malformed quotes never crash', async () => {
  const verifier = verifierWith(tdxCollateral)
  await rejects(verifier.verify(tdxQuote.subarray(0, 700), { now }), 'malformed_quote')
  await rejects(verifier.verify(new Uint8Array(0), { now }), 'malformed_quote')
  for (let n = 632; n < 4936; n += 97) {
    await assert.rejects(verifier.verify(tdxQuote.subarray(0, n), { now }), QuoteVerificationError, `length ${n}`)
  }
  // A QE auth data size pointing past the certification data.
  const at = layout(tdxQuote)
  const bad = tdxQuote.slice()
  new DataView(bad.buffer).setUint16(at.qeReportSignature + 64, 0xffff, true)
  await rejects(verifier.verify(bad, { now }), 'malformed_quote', /^quote auth data: /)
})

test('error: invalid verifier options', () => {
  const collateral = staticCollateral(tdxCollateral)
  assert.throws(() => createDcapVerifier({ collateral, trustedRootCaDer: [] }), { name: 'TypeError', message: 'trustedRootCaDer must name at least one root CA' })
  assert.throws(() => createDcapVerifier({ collateral, trustedRootCaDer: [new Uint8Array(10)] }), {
    name: 'TypeError',
    message: 'trustedRootCaDer[0] is not a DER certificate',
  })
  const notCa = new X509Certificate(fixture('pki/not-a-ca.pem')).raw
  assert.throws(() => createDcapVerifier({ collateral, trustedRootCaDer: [INTEL_SGX_ROOT_CA_DER, notCa] }), {
    name: 'TypeError',
    message: 'trustedRootCaDer[1] is not a self-signed CA certificate',
  })
  assert.throws(() => createDcapVerifier({} as never), { name: 'TypeError', message: 'collateral must be a CollateralSource' })
})

// What @phala/dcap-qvl 0.3.9 alone accepts, and this verifier must not (docs/protocol.md#tee-providers).
test('default: the gaps in dcap-qvl alone that this verifier closes (Intel fixtures)', async () => {
  const flipped = { ...tdxCollateral, pck_crl: flipCrlSignature(tdxCollateral.pck_crl) }
  assert.equal(dcapQvlVerify(tdxQuote, flipped, now).status, 'UpToDate')
  assert.equal(dcapQvlVerify(tdxQuote, { ...tdxCollateral, pck_crl: 'deadbeef' }, now).status, 'UpToDate')
  assert.equal(dcapQvlVerify(tdxQuote, { ...tdxCollateral, pck_crl: sgxCollateral.pck_crl }, now).status, 'UpToDate')
  assert.equal(dcapQvlVerify(tdxQuote, tdxCollateral, seconds('2025-07-19T10:05:00Z')).status, 'UpToDate') // PCK CRL expired
})

// A devnet PKI in Intel's shape (test/fixtures/devnet-pki, made by its make.sh): quotes and collateral minted here,
// verified through the same code path with the devnet root trusted explicitly.
const devnetFile = (name: string) => fixture(`devnet-pki/${name}`)
const devnetRoot = new X509Certificate(devnetFile('root.pem')).raw
const devnetNow = now
const QE_MRSIGNER = 'aa'.repeat(32)
const p1363 = (data: Uint8Array, keyFile: string) => sign('sha256', data, { key: createPrivateKey(devnetFile(keyFile)), dsaEncoding: 'ieee-p1363' })
const u16 = (n: number) => Buffer.from([n & 0xff, n >> 8])
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

type DevnetQuoteOptions = {
  pck?: 'pck' | 'pck-revoked' | 'pck-under-non-ca'
  reportData?: Uint8Array
  /** A non-zero byte in the QE report data's second half. */
  qeReportDataTail?: number
  tdAttributes?: number[]
  /** 16 bytes at header offset 12 (Intel's QE vendor id in the fixture). */
  qeVendorId?: string
}

/** A TDX v4 quote: the fixture's TD report (TEE_TCB_SVN 06 01 03…), signed by a fresh attestation key under a devnet PCK. */
function devnetQuote(options: DevnetQuoteOptions = {}): Uint8Array {
  const pck = options.pck ?? 'pck'
  const signed = Buffer.from(tdxQuote.subarray(0, 632))
  if (options.reportData) signed.set(options.reportData, 568)
  if (options.tdAttributes) signed.set(options.tdAttributes, 48 + 120)
  if (options.qeVendorId) signed.write(options.qeVendorId, 12, 'hex')
  const attestation = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = attestation.publicKey.export({ format: 'jwk' })
  const attestationKey = Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])
  const signature = sign('sha256', signed, { key: attestation.privateKey, dsaEncoding: 'ieee-p1363' })

  const qeAuthData = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
  const qeReport = Buffer.alloc(384)
  qeReport[48] = 0x11 // ATTRIBUTES: INIT | MODE64BIT, not DEBUG
  qeReport.write(QE_MRSIGNER, 128, 'hex')
  qeReport.writeUInt16LE(2, 256) // ISVPRODID
  qeReport.writeUInt16LE(4, 258) // ISVSVN
  createHash('sha256').update(attestationKey).update(qeAuthData).digest().copy(qeReport, 320)
  if (options.qeReportDataTail !== undefined) qeReport[383] = options.qeReportDataTail
  const issuer = pck === 'pck-under-non-ca' ? 'tcb-signing.pem' : 'pck-ca.pem'
  const pem = Buffer.concat([devnetFile(`${pck}.pem`), devnetFile(issuer), devnetFile('root.pem')])
  const inner = Buffer.concat([qeReport, p1363(qeReport, `${pck}.key`), u16(qeAuthData.length), qeAuthData, u16(5), u32(pem.length), pem])
  const auth = Buffer.concat([signature, attestationKey, u16(6), u32(inner.length), inner])
  return new Uint8Array(Buffer.concat([signed, u32(auth.length), auth]))
}

type DevnetCollateralOptions = {
  platformStatus?: string
  moduleId?: string
  moduleMrSigner?: string
  moduleLevels?: { tcb: { isvsvn: number }; tcbDate: string; tcbStatus: string; advisoryIDs?: string[] }[]
  tcbInfoEvaluationNumber?: unknown
  qeIdentityEvaluationNumber?: unknown
  /** Replace the platform TCB levels (the reference tests vary them). */
  platformLevels?: unknown[]
  /** Replace fields of the QE identity (the reference tests vary them). */
  qeIdentity?: Record<string, unknown>
}

function devnetCollateral(options: DevnetCollateralOptions = {}): Collateral {
  const dates = { issueDate: '2025-06-20T00:00:00Z', nextUpdate: '2025-07-20T00:00:00Z' }
  const tcbDate = '2025-01-01T00:00:00Z'
  const module = { mrsigner: '00'.repeat(48), attributes: '00'.repeat(8), attributesMask: 'FF'.repeat(8) }
  const svns = (values: number[]) => Array.from({ length: 16 }, (_, i) => ({ svn: values[i] ?? 0 }))
  const tcbInfo = JSON.stringify({
    id: 'TDX',
    version: 3,
    ...dates,
    fmspc: 'DE7E00000001',
    pceId: '0000',
    tcbType: 0,
    tcbEvaluationDataNumber: options.tcbInfoEvaluationNumber ?? 17,
    tdxModule: module,
    tdxModuleIdentities: [
      {
        id: options.moduleId ?? 'TDX_01',
        ...module,
        mrsigner: options.moduleMrSigner ?? module.mrsigner,
        tcbLevels: options.moduleLevels ?? [{ tcb: { isvsvn: 6 }, tcbDate, tcbStatus: 'UpToDate' }],
      },
    ],
    tcbLevels: options.platformLevels ?? [
      {
        tcb: { sgxtcbcomponents: svns(Array(16).fill(3)), pcesvn: 13, tdxtcbcomponents: svns([6, 1, 3]) },
        tcbDate,
        tcbStatus: options.platformStatus ?? 'UpToDate',
        ...(options.platformStatus && options.platformStatus !== 'UpToDate' ? { advisoryIDs: ['DEVNET-SA-0002'] } : {}),
      },
    ],
  })
  const qeIdentity = JSON.stringify({
    id: 'TD_QE',
    version: 2,
    ...dates,
    tcbEvaluationDataNumber: options.qeIdentityEvaluationNumber ?? 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: `11${'00'.repeat(15)}`,
    attributesMask: `FBFFFFFFFFFFFFFF${'00'.repeat(8)}`,
    mrsigner: QE_MRSIGNER.toUpperCase(),
    isvprodid: 2,
    tcbLevels: [{ tcb: { isvsvn: 4 }, tcbDate, tcbStatus: 'UpToDate' }],
    ...options.qeIdentity,
  })
  const signingChain = `${devnetFile('tcb-signing.pem')}${devnetFile('root.pem')}`
  return {
    pck_crl_issuer_chain: `${devnetFile('pck-ca.pem')}${devnetFile('root.pem')}`,
    root_ca_crl: devnetFile('root.crl').toString('hex'),
    pck_crl: devnetFile('pck-ca.crl').toString('hex'),
    tcb_info_issuer_chain: signingChain,
    tcb_info: tcbInfo,
    tcb_info_signature: p1363(Buffer.from(tcbInfo), 'tcb-signing.key').toString('hex'),
    qe_identity_issuer_chain: signingChain,
    qe_identity: qeIdentity,
    qe_identity_signature: p1363(Buffer.from(qeIdentity), 'tcb-signing.key').toString('hex'),
  }
}

const devnetVerifier = (collateral = devnetCollateral()) => verifierWith(collateral, [devnetRoot])

test('default: a devnet quote verifies with the devnet root trusted explicitly', async () => {
  const reportData = new Uint8Array(64).fill(7)
  const quote = devnetQuote({ reportData })
  const verified = await devnetVerifier().verify(quote, { now: devnetNow })
  assert.equal(verified.teeType, 'tdx')
  assert.equal(verified.status, 'UpToDate')
  assert.equal(verified.fmspc, '0xde7e00000001')
  assert.deepEqual(verified.reportData, reportData)
  assert.equal(verified.measurementId, measurementOf(tdxQuote).measurementId)
  assert.equal(verified.collateralIssuedAt, seconds('2025-06-01T00:00:00Z')) // the devnet PCK CRL's thisUpdate
  // Trusting Intel and the devnet root together also works; the chain picks its root.
  assert.equal((await verifierWith(devnetCollateral(), [INTEL_SGX_ROOT_CA_DER, devnetRoot]).verify(quote, { now: devnetNow })).status, 'UpToDate')
})

test('error: a devnet quote under the default (Intel-only) trust', async () => {
  const verifier = createDcapVerifier({ collateral: staticCollateral(devnetCollateral()) })
  await rejects(verifier.verify(devnetQuote(), { now: devnetNow }), 'untrusted_root', 'PCK certificate chain ends at "Devnet SGX Root CA", not a trusted root CA')
  // Intel quote, devnet trust only.
  await rejects(devnetVerifier(tdxCollateral).verify(tdxQuote, { now }), 'untrusted_root', 'PCK certificate chain ends at "Intel SGX Root CA", not a trusted root CA')
})

test('error: a revoked PCK certificate', async () => {
  await rejects(
    devnetVerifier().verify(devnetQuote({ pck: 'pck-revoked' }), { now: devnetNow }),
    'revoked',
    `"Devnet SGX PCK Certificate" (serial ${new X509Certificate(devnetFile('pck-revoked.pem')).serialNumber.toLowerCase().replace(/^(00)+/, '')}) is revoked by the PCK CRL`,
  )
})

test('error: a PCK certificate issued by a non-CA certificate (dcap-qvl alone accepts it)', async () => {
  const quote = devnetQuote({ pck: 'pck-under-non-ca' })
  assert.equal(dcapQvlVerify(quote, devnetCollateral(), devnetNow, devnetRoot).status, 'UpToDate')
  await rejects(
    devnetVerifier().verify(quote, { now: devnetNow }),
    'bad_certificate_chain',
    'PCK certificate chain: "Devnet SGX TCB Signing" issues certificates but is not a CA',
  )
})

test('default: an out-of-date TDX module makes the status OutOfDate (dcap-qvl alone says UpToDate)', async () => {
  const collateral = devnetCollateral({
    moduleLevels: [
      { tcb: { isvsvn: 7 }, tcbDate: '2025-05-01T00:00:00Z', tcbStatus: 'UpToDate' },
      { tcb: { isvsvn: 2 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['DEVNET-SA-0001'] },
    ],
  })
  const quote = devnetQuote()
  assert.equal(dcapQvlVerify(quote, collateral, devnetNow, devnetRoot).status, 'UpToDate')
  const verified = await devnetVerifier(collateral).verify(quote, { now: devnetNow })
  assert.equal(verified.status, 'OutOfDate')
  assert.deepEqual(verified.advisoryIds, ['DEVNET-SA-0001'])
  const configuration = devnetCollateral({ platformStatus: 'ConfigurationNeeded', moduleLevels: collateral.tcb_info && JSON.parse(collateral.tcb_info).tdxModuleIdentities[0].tcbLevels })
  const converged = await devnetVerifier(configuration).verify(quote, { now: devnetNow })
  assert.equal(converged.status, 'OutOfDateConfigurationNeeded')
  assert.deepEqual(converged.advisoryIds, ['DEVNET-SA-0002', 'DEVNET-SA-0001'])
})

test('error: TDX module identity mismatches and unsupported module SVNs', async () => {
  const quote = devnetQuote()
  await rejects(devnetVerifier(devnetCollateral({ moduleId: 'TDX_03' })).verify(quote, { now: devnetNow }), 'tdx_module_mismatch', 'TCB info has no TDX module identity TDX_01')
  await rejects(
    devnetVerifier(devnetCollateral({ moduleMrSigner: '11'.repeat(48) })).verify(quote, { now: devnetNow }),
    'tdx_module_mismatch',
    'MRSIGNERSEAM differs from the TCB info TDX module mrsigner',
  )
  await rejects(
    devnetVerifier(devnetCollateral({ moduleLevels: [{ tcb: { isvsvn: 9 }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: 'UpToDate' }] })).verify(quote, { now: devnetNow }),
    'tcb_not_supported',
    'TDX module SVN 6 is below every TCB level of TDX_01',
  )
  await rejects(
    devnetVerifier(devnetCollateral({ moduleLevels: [{ tcb: { isvsvn: 0 }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: 'Revoked' }] })).verify(quote, { now: devnetNow }),
    'tcb_revoked',
    'TCB status is Revoked (TDX module)',
  )
})

test('error: a revoked platform TCB level', async () => {
  await rejects(devnetVerifier(devnetCollateral({ platformStatus: 'Revoked' })).verify(devnetQuote(), { now: devnetNow }), 'tcb_revoked', 'TCB status is invalid: Revoked')
})

test('error: a debug TD', async () => {
  await rejects(devnetVerifier().verify(devnetQuote({ tdAttributes: [1, 0, 0, 0x10, 0, 0, 0, 0] }), { now: devnetNow }), 'debug_enabled', 'Debug mode is enabled')
})

test('error: non-zero bytes in the second half of the QE report data', async () => {
  await rejects(devnetVerifier().verify(devnetQuote({ qeReportDataTail: 1 }), { now: devnetNow }), 'bad_signature', 'QE report data: bytes 32..64 must be zero')
})

test('security: a quote from a QE that is not Intel\'s is refused, before any collateral is fetched (dcap-qvl alone accepts it)', async () => {
  const quote = devnetQuote({ qeVendorId: '00'.repeat(16) })
  assert.equal(dcapQvlVerify(quote, devnetCollateral(), devnetNow, devnetRoot).status, 'UpToDate')
  let fetched = 0
  const verifier = createDcapVerifier({ collateral: { get: async () => (fetched++, devnetCollateral()) }, trustedRootCaDer: [devnetRoot] })
  await rejects(verifier.verify(quote, { now: devnetNow }), 'qe_vendor_mismatch', `QE vendor id ${'00'.repeat(16)} is not Intel's (939a7233f79c4ca9940a0db3957f0607)`)
  assert.equal(fetched, 0)
  assert.equal((await verifier.verify(devnetQuote(), { now: devnetNow })).status, 'UpToDate')
  assert.equal(fetched, 1)
})

test('security: a PCK chain that does not lead to a trusted root fetches no collateral', async () => {
  // A host can make quotes with any FMSPC under its own root; none of them may reach the collateral source.
  const asked: unknown[] = []
  const verifier = createDcapVerifier({ collateral: { get: async (request) => (asked.push(request.fmspc), devnetCollateral()) } })
  await rejects(verifier.verify(devnetQuote(), { now: devnetNow }), 'untrusted_root')
  const expired = createDcapVerifier({ collateral: { get: async (request) => (asked.push(request.fmspc), devnetCollateral()) }, trustedRootCaDer: [devnetRoot] })
  await rejects(expired.verify(devnetQuote(), { now: seconds('2100-01-01T00:00:00Z') }), 'certificate_expired', /^PCK certificate chain: /)
  await rejects(expired.verify(devnetQuote({ pck: 'pck-under-non-ca' }), { now: devnetNow }), 'bad_certificate_chain')
  assert.deepEqual(asked, [])
})

test('default: the TCB evaluation data number is the lower of the TCB info\'s and the QE identity\'s', async () => {
  const verify = (options: DevnetCollateralOptions) => devnetVerifier(devnetCollateral(options)).verify(devnetQuote(), { now: devnetNow })
  assert.equal((await verify({})).tcbEvaluationDataNumber, 17)
  assert.equal((await verify({ tcbInfoEvaluationNumber: 18, qeIdentityEvaluationNumber: 16 })).tcbEvaluationDataNumber, 16)
  assert.equal((await verify({ tcbInfoEvaluationNumber: 15, qeIdentityEvaluationNumber: 19 })).tcbEvaluationDataNumber, 15)
  assert.equal((await verifierWith(sgxCollateral).verify(sgxQuote, { now })).tcbEvaluationDataNumber, 17)
})

test('error: a TCB evaluation data number that is not a uint32', async () => {
  for (const bad of ['17', -1, 1.5, 2 ** 32, true]) {
    const verifier = devnetVerifier(devnetCollateral({ tcbInfoEvaluationNumber: bad }))
    await rejects(verifier.verify(devnetQuote(), { now: devnetNow }), 'collateral_invalid', 'TCB info tcbEvaluationDataNumber is not a uint32')
  }
  const qe = devnetVerifier(devnetCollateral({ qeIdentityEvaluationNumber: 'x' }))
  await rejects(qe.verify(devnetQuote(), { now: devnetNow }), 'collateral_invalid', 'QE identity tcbEvaluationDataNumber is not a uint32')
})

// The reference: src/tee/dcapQuote.ts does the quote's own DCAP steps that @phala/dcap-qvl 0.3.9's `verify` did before
// (dcapQuote.ts says why). Its verdicts must be dcap-qvl's: never accept what dcap-qvl refuses, the same status and
// advisories when both accept, and refuse what dcap-qvl accepts only for a check dcap-qvl leaves out (above).
const CHECKS_DCAP_QVL_LEAVES_OUT = new Set(['qe_vendor_mismatch', 'revoked', 'crl_invalid', 'crl_expired', 'crl_not_yet_valid', 'tdx_module_mismatch'])
const leftOutByDcapQvl = (reason: string, message: string) =>
  CHECKS_DCAP_QVL_LEAVES_OUT.has(reason) ||
  (reason === 'malformed_quote' && /non-zero bytes after its \d+ bytes/.test(message)) || // the zero padding after a quote
  (reason === 'malformed_quote' && /^certification data type \d+, expected 6/.test(message)) || // v4's outer certification data type
  (reason === 'bad_certificate_chain' && /cannot be parsed$/.test(message)) // a PEM block with a character that is not base64

type Verdict = { accepted: true; status: string; advisoryIds: string[] } | { accepted: false; why: string; reason?: string }

async function verdicts(quote: Uint8Array, collateral: Collateral, at: number, root: Uint8Array): Promise<{ ours: Verdict; reference: Verdict }> {
  let reference: Verdict
  try {
    const r = dcapQvlVerify(quote, collateral, at, root)
    reference = { accepted: true, status: r.status, advisoryIds: [...r.advisory_ids] }
  } catch (error) {
    reference = { accepted: false, why: (error as Error).message }
  }
  let ours: Verdict
  try {
    const v = await verifierWith(collateral, [root]).verify(quote, { now: at })
    ours = { accepted: true, status: v.status, advisoryIds: v.advisoryIds }
  } catch (error) {
    if (!(error instanceof QuoteVerificationError)) throw error // a crash, not a verdict
    ours = { accepted: false, why: error.message, reason: error.reason }
  }
  return { ours, reference }
}

function assertSameVerdict({ ours, reference }: { ours: Verdict; reference: Verdict }, what: string, { strictly = false } = {}) {
  if (!reference.accepted) return assert.equal(ours.accepted, false, `${what}: dcap-qvl refuses (${reference.why}), this verifier accepts`)
  if (ours.accepted) return assert.deepEqual([ours.status, ours.advisoryIds], [reference.status, reference.advisoryIds], what)
  assert.ok(!strictly && leftOutByDcapQvl(ours.reason!, ours.why), `${what}: this verifier refuses (${ours.reason}: ${ours.why}) what dcap-qvl accepts`)
}

test('reference: the same verdicts as dcap-qvl 0.3.9 on the Intel fixtures and a devnet quote, and on 600 one-bit changes of them (seed 15)', async () => {
  const cases = [
    { name: 'TDX v4 (Intel)', quote: tdxQuote, collateral: tdxCollateral, root: INTEL_SGX_ROOT_CA_DER },
    { name: 'SGX v3 (Intel)', quote: sgxQuote, collateral: sgxCollateral, root: INTEL_SGX_ROOT_CA_DER },
    { name: 'TDX v4 (devnet)', quote: devnetQuote(), collateral: devnetCollateral(), root: devnetRoot },
  ]
  let bothAccepted = 0
  let bothRefused = 0
  for (const c of cases) {
    const untouched = await verdicts(c.quote, c.collateral, now, c.root)
    assert.equal(untouched.ours.accepted && untouched.reference.accepted, true, c.name)
    assertSameVerdict(untouched, c.name, { strictly: true })
    await fc.assert(
      fc.asyncProperty(fc.nat(c.quote.length - 1), fc.nat(7), async (at, bit) => {
        const v = await verdicts(flip(c.quote, at, 1 << bit), c.collateral, now, c.root)
        assertSameVerdict(v, `${c.name}, bit ${bit} of byte ${at} flipped`)
        if (v.ours.accepted) bothAccepted++
        else if (!v.reference.accepted) bothRefused++
      }),
      { numRuns: 200, seed: 15 },
    )
  }
  // Most flips break a signature or a structure; a few land in bytes no step reads (padding, say) and leave the quote
  // valid for both. The rest are refused by this verifier alone, each for a check dcap-qvl leaves out (above).
  assert.ok(bothRefused > 450, `${bothRefused} of 600 changed quotes refused by both`)
  assert.ok(bothAccepted > 0, `no changed quote accepted by both`)
})

test('reference: the same verdicts as dcap-qvl 0.3.9 over 300 signed collateral variants: TCB levels, QE identity policy and levels (seed 15)', async () => {
  const quote = devnetQuote()
  const svns = (first: number[], rest: number) => Array.from({ length: 16 }, (_, i) => ({ svn: first[i] ?? rest }))
  const status = fc.oneof(fc.constant('UpToDate'), fc.constantFrom('UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked', 'Bogus'))
  const advisories = fc.option(fc.subarray(['INTEL-SA-00001', 'INTEL-SA-00002', 'INTEL-SA-00003']), { nil: undefined })
  const platformLevel = fc.record({
    tcb: fc.record({
      sgxtcbcomponents: fc.tuple(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 2, max: 4 })).map(([a, b]) => svns([a], b)),
      pcesvn: fc.integer({ min: 12, max: 14 }),
      tdxtcbcomponents: fc.tuple(fc.integer({ min: 5, max: 7 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 2, max: 4 })).map((t) => svns(t, 0)),
    }),
    tcbDate: fc.constant('2025-01-01T00:00:00Z'),
    tcbStatus: status,
    advisoryIDs: advisories,
  })
  const qeIdentity = fc.record({
    miscselect: fc.constantFrom('00000000', '00000001'),
    miscselectMask: fc.constantFrom('FFFFFFFF', '00000000'),
    attributes: fc.constantFrom(`11${'00'.repeat(15)}`, `13${'00'.repeat(15)}`, `01${'00'.repeat(15)}`),
    attributesMask: fc.constantFrom(`FBFFFFFFFFFFFFFF${'00'.repeat(8)}`, `FFFFFFFFFFFFFFFF${'00'.repeat(8)}`, '00'.repeat(16)),
    mrsigner: fc.constantFrom(QE_MRSIGNER.toUpperCase(), 'BB'.repeat(32)),
    isvprodid: fc.constantFrom(2, 1),
    tcbLevels: fc.array(fc.record({ tcb: fc.record({ isvsvn: fc.integer({ min: 3, max: 5 }) }), tcbDate: fc.constant('2025-01-01T00:00:00Z'), tcbStatus: status, advisoryIDs: advisories }), { minLength: 1, maxLength: 3 }),
  })
  const seen = new Set<string>()
  await fc.assert(
    fc.asyncProperty(fc.array(platformLevel, { minLength: 1, maxLength: 3 }), qeIdentity, async (platformLevels, qe) => {
      const v = await verdicts(quote, devnetCollateral({ platformLevels, qeIdentity: qe }), devnetNow, devnetRoot)
      assertSameVerdict(v, JSON.stringify({ platformLevels, qe }), { strictly: true })
      seen.add(v.ours.accepted ? v.ours.status : `refused: ${v.reference.accepted ? '' : v.reference.why.split(':')[0]}`)
    }),
    { numRuns: 300, seed: 15 },
  )
  // The variants reach accepted statuses and the refusals of each step, not one verdict 300 times.
  for (const expected of ['UpToDate', 'OutOfDate', 'refused: No matching TCB level found', 'refused: QE MRSIGNER mismatch', 'refused: TCB status is invalid']) {
    assert.ok([...seen].some((s) => s.startsWith(expected)), `no variant gave "${expected}" (${[...seen].join('; ')})`)
  }
})
