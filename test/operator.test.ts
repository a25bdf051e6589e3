// The operator's side of a running node, end to end on a two-node devnet (real anvil, blobs, SQLite, HTTP, sidecar
// processes; only the TEE is simulated): Prometheus metrics parsed from the exposition, the status page's sign-in
// (cookies, CSRF, what a session may and may not do), and the OpenAPI documents against what the routes answer.
// The status page itself in headless Chromium: sign-in, the key elements, self-refresh, screenshots checked.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import parsePrometheus, { type MetricFamily, type Sample } from 'parse-prometheus-text-format'
import type { z } from 'zod'
import {
  attestSchema,
  attestationSchema,
  getKeySchema,
  getQuoteSchema,
  getTlsKeySchema,
  signSchema,
  verifySchema,
  healthzSchema,
  hostOpenApiDocument,
  infoSchema,
  podOpenApiDocument,
  sealkeySchema,
  statusSchema,
  versionSchema,
  errorSchema,
  dstackErrorSchema,
} from '../src/app/openapi.ts'
import { runDevnet, type DevnetNodeInfo } from '../src/devnet/network.ts'
import { launchChromium } from './browser.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
const DAY = 86_400

async function scrape(node: DevnetNodeInfo): Promise<MetricFamily[]> {
  const res = await fetch(`${node.hostUrl}/metrics`, { headers: { authorization: `Bearer ${node.hostToken}` } })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  return parsePrometheus(await res.text())
}

function family(families: MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name)
  assert.ok(found, `metric ${name} is exported`)
  return found
}

function sample(families: MetricFamily[], name: string, labels: Record<string, string> = {}): Sample | undefined {
  return family(families, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
}

const value = (families: MetricFamily[], name: string, labels: Record<string, string> = {}) => {
  const found = sample(families, name, labels)
  return found ? Number(found.value) : undefined
}

/** Scrapes until `check` passes (background refreshes and receipts land asynchronously), or fails with its last error. */
async function eventually(node: DevnetNodeInfo, check: (families: MetricFamily[]) => void, timeoutMs = 60_000): Promise<MetricFamily[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const families = await scrape(node)
    try {
      check(families)
      return families
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

const pod = (name: string) => ({ 'x-keymanager-pod': name })

/**
 * fetch, tried once more when the connection fails before any answer: a keep-alive socket the server closed while
 * this process was busy (the OpenAPI validator compiles its schema for seconds on a loaded machine) is reused before
 * its close event is seen. Browsers retry idempotent requests the same way; only idempotent calls go through here.
 */
async function fetchIdempotent(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init)
  } catch (error) {
    if (!(error instanceof TypeError)) throw error
    return fetch(url, init)
  }
}

describe('operator: metrics, sign-in and OpenAPI on a running devnet', () => {
  let devnet: Devnet
  let n1: DevnetNodeInfo
  let n2: DevnetNodeInfo

  before(async () => {
    devnet = await runDevnet({ nodes: 2, dir: mkdtempSync(join(tmpdir(), 'km-operator-')), print: () => {} })
    ;[n1, n2] = devnet.info.nodes as [DevnetNodeInfo, DevnetNodeInfo]
  })
  after(async () => {
    await devnet?.stop()
  })

  test('metrics: the exposition parses and carries every family with its type', async () => {
    const families = await eventually(n1, (f) => assert.equal(value(f, 'keymanager_tcb_status', { status: 'UpToDate' }), 1))
    const types: Record<string, MetricFamily['type']> = {
      keymanager_ready: 'GAUGE',
      keymanager_generation: 'GAUGE',
      keymanager_node_state: 'GAUGE',
      keymanager_onboarding_decisions_total: 'COUNTER',
      keymanager_quote_verification_seconds: 'HISTOGRAM',
      keymanager_quote_verifications_total: 'COUNTER',
      keymanager_outbox_depth: 'GAUGE',
      keymanager_outbox_oldest_age_seconds: 'GAUGE',
      keymanager_outbox_stuck_txs: 'GAUGE',
      keymanager_chain_head_block: 'GAUGE',
      keymanager_watcher_cursor_block: 'GAUGE',
      keymanager_watcher_lag_blocks: 'GAUGE',
      keymanager_verified_head_block: 'GAUGE',
      keymanager_finality_lag_blocks: 'GAUGE',
      keymanager_finality_lag_seconds: 'GAUGE',
      keymanager_pending_requests: 'GAUGE',
      keymanager_blob_fetches_total: 'COUNTER',
      keymanager_blob_archive_bytes: 'GAUGE',
      keymanager_blob_archive_blobs: 'GAUGE',
      keymanager_gas_used_total: 'COUNTER',
      keymanager_blob_gas_used_total: 'COUNTER',
      keymanager_fees_paid_wei_total: 'COUNTER',
      keymanager_onboardings_paid_total: 'COUNTER',
      keymanager_gas_balance_wei: 'GAUGE',
      keymanager_collateral_expiry_seconds: 'GAUGE',
      keymanager_tcb_status: 'GAUGE',
      keymanager_tcb_evaluation_data_number: 'GAUGE',
      keymanager_platform_check_timestamp_seconds: 'GAUGE',
      keymanager_pod_requests_total: 'COUNTER',
      keymanager_alert_active: 'GAUGE',
      process_cpu_user_seconds_total: 'COUNTER',
      nodejs_eventloop_lag_seconds: 'GAUGE',
    }
    for (const [name, type] of Object.entries(types)) {
      assert.equal(family(families, name).type, type, name)
      assert.ok(family(families, name).help.length > 10, `${name} has a help text`)
    }
    assert.equal(value(families, 'keymanager_ready'), 1)
    assert.equal(value(families, 'keymanager_generation'), 1)
    assert.equal(value(families, 'keymanager_node_state', { state: 'ready' }), 1)
    assert.equal(value(families, 'keymanager_node_state', { state: 'registering' }), 0)
  })

  test('metrics: decisions, quote verification, gas and blob gas, blob fetches after node 1 helped node 2', async () => {
    const families = await eventually(n1, (f) => assert.ok((value(f, 'keymanager_gas_used_total', { label: 'fulfillOnboard' }) ?? 0) > 21_000))
    assert.equal(value(families, 'keymanager_onboarding_decisions_total', { decision: 'fulfilled', reason: 'none' }), 1)
    // One blob in the fulfil transaction: 2^17 blob gas.
    assert.equal(value(families, 'keymanager_blob_gas_used_total', { label: 'fulfillOnboard' }), 131072)
    assert.ok((value(families, 'keymanager_fees_paid_wei_total', { kind: 'execution' }) ?? 0) > 0)
    const verification = sample(families, 'keymanager_quote_verification_seconds')!
    const ok = value(families, 'keymanager_quote_verifications_total', { outcome: 'ok' })!
    assert.ok(ok >= 2, 'node 2 quote and the platform self-check verified')
    assert.ok(Number(verification.count) >= ok, 'every verification is timed')
    assert.ok(Number(verification.sum) > 0)
    assert.equal(verification.buckets!['+Inf'], verification.count)
    const counts = Object.entries(verification.buckets!)
      .sort(([a], [b]) => (a === '+Inf' ? Infinity : Number(a)) - (b === '+Inf' ? Infinity : Number(b)))
      .map(([, count]) => Number(count))
    assert.equal(counts.length, 14)
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b), 'histogram buckets are cumulative')
    // Node 1 read node 2's request blob: not in its archive, then from anvil.
    assert.ok((value(families, 'keymanager_blob_fetches_total', { source: 'archive', result: 'miss' }) ?? 0) >= 1)
    assert.ok((value(families, 'keymanager_blob_fetches_total', { source: 'anvil', result: 'ok' }) ?? 0) >= 1)
    assert.ok((value(families, 'keymanager_blob_archive_blobs') ?? 0) >= 2, 'its bootstrap blob and the blobs it used')
    assert.equal(value(families, 'keymanager_blob_archive_bytes'), 131072 * value(families, 'keymanager_blob_archive_blobs')!)
    // Node 2 sent requestOnboard and confirmOnboard.
    const n2families = await eventually(n2, (f) => assert.ok((value(f, 'keymanager_gas_used_total', { label: 'confirmOnboard' }) ?? 0) > 21_000))
    assert.equal(value(n2families, 'keymanager_blob_gas_used_total', { label: 'requestOnboard' }), 131072)
    assert.equal(value(n2families, 'keymanager_onboarding_decisions_total', { decision: 'fulfilled', reason: 'none' }), undefined)

    // Gas per onboarding: the metrics count the onboardings each role paid for, and /status divides the same receipts'
    // gas by them (node 1 answered one request; node 2 made one and confirmed it).
    const h1 = await eventually(n1, (f) => assert.equal(value(f, 'keymanager_onboardings_paid_total', { role: 'helper' }), 1))
    assert.equal(value(h1, 'keymanager_onboardings_paid_total', { role: 'newcomer' }), undefined)
    const h2 = await eventually(n2, (f) => assert.equal(value(f, 'keymanager_onboardings_paid_total', { role: 'newcomer' }), 1))
    type Spent = { onboardings: number; gasUsed: string; blobGasUsed: string; feesWei: string }
    type Status = { gasSpent: { byLabel: Record<string, { txs: number; gasUsed: string; blobGasUsed: string; feesWei: string }>; perOnboarding: { asNewcomer: Spent | null; asHelper: Spent | null } } }
    const status = async (node: DevnetNodeInfo) =>
      (await (await fetch(`${node.hostUrl}/status`, { headers: { authorization: `Bearer ${node.hostToken}` } })).json()) as Status
    const s1 = (await status(n1)).gasSpent
    // The helper's cost: its answer and the freshness mark its decision waited for (docs/protocol.md#verified-chain-view).
    const markGas = value(h1, 'keymanager_gas_used_total', { label: 'markFresh' }) ?? 0
    assert.deepEqual(s1.perOnboarding.asHelper, {
      onboardings: 1,
      gasUsed: String(value(h1, 'keymanager_gas_used_total', { label: 'fulfillOnboard' })! + markGas),
      blobGasUsed: '131072',
      feesWei: String(BigInt(s1.byLabel.fulfillOnboard!.feesWei) + BigInt(s1.byLabel.markFresh?.feesWei ?? '0')),
    })
    assert.ok(BigInt(s1.byLabel.fulfillOnboard!.feesWei) > 0n)
    assert.equal(s1.perOnboarding.asNewcomer, null)
    const s2 = (await status(n2)).gasSpent
    const n2gas = ['requestOnboard', 'confirmOnboard'].map((label) => value(h2, 'keymanager_gas_used_total', { label })!)
    assert.deepEqual(s2.perOnboarding.asNewcomer, {
      onboardings: 1,
      gasUsed: String(n2gas[0]! + n2gas[1]!),
      blobGasUsed: '131072',
      feesWei: String(BigInt(s2.byLabel.requestOnboard!.feesWei) + BigInt(s2.byLabel.confirmOnboard!.feesWei)),
    })
    assert.equal(s2.perOnboarding.asHelper, null)
  })

  test('metrics: outbox, chain, platform and gas gauges', async () => {
    const families = await eventually(n1, (f) => {
      assert.ok((value(f, 'keymanager_gas_balance_wei') ?? 0) > 1e21, 'a devnet account holds 10,000 ETH')
      assert.equal(value(f, 'keymanager_outbox_depth'), 0)
    })
    assert.equal(value(families, 'keymanager_outbox_stuck_txs'), 0)
    assert.equal(value(families, 'keymanager_outbox_oldest_age_seconds'), 0)
    const head = value(families, 'keymanager_chain_head_block')!
    const cursor = value(families, 'keymanager_watcher_cursor_block')!
    assert.ok(head > 0 && cursor <= head)
    assert.equal(value(families, 'keymanager_watcher_lag_blocks'), head - cursor)
    // The verified view (light client on the devnet beacon server) vouches for a block the node itself checked.
    const verified = value(families, 'keymanager_verified_head_block')!
    assert.ok(verified > 0, `verified head ${verified}`)
    assert.equal(value(families, 'keymanager_finality_lag_blocks'), Math.max(0, head - verified))
    assert.ok(value(families, 'keymanager_finality_lag_seconds')! >= 0)
    const expiry = value(families, 'keymanager_collateral_expiry_seconds')!
    assert.ok(expiry > 29 * DAY && expiry <= 30 * DAY, `devnet collateral lives 30 days, ${expiry} s left`)
    assert.equal(value(families, 'keymanager_tcb_evaluation_data_number'), 1)
    assert.equal(value(families, 'keymanager_tcb_status', { status: 'OutOfDate' }), 0)
    for (const m of family(families, 'keymanager_alert_active').metrics) assert.equal(m.value, '0', m.labels!.alert)
    assert.deepEqual(family(families, 'keymanager_alert_active').metrics.map((m) => m.labels!.alert).sort(), [
      'collateral_expiring',
      'gas_balance_low',
      'platform_check_failed',
      'tcb_evaluation_number_new',
      'tcb_status_not_up_to_date',
    ])
  })

  test('metrics: pod requests by route pattern and status, never by raw path', async () => {
    const count = (f: MetricFamily[], route: string, status: string) => value(f, 'keymanager_pod_requests_total', { route, status }) ?? 0
    const before = await scrape(n1)
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${n1.podUrl}/sealkey`, { headers: pod('app') })).status, 200)
    assert.equal((await fetch(`${n1.podUrl}/attest/0x1234`, { headers: pod('app') })).status, 400)
    assert.equal((await fetch(`${n1.podUrl}/attest/${'ab'.repeat(32)}`, { headers: pod('app') })).status, 200)
    assert.equal((await fetch(`${n1.podUrl}/no/such/route-${Date.now()}`)).status, 404)
    assert.equal((await fetch(`${n1.podUrl}/GetKey`, { method: 'POST', headers: pod('app'), body: '{"path":"p"}' })).status, 200)
    const after = await scrape(n1)
    assert.equal(count(after, '/sealkey', '200') - count(before, '/sealkey', '200'), 3)
    assert.equal(count(after, '/attest/:appdata', '400') - count(before, '/attest/:appdata', '400'), 1)
    assert.equal(count(after, '/attest/:appdata', '200') - count(before, '/attest/:appdata', '200'), 1)
    assert.equal(count(after, 'unmatched', '404') - count(before, 'unmatched', '404'), 1)
    assert.equal(count(after, '/GetKey', '200') - count(before, '/GetKey', '200'), 1)
    const routes = new Set(family(after, 'keymanager_pod_requests_total').metrics.map((m) => m.labels!.route))
    assert.ok(![...routes].some((r) => r!.includes('route-')), 'no raw path becomes a label')
  })

  test('security: /metrics and /openapi.json need the host token or a session', async () => {
    for (const path of ['/metrics', '/openapi.json', '/status']) {
      const res = await fetch(`${n1.hostUrl}${path}`)
      assert.equal(res.status, 401, path)
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthorized')
      const wrong = await fetch(`${n1.hostUrl}${path}`, { headers: { authorization: `Bearer ${'x'.repeat(48)}` } })
      assert.equal(wrong.status, 401, path)
    }
  })

  describe('sign-in', () => {
    const login = (node: DevnetNodeInfo, token: string, headers: Record<string, string> = {}) =>
      fetch(`${node.hostUrl}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(node.hostUrl).origin, ...headers },
        body: new URLSearchParams({ token }).toString(),
      })
    const cookieOf = (res: Response) => res.headers.get('set-cookie')?.split(';')[0] ?? ''

    test('default: the token in the form gives an HttpOnly, SameSite=Strict session cookie that reads the page', async () => {
      const res = await login(n1, n1.hostToken)
      assert.equal(res.status, 303)
      assert.equal(res.headers.get('location'), '/')
      const setCookie = res.headers.get('set-cookie')!
      assert.match(setCookie, /^keymanager_session=[A-Za-z0-9_-]{43};/)
      assert.match(setCookie, /; HttpOnly/)
      assert.match(setCookie, /; SameSite=Strict/)
      assert.match(setCookie, /; Path=\//)
      assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP: a Secure cookie would never come back')
      assert.ok(!setCookie.includes(n1.hostToken), 'the cookie is a session id, not the token')
      const page = await fetch(`${n1.hostUrl}/`, { headers: { cookie: cookieOf(res) } })
      assert.equal(page.status, 200)
      const html = await page.text()
      assert.match(html, /data-testid="state">ready</)
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'nonce-[^']+'/)
      assert.equal(page.headers.get('cache-control'), 'no-store')
      assert.equal(page.headers.get('x-frame-options'), 'SAMEORIGIN')
      for (const path of ['/metrics', '/status', '/openapi.json']) {
        assert.equal((await fetch(`${n1.hostUrl}${path}`, { headers: { cookie: cookieOf(res) } })).status, 200, path)
      }
    })

    test('default: behind a TLS proxy the cookie is Secure', async () => {
      const res = await login(n1, n1.hostToken, { 'x-forwarded-proto': 'https' })
      assert.match(res.headers.get('set-cookie')!, /; Secure/)
    })

    test('error: a wrong token gets the form again with 401 and no cookie', async () => {
      const res = await login(n1, 'not-the-token-at-all')
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('set-cookie'), null)
      assert.match(await res.text(), /Wrong token\./)
      const other = await login(n1, n2.hostToken)
      assert.equal(other.status, 401, "another node's token")
    })

    test('security: a cross-site form post cannot sign in (login CSRF)', async () => {
      const res = await login(n1, n1.hostToken, { origin: 'http://evil.example' })
      assert.equal(res.status, 403)
      assert.equal(res.headers.get('set-cookie'), null)
    })

    test('security: a session reads, it never acts: bootstrap, register and helper still need the bearer token', async () => {
      const cookie = cookieOf(await login(n1, n1.hostToken))
      for (const [method, path] of [
        ['POST', '/register'],
        ['POST', '/bootstrap'],
        ['GET', '/helper/1'],
        ['POST', '/helper/1'],
      ] as const) {
        const res = await fetch(`${n1.hostUrl}${path}`, { method, headers: { cookie } })
        assert.equal(res.status, 401, `${method} ${path}`)
      }
    })

    test('security: sign-out needs the session CSRF token; afterwards the cookie is dead', async () => {
      const cookie = cookieOf(await login(n1, n1.hostToken))
      const html = await (await fetch(`${n1.hostUrl}/`, { headers: { cookie } })).text()
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!
      const logout = (body: Record<string, string>) =>
        fetch(`${n1.hostUrl}/logout`, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: new URL(n1.hostUrl).origin },
          body: new URLSearchParams(body).toString(),
        })
      assert.equal((await logout({ csrf: 'forged' })).status, 403)
      assert.equal((await fetch(`${n1.hostUrl}/metrics`, { headers: { cookie } })).status, 200, 'a refused sign-out keeps the session')
      const out = await logout({ csrf })
      assert.equal(out.status, 303)
      assert.match(out.headers.get('set-cookie') ?? '', /^keymanager_session=;.*Max-Age=0/)
      assert.equal((await fetch(`${n1.hostUrl}/metrics`, { headers: { cookie } })).status, 401)
      assert.match(await (await fetch(`${n1.hostUrl}/`, { headers: { cookie } })).text(), /data-testid="login-form"/)
    })

    test("security: one node's session cookie is nothing on another node", async () => {
      const cookie = cookieOf(await login(n1, n1.hostToken))
      assert.equal((await fetch(`${n2.hostUrl}/metrics`, { headers: { cookie } })).status, 401)
    })
  })

  describe('OpenAPI', () => {
    const validate = async (doc: unknown) => {
      const validator = new Validator()
      const result = await validator.validate(doc as Parameters<Validator["validate"]>[0])
      return { ...result, version: validator.version }
    }

    test('default: both documents are valid OpenAPI 3.1 and served on their listeners', async () => {
      for (const [name, doc, url, headers] of [
        ['pod', podOpenApiDocument(), `${n1.podUrl}/openapi.json`, {}],
        ['host', hostOpenApiDocument(), `${n1.hostUrl}/openapi.json`, { authorization: `Bearer ${n1.hostToken}` }],
      ] as const) {
        const result = await validate(doc)
        assert.equal(result.version, '3.1', name)
        assert.deepEqual(result, { valid: true, version: '3.1' }, `${name}: ${JSON.stringify(result.errors)}`)
        const served = await fetch(url, { headers })
        assert.equal(served.status, 200, name)
        assert.deepEqual(await served.json(), JSON.parse(JSON.stringify(doc)), name)
      }
    })

    test('error: the validator refuses a broken document (it is not a rubber stamp)', async () => {
      const broken = structuredClone(podOpenApiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
      broken.paths['/sealkey']!.get!.responses['200'] = { content: {} } // a response object needs a description
      assert.equal((await validate(broken)).valid, false)
      const { info: _info, ...noInfo } = podOpenApiDocument()
      assert.equal((await validate(noInfo)).valid, false)
    })

    test('default: what the pod and host routes answer parses with the documented schemas', async () => {
      const parses = async (schema: z.ZodType, res: Response, status = 200) => {
        assert.equal(res.status, status, res.url)
        const body = await res.json()
        const parsed = schema.safeParse(body)
        assert.ok(parsed.success, `${res.url}: ${JSON.stringify(parsed.error?.issues)} in ${JSON.stringify(body).slice(0, 300)}`)
      }
      const post = (path: string, body: unknown, headers: Record<string, string> = pod('app')) =>
        fetchIdempotent(`${n1.podUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })
      await parses(healthzSchema, await fetchIdempotent(`${n1.podUrl}/healthz`))
      await parses(sealkeySchema, await fetchIdempotent(`${n1.podUrl}/sealkey`, { headers: pod('app') }))
      await parses(attestSchema, await fetchIdempotent(`${n1.podUrl}/attest/${'cd'.repeat(32)}`, { headers: pod('app') }))
      await parses(getKeySchema, await post('/GetKey', { path: 'wallet', purpose: 'signing' }))
      await parses(getQuoteSchema, await post('/GetQuote', { report_data: '11'.repeat(64) }))
      await parses(getTlsKeySchema, await post('/GetTlsKey', { subject: 'app', usage_ra_tls: true }))
      await parses(attestationSchema, await post('/Attest', { report_data: '11'.repeat(64) }))
      const signing = await post('/Sign', { algorithm: 'secp256k1', data: '00ff' })
      const signed = (await signing.clone().json()) as { signature: string; public_key: string }
      await parses(signSchema, signing)
      await parses(signSchema, await post('/Sign', { algorithm: 'ed25519', data: '00ff' }))
      await parses(verifySchema, await post('/Verify', { algorithm: 'secp256k1', data: '00ff', signature: signed.signature, public_key: signed.public_key }))
      await parses(infoSchema, await post('/Info', {}))
      await parses(versionSchema, await post('/Version', {}))
      await parses(errorSchema, await fetchIdempotent(`${n1.podUrl}/attest/zz`, { headers: pod('app') }), 400)
      await parses(dstackErrorSchema, await post('/GetKey', { path: 7 }), 400)
      await parses(statusSchema, await fetchIdempotent(`${n1.hostUrl}/status`, { headers: { authorization: `Bearer ${n1.hostToken}` } }))
      await parses(statusSchema, await fetchIdempotent(`${n2.hostUrl}/status`, { headers: { authorization: `Bearer ${n2.hostToken}` } }))
    })
  })
  describe('status page in Chromium', () => {
    // Screenshots land here for people to look at (the test checks them itself too).
    const shots = resolve(import.meta.dirname, '..', '.keymanager', 'screenshots')
    // Playwright hides the caret with an injected <style> by default, which the page's CSP (rightly) blocks.
    const SHOT = { caret: 'initial', animations: 'allow' } as const

    /**
     * The RGB of pixel (x, y) of a PNG, decoded by the browser itself (no image library needed), in a blank page: the
     * status page's CSP allows no data: images.
     */
    async function pixel(page: import('playwright-core').Page, png: Buffer, x: number, y: number): Promise<[number, number, number]> {
      return (await pixelRow(page, png, x, x + 1, y))[0]!
    }

    /** The RGB of each pixel of row `y` from `x0` to `x1` (exclusive) of a PNG, decoded once by the page. */
    async function pixelRow(page: import('playwright-core').Page, png: Buffer, x0: number, x1: number, y: number): Promise<[number, number, number][]> {
      const flat = (await page.evaluate(`(async () => {
        const image = new Image()
        image.src = 'data:image/png;base64,${png.toString('base64')}'
        await image.decode()
        const canvas = document.createElement('canvas')
        canvas.width = image.width
        canvas.height = image.height
        const context = canvas.getContext('2d')
        context.drawImage(image, 0, 0)
        return Array.from(context.getImageData(${x0}, ${y}, ${x1 - x0}, 1).data)
      })()`)) as number[]
      return Array.from({ length: x1 - x0 }, (_, i) => [flat[4 * i]!, flat[4 * i + 1]!, flat[4 * i + 2]!])
    }

    test('default: sign in with the token, read the node at a glance, watch it refresh, sign out', async () => {
      mkdirSync(shots, { recursive: true })
      const browser = await launchChromium()
      try {
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' })
        const page = await context.newPage()
        const problems: string[] = []
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console: ${message.text()} @ ${message.location().url}:${message.location().lineNumber}`)
        })

        await page.goto(n1.hostUrl + '/')
        const form = page.getByTestId('login-form')
        assert.ok(await form.isVisible(), 'the sign-in form is shown without a session')
        writeFileSync(join(shots, 'login.png'), await page.screenshot(SHOT))

        await page.fill('#token', 'wrong-token-wrong-token')
        await page.click('button[type=submit]')
        assert.equal((await page.getByTestId('login-error').textContent())?.trim(), 'Wrong token.')
        assert.deepEqual(problems, ['console: Failed to load resource: the server responded with a status of 401 (Unauthorized) @ ' + n1.hostUrl + '/login:0'])
        problems.length = 0

        await page.fill('#token', n1.hostToken)
        await page.click('button[type=submit]')
        await page.getByTestId('state').waitFor()
        assert.equal(page.url(), n1.hostUrl + '/', 'the token never appears in the URL')
        const [cookie, ...others] = await context.cookies()
        assert.equal(others.length, 0)
        assert.equal(cookie?.name, 'keymanager_session')
        assert.equal(cookie?.httpOnly, true)
        assert.equal(cookie?.sameSite, 'Strict')
        assert.equal(await page.evaluate('document.cookie'), '', 'scripts cannot read the session')

        // The key elements, as a person reads them.
        const status = (await (await fetch(`${n1.hostUrl}/status`, { headers: { authorization: `Bearer ${n1.hostToken}` } })).json()) as { xPub: string }
        assert.equal(await page.getByTestId('state').textContent(), 'ready')
        const node = page.locator('#node')
        assert.ok((await node.textContent())!.includes(status.xPub), 'the xPub is shown in full')
        assert.match((await node.locator('dt:has-text("Generation") + dd').textContent())!, /^1$/)
        await page.getByTestId('tcb-status').filter({ hasText: 'UpToDate' }).waitFor({ timeout: 60_000 })
        assert.match((await page.getByTestId('collateral-countdown').textContent())!, /^in 29 d \d+ h$/)
        assert.match((await page.getByTestId('gas-balance').textContent())!, /^\d+(\.\d+)? ETH$/)
        assert.match((await page.locator('#funds').textContent())!, /\d+ blobs, \d+(\.\d+)? (KiB|MiB)/)
        const decision = page.locator('#decisions tbody tr').first()
        assert.match((await decision.textContent())!, /fulfilled/)
        assert.match((await page.locator('#chain dt:has-text("Chain head") + dd').textContent())!, /^\d+$/)
        assert.match((await page.locator('#chain dt:has-text("Verified head") + dd').textContent())!, /^\d+$/)
        assert.match((await page.getByTestId('finality-lag').textContent())!, /^\d+ blocks, \d+ (s|min)$/)
        assert.ok(await page.locator('#outbox').isVisible())
        assert.ok(await page.getByTestId('alerts-none').isVisible())

        // It refreshes itself: the content is swapped in place (no reload), and the badge says so.
        const first = await page.locator('#content').getAttribute('data-taken-at')
        // Polled from here: the page's CSP (rightly) forbids the string evaluation waitForFunction would need.
        for (const deadline = Date.now() + 30_000; (await page.locator('#content').getAttribute('data-taken-at')) === first; ) {
          assert.ok(Date.now() < deadline, 'the page did not refresh within 30 s')
          await new Promise((r) => setTimeout(r, 200))
        }
        assert.equal(await page.getByTestId('live').textContent(), 'live')

        // The screenshot shows the state badge: its centre pixel is the badge's green.
        const png = await page.screenshot({ ...SHOT, fullPage: true })
        writeFileSync(join(shots, 'status.png'), png)
        const box = (await page.getByTestId('state').boundingBox())!
        const scratch = await context.newPage()
        const [r, g, b] = await pixel(scratch, png, Math.round(box.x + 4), Math.round(box.y + box.height / 2))
        assert.ok(Math.abs(r - 0x1a) < 24 && Math.abs(g - 0x7f) < 24 && Math.abs(b - 0x37) < 24, `badge pixel rgb(${r}, ${g}, ${b})`)
        const tcb = (await page.getByTestId('tcb-status').boundingBox())!
        const [tr, tg, tb] = await pixel(scratch, png, Math.round(tcb.x + 4), Math.round(tcb.y + tcb.height / 2))
        assert.ok(Math.abs(tr - 0x1a) < 24 && Math.abs(tg - 0x7f) < 24 && Math.abs(tb - 0x37) < 24, `TCB badge pixel rgb(${tr}, ${tg}, ${tb})`)
        // The alert strip: "no alerts" in the same green.
        const none = (await page.getByTestId('alerts-none').boundingBox())!
        const [ar, ag, ab] = await pixel(scratch, png, Math.round(none.x + 4), Math.round(none.y + none.height / 2))
        assert.ok(Math.abs(ar - 0x1a) < 24 && Math.abs(ag - 0x7f) < 24 && Math.abs(ab - 0x37) < 24, `alert strip pixel rgb(${ar}, ${ag}, ${ab})`)

        await scratch.close()
        await page.getByTestId('logout').click()
        await page.getByTestId('login-form').waitFor()
        assert.deepEqual(await context.cookies(), [])
        assert.deepEqual(problems, [], 'no script error and no CSP violation')
      } finally {
        await browser.close()
      }
    })

    test('default: an active alert is an amber badge naming it, in the screenshot too', async () => {
      // A third node whose operator wants more gas than a devnet account holds: gas_balance_low is up from its first
      // balance reading (the real alert path: balance from the RPC, threshold from its host settings).
      const node = await devnet.addNode({
        configure: (settings) => {
          settings.host.alerts = { minGasBalanceWei: (10n ** 30n).toString() }
        },
      })
      const browser = await launchChromium()
      try {
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' })
        const page = await context.newPage()
        await page.goto(node.hostUrl + '/')
        await page.fill('#token', node.hostToken)
        await page.click('button[type=submit]')
        const badge = page.getByTestId('alert-gas_balance_low')
        // The page refreshes itself: the badge appears once the monitor has read the balance.
        await badge.waitFor({ timeout: 60_000 })
        assert.match((await badge.textContent())!, /^⚠ gas balance [\d.]+ ETH is below 1000000000000 ETH$/)
        assert.equal(await page.getByTestId('alerts-none').count(), 0)

        const png = await page.screenshot({ ...SHOT, fullPage: true })
        writeFileSync(join(shots, 'alert.png'), png)
        const box = (await badge.boundingBox())!
        const scratch = await context.newPage()
        // The badge's amber (--warn, #9a6700) at its left edge, and white text somewhere across it.
        const [r, g, b] = await pixel(scratch, png, Math.round(box.x + 4), Math.round(box.y + box.height / 2))
        assert.ok(Math.abs(r - 0x9a) < 24 && Math.abs(g - 0x67) < 24 && Math.abs(b - 0x00) < 24, `alert badge pixel rgb(${r}, ${g}, ${b})`)
        const across = await pixelRow(scratch, png, Math.round(box.x + 12), Math.round(box.x + box.width - 8), Math.round(box.y + box.height / 2))
        const light = across.filter(([pr, pg, pb]) => pr > 200 && pg > 200 && pb > 200).length
        assert.ok(light > 3, `the badge's text shows in the screenshot (${light} light pixels across it)`)
        await scratch.close()
      } finally {
        await browser.close()
        node.child.kill('SIGTERM')
      }
    })
  })
})
