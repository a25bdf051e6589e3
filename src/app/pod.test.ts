import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { hexToBytes, recoverTypedDataAddress, type Hex } from 'viem'
import { appIdForPod, deriveSealkey } from '../keys/derive.ts'
import { toHex0x, toHexPlain } from '../keys/bytes.ts'
import { PROTOCOL_MARKER } from '../keys/reportData.ts'
import { KEYMANAGER_TYPES } from '../keys/typedData.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { createPodApp } from './pod.ts'

const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const secret = hexToBytes('0x0101010101010101010101010101010101010101010101010101010101010101')
const logger = pino({ level: 'silent' })

function appWith(options: { state?: 'ready' | 'registering'; devnet?: boolean; names?: Record<string, string> } = {}) {
  const master = createMasterSecret(secret)
  const node = {
    state: options.state ?? 'ready',
    generation: 1,
    master: () => master,
  } as const
  return createPodApp({
    node,
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
