// createHostApp in process over real in-process nodes (test/inProcessNode.ts): the host drives bootstrap, register,
// help and complete over app.request(), as an operator does over the host listener.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { randomBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import { publicKey64 } from '../keys/signature.ts'
import { createMetrics } from '../monitor/metrics.ts'
import { bytesToHex } from 'viem'
import { bootstrapped, fakeChainView, FakeChain, nodeOn, pki, provider, registerBlob, removeNodeDirs, unsigned } from '../../test/inProcessNode.ts'
import { blobsToEnvelope } from '../chain/envelope.ts'
import { createFreshness } from '../chain/view/freshness.ts'
import { keptCollateralReader } from '../store/keptCollateral.ts'
import { measurementOf } from '../tee/measurement.ts'
import { parseKeptCollateral, verifyWithKeptCollateral } from '../tee/keptCollateral.ts'
import { createHostApp } from './host.ts'

after(removeNodeDirs)

const TOKEN = 'host-token-for-tests-0123456789abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

function hostAppOf(node: ReturnType<typeof nodeOn>) {
  return createHostApp({
    node: node.node,
    blobs: node.stores.blobs,
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    monitor: { snapshot: async () => ({}) as never },
    metrics: createMetrics({ processMetrics: false }),
  })
}

async function json(res: Response) {
  const text = await res.text()
  assert.doesNotMatch(text, /\bat .*\.ts:\d+/, 'no stack trace')
  return JSON.parse(text) as Record<string, unknown> & { error?: { code: string; message: string; reason?: string } }
}

async function hostPair() {
  const { chain, helper } = await bootstrapped()
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  return { chain, helper: hostAppOf(helper), newcomer: hostAppOf(newcomer), newcomerNode: newcomer.node, helperNode: helper.node }
}

test('default: register, helper and complete over the host API; the newcomer ends ready with the master key', async () => {
  const { chain, helper, newcomer, newcomerNode } = await hostPair()
  const registered = await json(await newcomer.request('/register', { method: 'POST', headers: auth }))
  const request = chain.mineRequest(unsigned(registered))
  const helped = await json(await helper.request(`/helper/${request.requestId}`, { method: 'POST', headers: auth }))
  assert.equal(helped.decision, 'fulfilled')
  chain.mineFulfill(unsigned(helped))
  const done = await json(await newcomer.request(`/register/${registered.pubkey64 as string}`, { method: 'POST', headers: auth }))
  assert.equal(done.state, 'ready')
  assert.equal(done.xPub, chain.xPub)
  assert.equal(newcomerNode.state, 'ready')
})

test('default: /blobs serves the node archive without the token; other routes need it', async () => {
  const { chain, helper } = await hostPair()
  const [hash] = [...chain.blobs.keys()]
  const res = await helper.request(`/blobs/${hash}`)
  assert.equal(res.status, 200)
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), chain.blobs.get(hash!))
  for (const [method, path] of [
    ['POST', '/bootstrap'],
    ['POST', '/register'],
    ['POST', `/register/0x${'11'.repeat(20)}`],
    ['GET', '/helper/1'],
    ['POST', '/helper/1'],
    ['GET', '/status'],
    ['GET', '/metrics'],
    ['POST', '/member'],
    ['GET', '/rotation'],
    ['POST', '/rotation/propose'],
    ['POST', '/rotation/acknowledge'],
    ['POST', '/rotation/commit'],
    ['POST', '/escrow'],
    ['POST', `/recover/0x${'11'.repeat(20)}`],
  ] as const) {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }] as Record<string, string>[]) {
      const r = await helper.request(path, { method, headers })
      assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}`)
      assert.equal((await json(r)).error?.code, 'unauthorized')
    }
  }
})

test('security: the public /blobs route is rate-limited for all callers together, a 429 with Retry-After', async () => {
  const { chain, helper } = await bootstrapped()
  let seconds = 0
  const app = createHostApp({
    node: helper.node,
    blobs: helper.stores.blobs,
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    monitor: { snapshot: async () => ({}) as never },
    metrics: createMetrics({ processMetrics: false }),
    blobsRate: { perSecond: 2, burst: 3, now: () => seconds },
  })
  const [hash] = [...chain.blobs.keys()]
  for (let i = 0; i < 3; i++) assert.equal((await app.request(`/blobs/${hash}`)).status, 200, `burst ${i}`)
  const limited = await app.request(`/blobs/${hash}`)
  assert.equal(limited.status, 429)
  assert.equal(limited.headers.get('retry-after'), '1')
  assert.equal((await json(limited)).error?.code, 'too_many_requests')
  // Tokens come back with time.
  seconds = 0.5
  assert.equal((await app.request(`/blobs/${hash}`)).status, 200)
  assert.equal((await app.request(`/blobs/${hash}`)).status, 429)
  seconds = 10
  const n = await Promise.all(Array.from({ length: 5 }, () => app.request(`/blobs/${hash}`)))
  assert.deepEqual(n.map((r) => r.status), [200, 200, 200, 429, 429], 'refilled up to the burst, not beyond')
  // The token-guarded routes are not counted.
  assert.equal((await app.request('/status', { headers: auth })).status, 200)
})

test('default: a helper keeps the collateral it judged an answered quote with; /collateral serves it without the token, and it verifies at the decision time', async () => {
  const { chain, helper } = await bootstrapped()
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  let seconds = 0
  const app = createHostApp({
    node: helper.node,
    blobs: helper.stores.blobs,
    keptCollateral: keptCollateralReader(helper.db),
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    monitor: { snapshot: async () => ({}) as never },
    metrics: createMetrics({ processMetrics: false }),
    collateralRate: { perSecond: 1, burst: 3, now: () => seconds },
  })
  const registered = await json(await hostAppOf(newcomer).request('/register', { method: 'POST', headers: auth }))
  const request = chain.mineRequest(unsigned(registered))
  assert.equal((await json(await app.request(`/helper/${request.requestId}`, { method: 'POST', headers: auth }))).decision, 'fulfilled')
  // A request refused (its quote binds another key) keeps nothing: only answered quotes cost the node storage.
  const bad = await registerBlob(chain, { quoteFor: publicKey64(randomBytes(32)) })
  const refused = chain.addRequest(bad.pubkey64, bad.quoteBlobHash, bad.refBlockNumber)
  assert.equal((await app.request(`/helper/${refused.requestId}`, { headers: auth })).status, 422)

  const res = await app.request(`/collateral/${request.quoteBlobHash}`)
  assert.equal(res.status, 200)
  const kept = parseKeptCollateral(await json(res), request.quoteBlobHash)
  assert.ok(Math.abs(kept.judgedAt - Math.floor(Date.now() / 1000)) < 600, 'judged at the verified block time, about now on this chain')
  const { quote } = blobsToEnvelope([bytesToHex(chain.blobs.get(request.quoteBlobHash)!)]) as { quote: Uint8Array }
  const verified = await verifyWithKeptCollateral(quote, kept, { notBefore: kept.judgedAt, notAfter: kept.judgedAt, trustedRootCaDer: [pki.rootCaDer] })
  assert.equal(verified.status, 'UpToDate')
  assert.equal((await json(await app.request(`/collateral/${refused.quoteBlobHash}`))).error?.code, 'not_found')
  assert.equal((await json(await app.request(`/collateral/0x02${'00'.repeat(31)}`))).error?.code, 'bad_request')
  // Public, so rate-limited for all callers together.
  const limited = await app.request(`/collateral/${request.quoteBlobHash}`)
  assert.equal(limited.status, 429)
  assert.equal(limited.headers.get('retry-after'), '1')
  seconds = 1
  assert.equal((await app.request(`/collateral/${request.quoteBlobHash}`)).status, 200)
})

test('security: a refused request is a 422 with its reason, and no transaction', async () => {
  const { chain, helper, helperNode } = await hostPair()
  const blob = await registerBlob(chain, { quoteFor: publicKey64(randomBytes(32)) })
  const request = chain.addRequest(blob.pubkey64, blob.quoteBlobHash, blob.refBlockNumber)
  const res = await helper.request(`/helper/${request.requester}`, { headers: auth })
  assert.equal(res.status, 422)
  const body = await json(res)
  assert.equal(body.error?.code, 'unprocessable')
  assert.equal(body.error?.reason, 'report_data_mismatch')
  assert.equal(body.tx, undefined)
  const status = (await helperNode.status()).requests[0]!
  assert.equal(status.reason, 'report_data_mismatch')
})

test('error: bad parameters, unknown routes, large bodies and conflicts are JSON errors with their status', async () => {
  const { helper, newcomer } = await hostPair()
  const cases: [ReturnType<typeof hostAppOf>, string, RequestInit, number, string][] = [
    [helper, '/helper/0', { headers: auth }, 400, 'bad_request'],
    [helper, '/helper/0xzz', { headers: auth }, 400, 'bad_request'],
    [helper, `/helper/${'9'.repeat(79)}`, { headers: auth }, 400, 'bad_request'],
    [helper, '/helper/77', { headers: auth }, 404, 'not_found'],
    [newcomer, '/register/0x1234', { method: 'POST', headers: auth }, 400, 'bad_request'],
    [newcomer, `/register/0x${'00'.repeat(20)}`, { method: 'POST', headers: auth }, 404, 'not_found'],
    [helper, '/bootstrap', { method: 'POST', headers: auth }, 409, 'conflict'],
    [helper, '/register', { method: 'POST', headers: auth }, 409, 'conflict'],
    [helper, '/blobs/0x02' + '00'.repeat(31), {}, 400, 'bad_request'],
    [helper, '/blobs/0x01' + '00'.repeat(31), {}, 404, 'not_found'],
    [helper, '/nothing', { headers: auth }, 404, 'not_found'],
    // Found by fuzzing: a multipart sign-in form without its boundary made hono's body parser throw (a 500).
    [helper, '/login', { method: 'POST', headers: { origin: 'http://localhost', 'content-type': 'multipart/form-data; boundary=x' }, body: 'token=' }, 400, 'bad_request'],
    [helper, '/register', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: 'x'.repeat(17 * 1024) }, 413, 'payload_too_large'],
  ]
  for (const [app, path, init, status, code] of cases) {
    const res = await app.request(path, init)
    const body = await json(res)
    assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`)
    assert.equal(body.error?.code, code, path)
  }
})

test('default: a helper without a gas key answers 202 needs_mark with its markFresh transaction; once the mark is on chain the same call answers', async () => {
  // The real freshness rule over the in-process chain: the helper decides only on a view that proves its own mark.
  const chain = new FakeChain()
  chain.allowed.add(measurementOf(await provider.getQuote(new Uint8Array(64))).measurementId)
  const helperNode = nodeOn(chain, { context: { freshness: createFreshness({ view: fakeChainView(chain), timeoutMs: 60_000, pollMs: 10 }) } })
  await helperNode.node.start()
  chain.mineBootstrap(unsigned(await helperNode.node.bootstrap()))
  await helperNode.node.bootstrap()
  const helper = hostAppOf(helperNode)
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  const request = chain.mineRequest(unsigned(await newcomer.node.register()))

  const first = await helper.request(`/helper/${request.requestId}`, { method: 'POST', headers: auth })
  assert.equal(first.status, 202)
  const asked = await json(first)
  assert.equal(asked.decision, 'needs_mark')
  const tx = asked.tx as { to: `0x${string}`; data: `0x${string}`; chainId: number }
  // Nothing was decided before the mark: no answer exists, and asking again hands back the same mark.
  assert.equal(chain.requests.get(request.requestId)!.status, 'pending')
  const again = await json(await helper.request(`/helper/${request.requestId}`, { method: 'POST', headers: auth }))
  assert.equal(again.decision, 'needs_mark')
  assert.deepEqual(again.tx, tx, 'the same mark until it is on chain')

  chain.mineMark(tx)
  const answered = await helper.request(`/helper/${request.requestId}`, { method: 'POST', headers: auth })
  assert.equal(answered.status, 200)
  const body = await json(answered)
  assert.equal(body.decision, 'fulfilled', JSON.stringify(body))
})
