import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { readFileSync } from 'node:fs'
import {
  collateralCacheKey,
  collateralExpiresAt,
  fileCollateral,
  memoryCollateralCache,
  parseCollateral,
  pccsCollateral,
  signedJsonMember,
  type Collateral,
  type CollateralRequest,
} from './collateral.ts'
import { createDcapVerifier } from './dcap.ts'
import { QuoteVerificationError } from './types.ts'

const fixturePath = (name: string) => new URL(`../../test/fixtures/dcap/${name}`, import.meta.url)
const tdxQuote = new Uint8Array(readFileSync(fixturePath('tdx_quote')))
const sgxQuote = new Uint8Array(readFileSync(fixturePath('sgx_quote')))
const rawTdx = JSON.parse(readFileSync(fixturePath('tdx_quote_collateral.json'), 'utf8'))
const rawSgx = JSON.parse(readFileSync(fixturePath('sgx_quote_collateral.json'), 'utf8'))
const tdx = parseCollateral(rawTdx)
const sgx = parseCollateral(rawSgx)
const now = 1751328000
const seconds = (iso: string) => Date.parse(iso) / 1000
const tdxRequest: CollateralRequest = { quote: tdxQuote, teeType: 'tdx', fmspc: '0xb0c06f000000', ca: 'platform', now }
const sgxRequest: CollateralRequest = { quote: sgxQuote, teeType: 'sgx', fmspc: '0x00a067110000', ca: 'processor', now }

async function rejects(promise: Promise<unknown>, reason: string, message: string | RegExp) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof QuoteVerificationError, String(e))
    assert.equal(e.reason, reason)
    if (typeof message === 'string') assert.equal(e.message, message)
    else assert.match(e.message, message)
    return true
  })
}

/**
 * A tiny PCCS serving the fixture collateral in Intel PCS v4 shape: issuer chains URL-encoded in headers, TCB info
 * and QE identity wrapped with their signatures, the PCK CRL as DER and the root CA CRL as hex (as PCCS does).
 */
let server: Server
let baseUrl: string
const hits: string[] = []
let failing = false
/** Serve TCB info and QE identity pretty-printed: the signed bytes must survive, whitespace around them or not. */
let pretty = false
/** Behave like Intel PCS: no rootcacrl endpoint (the CRL comes from `rootCaCrlUrl`). */
let pcsLike = false
const wrap = (key: string, json: string, signature: string) =>
  pretty ? `{\n  "${key}" :  ${json} ,\n  "signature": "${signature}"\n}\n` : `{"${key}":${json},"signature":"${signature}"}`
before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://pccs')
    hits.push(`${url.pathname}${url.search}`)
    if (failing) return res.writeHead(503).end()
    const tee = url.pathname.startsWith('/tdx/') ? 'tdx' : 'sgx'
    const send = (body: string | Buffer, headers: Record<string, string> = {}) => res.writeHead(200, headers).end(body)
    const chain = (pem: string) => encodeURIComponent(pem)
    switch (url.pathname) {
      case '/sgx/certification/v4/pckcrl': {
        const c = url.searchParams.get('ca') === 'platform' ? tdx : sgx
        return send(Buffer.from(c.pck_crl, 'hex'), { 'SGX-PCK-CRL-Issuer-Chain': chain(c.pck_crl_issuer_chain) })
      }
      case '/sgx/certification/v4/rootcacrl':
        if (pcsLike) break
        return send(tdx.root_ca_crl)
      case '/IntelSGXRootCA.der':
        return send(Buffer.from(tdx.root_ca_crl, 'hex'))
      case '/tdx/certification/v4/tcb':
      case '/sgx/certification/v4/tcb': {
        const c = tee === 'tdx' ? tdx : sgx
        const fmspc = JSON.parse(c.tcb_info).fmspc
        if (url.searchParams.get('fmspc') !== fmspc) return res.writeHead(404).end()
        const header = tee === 'tdx' ? 'TCB-Info-Issuer-Chain' : 'SGX-TCB-Info-Issuer-Chain'
        return send(wrap('tcbInfo', c.tcb_info, c.tcb_info_signature), { [header]: chain(c.tcb_info_issuer_chain) })
      }
      case '/tdx/certification/v4/qe/identity':
      case '/sgx/certification/v4/qe/identity': {
        const c = tee === 'tdx' ? tdx : sgx
        return send(wrap('enclaveIdentity', c.qe_identity, c.qe_identity_signature), {
          'SGX-Enclave-Identity-Issuer-Chain': chain(c.qe_identity_issuer_chain),
        })
      }
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => server.close())
/** Never the real Intel URL in tests. */
const rootCaCrlUrl = () => `${baseUrl}/IntelSGXRootCA.der`

test('default: parseCollateral normalises byte arrays to hex and drops the per-quote PCK chain', () => {
  const asArrays = {
    ...rawTdx,
    pck_crl: Array.from(Buffer.from(rawTdx.pck_crl, 'hex')),
    tcb_info_signature: `0x${rawTdx.tcb_info_signature.toUpperCase()}`,
    pck_certificate_chain: '-----BEGIN CERTIFICATE-----',
  }
  const parsed: Collateral = parseCollateral(asArrays)
  assert.deepEqual(parsed, tdx)
  assert.ok(!('pck_certificate_chain' in parsed))
})

test('default: collateralExpiresAt is the earliest nextUpdate', () => {
  assert.equal(collateralExpiresAt(tdx), seconds('2025-07-19T10:00:35Z')) // the PCK CRL
  assert.equal(collateralExpiresAt(sgx), seconds('2025-07-19T10:01:18Z')) // the QE identity
})

test('default: collateralCacheKey', () => {
  assert.equal(collateralCacheKey(tdxRequest), 'tdx:platform:0xb0c06f000000')
  assert.equal(collateralCacheKey({ ...sgxRequest, fmspc: '0x00A067110000' }), 'sgx:processor:0x00a067110000')
})

test('default: fileCollateral reads the file once and verifies', async () => {
  const source = fileCollateral(fixturePath('tdx_quote_collateral.json').pathname)
  assert.deepEqual(await source.get(tdxRequest), tdx)
  const verified = await createDcapVerifier({ collateral: source }).verify(tdxQuote, { now })
  assert.equal(verified.status, 'UpToDate')
})

test('error: fileCollateral on a missing, non-JSON or wrongly shaped file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'collateral-'))
  await rejects(fileCollateral(join(dir, 'missing.json')).get(tdxRequest), 'collateral_unavailable', /^cannot read collateral file .*missing\.json: ENOENT/)
  writeFileSync(join(dir, 'text.json'), 'not json')
  await rejects(fileCollateral(join(dir, 'text.json')).get(tdxRequest), 'collateral_invalid', `collateral file ${join(dir, 'text.json')} is not JSON`)
  writeFileSync(join(dir, 'shape.json'), JSON.stringify({ ...rawTdx, pck_crl: 'xyz' }))
  await rejects(fileCollateral(join(dir, 'shape.json')).get(tdxRequest), 'collateral_invalid', /^collateral field pck_crl: /)
})

test('default: pccsCollateral fetches PCS-shaped collateral that verifies, then serves it from the cache', async () => {
  hits.length = 0
  const cache = memoryCollateralCache()
  const source = pccsCollateral({ url: baseUrl, cache, rootCaCrlUrl: rootCaCrlUrl() })
  const fetched = await source.get(tdxRequest)
  assert.deepEqual(fetched, tdx)
  assert.deepEqual(hits.sort(), [
    '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
    '/sgx/certification/v4/rootcacrl',
    '/tdx/certification/v4/qe/identity?update=standard',
    '/tdx/certification/v4/tcb?fmspc=B0C06F000000',
  ])
  assert.deepEqual(await cache.get('tdx:platform:0xb0c06f000000'), { collateral: tdx, expiresAt: now + 86_400 })

  const verifier = createDcapVerifier({ collateral: source })
  assert.equal((await verifier.verify(tdxQuote, { now })).status, 'UpToDate')
  assert.equal((await verifier.verify(sgxQuote, { now })).status, 'ConfigurationAndSWHardeningNeeded')
  assert.equal(hits.length, 8) // the TDX collateral came from the cache; the SGX one was fetched once
})

test('default: pccsCollateral refetches before expiry and keeps the cached copy while the PCCS fails', async () => {
  hits.length = 0
  const cache = memoryCollateralCache()
  const source = pccsCollateral({ url: baseUrl, cache, refreshBefore: 3600, maxCacheSeconds: 30 * 86_400, rootCaCrlUrl: rootCaCrlUrl() })
  await source.get(tdxRequest)
  const { expiresAt } = (await cache.get('tdx:platform:0xb0c06f000000'))!
  assert.equal(expiresAt, seconds('2025-07-19T10:00:35Z'))
  assert.equal(hits.length, 4)

  await source.get({ ...tdxRequest, now: expiresAt - 3601 })
  assert.equal(hits.length, 4, 'fresh enough: no fetch')
  await source.get({ ...tdxRequest, now: expiresAt - 3599 })
  assert.equal(hits.length, 8, 'inside the refresh window: refetched')

  failing = true
  try {
    assert.deepEqual(await source.get({ ...tdxRequest, now: expiresAt - 10 }), tdx, 'PCCS down: the still-valid copy')
    await rejects(source.get({ ...tdxRequest, now: expiresAt + 1 }), 'collateral_unavailable', /^PCCS http:\/\/127\.0\.0\.1:\d+\/\S+: HTTP 503$/)
  } finally {
    failing = false
  }
})

test('default: an Intel-PCS-like server (no rootcacrl endpoint) with pretty-printed JSON', async () => {
  hits.length = 0
  pretty = true
  pcsLike = true
  try {
    const source = pccsCollateral({ url: `${baseUrl}/sgx/certification/v4/`, rootCaCrlUrl: rootCaCrlUrl() })
    assert.deepEqual(await source.get(sgxRequest), sgx)
    assert.ok(hits.includes('/IntelSGXRootCA.der'))
    const verified = await createDcapVerifier({ collateral: source }).verify(sgxQuote, { now })
    assert.deepEqual(verified.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615'])
  } finally {
    pretty = false
    pcsLike = false
  }
})

test('default: signedJsonMember cuts the exact member text', () => {
  const body = '{"a": {"x": "}\\"{"}, "tcbInfo" : {"b":[1,{"c":"]"}] ,"d" :2} ,"signature":"00"}'
  assert.equal(signedJsonMember(body, 'tcbInfo'), '{"b":[1,{"c":"]"}] ,"d" :2}')
  assert.equal(signedJsonMember(body, 'a'), '{"x": "}\\"{"}')
  assert.throws(() => signedJsonMember('{"x":{"tcbInfo":{}}}', 'tcbInfo'), { message: 'PCCS response: no tcbInfo' })
  assert.throws(() => signedJsonMember('{"tcbInfo":', 'tcbInfo'), { message: 'PCCS response body is not a JSON object' })
})

test('default: concurrent requests for one key share one fetch', async () => {
  hits.length = 0
  const source = pccsCollateral({ url: baseUrl, rootCaCrlUrl: rootCaCrlUrl() })
  const results = await Promise.all([source.get(sgxRequest), source.get(sgxRequest), source.get(sgxRequest)])
  assert.deepEqual(results, [sgx, sgx, sgx])
  assert.equal(hits.length, 4)
})

test('error: pccsCollateral with an unreachable PCCS, a timeout or a bad URL', async () => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const closedPort = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  await rejects(
    pccsCollateral({ url: `http://127.0.0.1:${closedPort}`, rootCaCrlUrl: rootCaCrlUrl() }).get(tdxRequest),
    'collateral_unavailable',
    new RegExp(`^PCCS http://127\\.0\\.0\\.1:${closedPort}/\\S+: fetch failed \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}\\)$`),
  )
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  try {
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    await rejects(pccsCollateral({ url, timeoutMs: 100, rootCaCrlUrl: rootCaCrlUrl() }).get(tdxRequest), 'collateral_unavailable', /^PCCS http:\/\/127\.0\.0\.1:\d+\/\S+: no answer within 100 ms$/)
  } finally {
    silent.closeAllConnections()
    silent.close()
  }
  assert.throws(() => pccsCollateral({ url: 'file:///etc/passwd' }), { name: 'TypeError', message: 'PCCS url must be http(s): file:///etc/passwd' })
})
