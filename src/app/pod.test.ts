import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { hexToBytes, recoverTypedDataAddress, type Hex } from 'viem'
import { appIdForPod, deriveSealkey } from '../keys/derive.ts'
import { toHex0x, toHexPlain } from '../keys/bytes.ts'
import { PROTOCOL_MARKER } from '../keys/reportData.ts'
import { KEYMANAGER_TYPES } from '../keys/typedData.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { KeymanagerError } from '../errors.ts'
import { createPodApp } from './pod.ts'

const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const secret = hexToBytes('0x0101010101010101010101010101010101010101010101010101010101010101')
const logger = pino({ level: 'silent' })

const secret2 = hexToBytes('0x0202020202020202020202020202020202020202020202020202020202020202')

type AppOptions = {
  state?: 'ready' | 'registering'
  devnet?: boolean
  names?: Record<string, string>
  /** A node at generation 2 holding 1 (revoked or not); generation 3 was purged. */
  rotated?: { gen1Revoked: boolean }
  pins?: Record<string, number>
}

function appWith(options: AppOptions = {}) {
  const master = createMasterSecret(secret)
  const master2 = createMasterSecret(secret2)
  const rotated = options.rotated
  const current = rotated ? master2 : master
  const node = {
    state: options.state ?? 'ready',
    generation: rotated ? 2 : 1,
    master: () => current,
    masterOf(g: number) {
      if (g === 1) return { secret: master, revoked: rotated?.gen1Revoked ?? false }
      if (g === 2 && rotated) return { secret: master2, revoked: false }
      if (g === 3 && rotated) throw new KeymanagerError('gone', 'generation 3 was purged')
      throw new KeymanagerError('not_found', `generation ${g} is not held`)
    },
    generations: () => [
      { generation: 1, xPub: master.address, current: !rotated, revoked: rotated?.gen1Revoked ?? false, purged: false, retiresAt: 0, held: true },
      ...(rotated ? [{ generation: 2, xPub: master2.address, current: true, revoked: false, purged: false, retiresAt: 0, held: true }] : []),
    ],
  } as const
  return createPodApp({
    node,
    ...(options.pins ? { generationPins: options.pins } : {}),
    chainId: 31337,
    registry,
    settingsDigest: `0x${'d1'.repeat(32)}`,
    appIds: { pinned: hexToBytes('0x5bb4ff9a3837357f19dc176407a5709c62eb6c56') },
    identity: { devnet: options.devnet ?? true, staticNames: options.names ?? {} },
    quoteProvider: { name: 'echo', teeType: 'tdx', getQuote: async (reportData: Uint8Array) => reportData },
    version: '0.0.0-test',
    logger,
  })
}

// app.request() has no socket: the pod's address comes from the env hono's node adapter reads.
const env = (address: string) => ({ incoming: { socket: { remoteAddress: address, remotePort: 5000, remoteFamily: 'IPv4' } } })

test('default: /sealkey is the dstack-derived key of the pod, with its appId and generation', async () => {
  const res = await appWith().request('/sealkey', { headers: { 'x-keymanager-pod': 'app' } })
  assert.equal(res.status, 200)
  const body = (await res.json()) as { key: Hex; appId: Hex; generation: number }
  assert.equal(body.appId, toHex0x(appIdForPod('app')))
  assert.equal(body.key, toHex0x(deriveSealkey(secret, appIdForPod('app'))))
  assert.equal(body.generation, 1)
})

test('default: a pinned appId is used for its pod name', async () => {
  const res = await appWith().request('/sealkey', { headers: { 'x-keymanager-pod': 'pinned' } })
  const body = (await res.json()) as { appId: Hex }
  assert.equal(body.appId, '0x5bb4ff9a3837357f19dc176407a5709c62eb6c56')
})

test('default: /attest signs EIP-712 Attestation(hostname, appData) with the master key, 0x optional', async () => {
  const app = appWith()
  const appData = '0x' + 'cd'.repeat(32)
  for (const path of [appData, appData.slice(2)]) {
    const res = await app.request(`/attest/${path}`, { headers: { 'x-keymanager-pod': 'oracle' } })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { hostname: string; appData: Hex; signature: Hex; signer: Hex; registry: Hex; chainId: number }
    assert.equal(body.hostname, 'oracle')
    assert.equal(body.appData, appData)
    const signer = await recoverTypedDataAddress({
      domain: { name: 'KeyManager', version: '1', chainId: 31337, verifyingContract: registry },
      types: KEYMANAGER_TYPES,
      primaryType: 'Attestation',
      message: { hostname: 'oracle', appData: appData as Hex },
      signature: body.signature,
    })
    assert.equal(signer, body.signer)
    assert.equal(body.chainId, 31337)
  }
})

test('error: not ready is 503 JSON', async () => {
  const res = await appWith({ state: 'registering' }).request('/sealkey', { headers: { 'x-keymanager-pod': 'app' } })
  assert.equal(res.status, 503)
  assert.deepEqual(await res.json(), { error: { code: 'not_ready', message: 'node is registering' } })
})

test('error: appdata that is not 32 bytes of hex is 400 naming the argument', async () => {
  const app = appWith()
  for (const bad of ['zz', '0x12', 'ab'.repeat(31), 'ab'.repeat(33), '0x' + 'xy'.repeat(32), '0X' + 'ab'.repeat(32)]) {
    const res = await app.request(`/attest/${bad}`, { headers: { 'x-keymanager-pod': 'app' } })
    assert.equal(res.status, 400, bad)
    const body = (await res.json()) as { error: { code: string; message: string } }
    assert.equal(body.error.code, 'bad_request')
    assert.match(body.error.message, /appdata/)
  }
})

test('security: outside devnet mode the header is ignored; the name comes from the static map, nothing else without DNS identity', async () => {
  const app = appWith({ devnet: false, names: { '10.0.0.5': 'billing' } })
  const asHeader = await app.request('/sealkey', { headers: { 'x-keymanager-pod': 'billing' } }, env('10.0.0.7'))
  assert.equal(asHeader.status, 403, 'a header must not name the pod outside devnet mode')
  const fromMap = (await (await app.request('/sealkey', {}, env('10.0.0.5'))).json()) as { appId: Hex }
  assert.equal(fromMap.appId, toHex0x(appIdForPod('billing')))
  const mapped = (await (await app.request('/sealkey', {}, env('::ffff:10.0.0.5'))).json()) as { appId: Hex }
  assert.equal(mapped.appId, toHex0x(appIdForPod('billing')), 'an IPv4-mapped IPv6 peer is the IPv4 address')
  assert.equal((await app.request('/sealkey', {}, env('10.0.0.9'))).status, 403)
})

test('default: the dstack guest-agent routes share the listener and the pod identity', async () => {
  const res = await appWith().request('/GetKey', {
    method: 'POST',
    headers: { 'x-keymanager-pod': 'app', 'content-type': 'application/json' },
    body: JSON.stringify({ path: 'wallet', purpose: 'signing' }),
  })
  assert.equal(res.status, 200)
  const body = (await res.json()) as { key: string; signature_chain: string[] }
  const expected = createMasterSecret(secret).getKey({ appId: appIdForPod('app'), path: 'wallet', purpose: 'signing' })
  assert.equal(body.key, Buffer.from(expected.key).toString('hex'))
  assert.equal(body.signature_chain.length, 2)
})

test('security: dstack GetQuote on the pod listener refuses protocol-shaped report data, serves a 32-byte hash', async () => {
  const getQuote = (reportData: string) =>
    appWith().request('/GetQuote', {
      method: 'POST',
      headers: { 'x-keymanager-pod': 'app', 'content-type': 'application/json' },
      body: JSON.stringify({ report_data: reportData }),
    })
  const refused = await getQuote('ab'.repeat(32) + toHexPlain(PROTOCOL_MARKER))
  assert.equal(refused.status, 403)
  assert.match(((await refused.json()) as { error: string }).error, /reserved for keymanager protocol quotes/)
  const served = await getQuote('ab'.repeat(32))
  assert.equal(served.status, 200)
  assert.equal(((await served.json()) as { report_data: string }).report_data, 'ab'.repeat(32) + '00'.repeat(32))
})

const pod = (name: string) => ({ headers: { 'x-keymanager-pod': name } })

test('default: after a rotation /sealkey is the current generation and ?generation=1 the key from before it', async () => {
  const before = (await (await appWith().request('/sealkey', pod('app'))).json()) as { key: Hex }
  const app = appWith({ rotated: { gen1Revoked: false } })
  const now = (await (await app.request('/sealkey', pod('app'))).json()) as { key: Hex; generation: number }
  assert.equal(now.generation, 2)
  assert.equal(now.key, toHex0x(deriveSealkey(secret2, appIdForPod('app'))))
  const old = await app.request('/sealkey?generation=1', pod('app'))
  assert.equal(old.status, 200)
  const oldBody = (await old.json()) as { key: Hex; generation: number; revoked?: boolean }
  assert.deepEqual([oldBody.key, oldBody.generation, oldBody.revoked], [before.key, 1, undefined])
  const list = (await (await app.request('/generations', pod('app'))).json()) as { current: number; generations: { generation: number; current: boolean }[] }
  assert.equal(list.current, 2)
  assert.deepEqual(list.generations.map((g) => [g.generation, g.current]), [[1, false], [2, true]])
  const attest = (await (await app.request(`/attest/${'ab'.repeat(32)}`, pod('app'))).json()) as { generation: number }
  assert.equal(attest.generation, 2)
})

test('default: a revoked generation is served flagged "revoked": true; a purged one is 410; an unknown one 404', async () => {
  const app = appWith({ rotated: { gen1Revoked: true } })
  const revoked = (await (await app.request('/sealkey?generation=1', pod('app'))).json()) as { revoked?: boolean; key: Hex }
  assert.equal(revoked.revoked, true)
  assert.equal(revoked.key, toHex0x(deriveSealkey(secret, appIdForPod('app'))))
  const purged = await app.request('/sealkey?generation=3', pod('app'))
  assert.equal(purged.status, 410)
  assert.equal(((await purged.json()) as { error: { code: string } }).error.code, 'gone')
  assert.equal((await app.request('/sealkey?generation=9', pod('app'))).status, 404)
})

test('error: ?generation must be a decimal from 1 to 2^53-1', async () => {
  const app = appWith({ rotated: { gen1Revoked: false } })
  for (const bad of ['0', '-1', '01', '1.5', 'x', '9007199254740992', '', '0x1']) {
    const res = await app.request(`/sealkey?generation=${encodeURIComponent(bad)}`, pod('app'))
    assert.equal(res.status, 400, bad)
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /generation must be a decimal/)
  }
})

test('security: GetKey pinned to a generation stays byte-identical after a rotation; a pin to a revoked generation fails closed', async () => {
  type Answer = { key?: string; public_key?: string; error?: string }
  const call = async (app: ReturnType<typeof appWith>, route: '/GetKey' | '/Sign', name: string) => {
    const body = route === '/GetKey' ? { path: '/wallet/0', purpose: 'ethereum' } : { algorithm: 'secp256k1', data: '0102' }
    const res = await app.request(route, { method: 'POST', headers: { 'x-keymanager-pod': name, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: (await res.json()) as Answer }
  }
  // Sign uses the same pinned key (GetKey of its path and purpose): its public key follows the pin as GetKey's key does.
  for (const [route, field] of [['/GetKey', 'key'], ['/Sign', 'public_key']] as const) {
    const before = await call(appWith({ pins: { wallet: 1 } }), route, 'wallet')
    const after = await call(appWith({ rotated: { gen1Revoked: false }, pins: { wallet: 1 } }), route, 'wallet')
    assert.equal(after.status, 200, route)
    assert.equal(after.body[field], before.body[field], route)
    const unpinned = await call(appWith({ rotated: { gen1Revoked: false }, pins: { wallet: 1 } }), route, 'other')
    assert.notEqual(unpinned.body[field], (await call(appWith(), route, 'other')).body[field], `${route}: an unpinned pod follows the current generation`)
    const closed = await call(appWith({ rotated: { gen1Revoked: true }, pins: { wallet: 1 } }), route, 'wallet')
    assert.equal(closed.status, 403, route)
    assert.match(closed.body.error ?? '', /pinned for this pod, is revoked/)
    assert.equal(closed.body[field], undefined, route)
  }
})
