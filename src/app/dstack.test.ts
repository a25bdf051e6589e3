import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import { KeymanagerError } from '../errors.ts'
import { appIdForPod, deriveAppKey, deriveKey, getKeyResponse } from '../keys/derive.ts'
import { addressOfPublicKey } from '../keys/signature.ts'
import { verifyGetKeyChain } from '../keys/verifyChain.ts'
import { createMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { generateSimulatedAttestationKey, simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import {
  createDstackApp,
  DSTACK_MAX_BODY_BYTES,
  fixedPodResolver,
  MAX_PATH_BYTES,
  podResolverFromMiddleware,
  type DstackAppDeps,
  type DstackKeySource,
} from './dstack.ts'
import { podIdentity } from './podIdentity.ts'
import { serveUnixSocket } from './socket.ts'

const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const secret = hexToBytes('0101010101010101010101010101010101010101010101010101010101010101')
const silent = pino({ level: 'silent' })
const attestation = generateSimulatedAttestationKey()
const measurement = simulatedMeasurement('dstack-test')
const quoteProvider = simulatedQuoteProvider({ attestationSecretKey: attestation.secretKey, measurement })

const SETTINGS_DIGEST = `0x${'d1'.repeat(32)}` as const

type Options = Partial<DstackAppDeps> & { masterSecret?: MasterSecret }

function appWith(options: Options = {}) {
  const master = options.masterSecret ?? createMasterSecret(secret)
  return createDstackApp({
    resolvePodAppId: options.resolvePodAppId ?? fixedPodResolver('oracle', appIdForPod('oracle')),
    master: options.master ?? (() => master),
    getQuote: options.getQuote ?? ((reportData) => quoteProvider.getQuote(reportData)),
    info: options.info ?? (() => ({ chainId: 31337, registry, settingsDigest: SETTINGS_DIGEST, generation: 1, version: '0.1.0', rev: 'abc123' })),
    logger: options.logger ?? silent,
  })
}

// app.request() has no socket: a pod's address comes from the env hono's node adapter reads (as in pod.test.ts).
const env = { incoming: { socket: { remoteAddress: '10.0.0.9', remotePort: 5000, remoteFamily: 'IPv4' } } }

async function post(app: ReturnType<typeof createDstackApp>, path: string, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  const res = await app.request(path, { method: 'POST', body: text, headers: { 'content-type': 'application/json', ...headers } }, env)
  const raw = await res.text()
  return { status: res.status, raw, json: JSON.parse(raw) as Record<string, unknown>, headers: res.headers }
}

/** Every dstack response: ASCII JSON whose Content-Length is its exact size. */
function assertWireForm(r: { raw: string; headers: Headers }) {
  assert.match(r.raw, /^[\x20-\x7e]*$/, 'ASCII only')
  assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(r.raw)))
  assert.equal(r.headers.get('content-type'), 'application/json')
}

function assertDstackError(r: { status: number; raw: string; json: Record<string, unknown>; headers: Headers }, status: number, pattern: RegExp) {
  assert.equal(r.status, status, r.raw)
  assert.deepEqual(Object.keys(r.json), ['error'])
  assert.equal(typeof r.json.error, 'string')
  assert.match(r.json.error as string, pattern)
  assert.doesNotMatch(r.raw, /\bat .*\.ts:\d+/, 'no stack trace')
  assertWireForm(r)
}

test('default: GetKey returns the derived key and its chain as hex without 0x, equal to MasterSecret.getKey', async () => {
  const master = createMasterSecret(secret)
  const r = await post(appWith({ masterSecret: master }), '/GetKey', { path: '/wallet/0', purpose: 'ethereum' })
  assert.equal(r.status, 200)
  assertWireForm(r)
  assert.deepEqual(Object.keys(r.json), ['key', 'signature_chain'])
  const expected = master.getKey({ appId: appIdForPod('oracle'), path: '/wallet/0', purpose: 'ethereum' })
  assert.equal(r.json.key, bytesToHex(expected.key))
  assert.deepEqual(r.json.signature_chain, expected.signatureChain.map((s) => bytesToHex(s)))
  const verified = verifyGetKeyChain({
    appId: appIdForPod('oracle'),
    key: hexToBytes(r.json.key as string),
    signatureChain: (r.json.signature_chain as string[]).map((s) => hexToBytes(s)),
    purpose: 'ethereum',
    masterAddress: master.address,
  })
  assert.equal(verified.ok, true, JSON.stringify(verified.steps))
})

test('default: GetKey fields default to "" and secp256k1 (protobuf defaults); k256 and "" are secp256k1', async () => {
  const app = appWith()
  const empty = await post(app, '/GetKey', '')
  const explicit = await post(app, '/GetKey', { path: '', purpose: '', algorithm: 'secp256k1' })
  const alias = await post(app, '/GetKey', { algorithm: 'k256' })
  const blank = await post(app, '/GetKey', { algorithm: '' })
  assert.equal(empty.status, 200)
  for (const r of [explicit, alias, blank]) assert.equal(r.raw, empty.raw)
})

test('default: GetKey ignores unknown fields (as prpc/serde does)', async () => {
  const app = appWith()
  const plain = await post(app, '/GetKey', { path: 'p', purpose: 'q' })
  const extra = await post(app, '/GetKey', { path: 'p', purpose: 'q', future_field: [1, 2] })
  assert.equal(extra.raw, plain.raw)
})

test('default: GetKey ed25519 is the RFC 8032 seed at the same HKDF path, chain over the 32-byte public key', async () => {
  const r = await post(appWith(), '/GetKey', { path: 'ssh', purpose: 'login', algorithm: 'ed25519' })
  assert.equal(r.status, 200)
  const appKey = deriveAppKey(secret, appIdForPod('oracle'))
  assert.equal(r.json.key, bytesToHex(deriveKey(appKey, 'ssh')))
  const verified = verifyGetKeyChain({
    appId: appIdForPod('oracle'),
    publicKey: ed25519.getPublicKey(hexToBytes(r.json.key as string)),
    signatureChain: (r.json.signature_chain as string[]).map((s) => hexToBytes(s)),
    purpose: 'login',
    algorithm: 'ed25519',
    masterAddress: createMasterSecret(secret).address,
  })
  assert.equal(verified.ok, true, JSON.stringify(verified.steps))
})

test('default: purpose does not change the key, only signature_chain[0]', async () => {
  const app = appWith()
  const a = await post(app, '/GetKey', { path: 'same', purpose: 'one' })
  const b = await post(app, '/GetKey', { path: 'same', purpose: 'two' })
  assert.equal(a.json.key, b.json.key)
  const [a0, a1] = a.json.signature_chain as string[]
  const [b0, b1] = b.json.signature_chain as string[]
  assert.notEqual(a0, b0)
  assert.equal(a1, b1)
})

test('vectors: dstack simulator GetKey reproduces byte for byte from its app key (pinned app_id)', async () => {
  // The vector file gives the app key and the KMS signature, not the KMS root secret: the guest-agent half
  // (app key → key, signature_chain[0]) reproduces; signature_chain[1] is the KMS's, passed through and verified.
  const v = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-simulator.json', import.meta.url), 'utf8')) as {
    app_id: string
    app_key: string
    app_pub_compressed: string
    kms_signature: string
    kms_root_pub_compressed: string
    kms_root_address: string
    getKey: { path: string; purpose: string; key: string; signature_chain_0: string }[]
  }
  const appKey = hexToBytes(v.app_key)
  const kmsSignature = hexToBytes(v.kms_signature)
  const source: DstackKeySource = {
    address: addressOfPublicKey(hexToBytes(v.kms_root_pub_compressed)),
    publicKey33: hexToBytes(v.kms_root_pub_compressed),
    getKey: ({ path, purpose, algorithm }) => getKeyResponse({ appKey, kmsSignature, path, purpose, algorithm }),
  }
  const app = appWith({ master: () => source, resolvePodAppId: fixedPodResolver('simulator', hexToBytes(v.app_id)) })
  for (const entry of v.getKey) {
    const r = await post(app, '/GetKey', { path: entry.path, purpose: entry.purpose })
    assert.equal(r.status, 200)
    assert.equal(r.json.key, entry.key, entry.path)
    assert.deepEqual(r.json.signature_chain, [entry.signature_chain_0, v.kms_signature], entry.path)
    const verified = verifyGetKeyChain({
      appId: hexToBytes(v.app_id),
      key: hexToBytes(entry.key),
      signatureChain: [hexToBytes(entry.signature_chain_0), kmsSignature],
      purpose: entry.purpose,
      masterAddress: v.kms_root_address,
    })
    assert.equal(verified.ok, true)
    assert.equal(bytesToHex(verified.appPublicKey33!), v.app_pub_compressed)
  }
  const info = await post(app, '/Info', {})
  assert.equal(info.json.app_id, v.app_id)
})

test('error: GetKey refuses malformed bodies and fields with a dstack error, never a crash', async () => {
  const app = appWith()
  const cases: [unknown, RegExp][] = [
    ['{not json', /must be JSON/],
    ['[1,2]', /JSON object, got array/],
    ['null', /JSON object, got null/],
    ['"path"', /JSON object, got string/],
    [{ path: 5 }, /path must be a string, got number/],
    [{ path: null }, /path must be a string, got null/],
    [{ purpose: ['a'] }, /purpose must be a string, got array/],
    [{ purpose: {} }, /purpose must be a string, got object/],
    [{ algorithm: 1 }, /algorithm must be a string, got number/],
    [{ algorithm: null }, /algorithm must be a string, got null/],
    [{ algorithm: 'p256' }, /unsupported key algorithm "p256"/],
    [{ algorithm: 'secp256k1_prehashed' }, /unsupported key algorithm/],
    [{ algorithm: 'Ed25519' }, /unsupported key algorithm/],
    [{ path: 'x'.repeat(MAX_PATH_BYTES + 1) }, /path must be at most 1024 bytes/],
    [{ path: 'é'.repeat(MAX_PATH_BYTES / 2 + 1) }, /path must be at most 1024 bytes/],
    [{ purpose: 'x'.repeat(1025) }, /purpose must be at most 1024 bytes/],
    ['{"path":"a\\ud800b"}', /well-formed Unicode/],
    ['{"purpose":"\\udc00"}', /well-formed Unicode/],
  ]
  for (const [body, pattern] of cases) assertDstackError(await post(app, '/GetKey', body), 400, pattern)
})

test('default: GetKey accepts exactly MAX_PATH_BYTES of UTF-8 and any well-formed Unicode', async () => {
  const app = appWith()
  assert.equal((await post(app, '/GetKey', { path: 'x'.repeat(MAX_PATH_BYTES) })).status, 200)
  const emoji = await post(app, '/GetKey', { path: 'clé/🔑', purpose: '用途' })
  assert.equal(emoji.status, 200)
  assertWireForm(emoji)
})

test('error: an echoed non-ASCII value stays ASCII on the wire (the SDK compares bytes with string length)', async () => {
  const r = await post(appWith(), '/GetKey', { algorithm: 'ünknown🔑' })
  assertDstackError(r, 400, /unsupported key algorithm "ünknown🔑"/)
})

test('error: a body over the limit is refused with 413 before it is parsed', async () => {
  const big = JSON.stringify({ path: 'a', padding: 'x'.repeat(DSTACK_MAX_BODY_BYTES) })
  for (const route of ['/GetKey', '/GetQuote', '/Info', '/Version']) {
    assertDstackError(await post(appWith(), route, big), 413, /at most 16384 bytes/)
  }
})

test('error: 503 with a dstack error while the node is not ready; Info still answers', async () => {
  const notReady = () => {
    throw new KeymanagerError('not_ready', 'node is registering')
  }
  const app = appWith({ master: notReady })
  assertDstackError(await post(app, '/GetKey', { path: 'a' }), 503, /^node is registering$/)
  const info = await post(app, '/Info', {})
  assert.equal(info.status, 200)
  const provider = JSON.parse(info.json.key_provider_info as string) as Record<string, unknown>
  assert.equal(provider.id, '')
  assert.equal(provider.xpub, null)
})

test('security: an unidentified caller gets 403 and no key, quote or info', async () => {
  const refuse = () => {
    throw new KeymanagerError('forbidden', 'cannot tell which pod is calling')
  }
  let quotes = 0
  const app = appWith({
    resolvePodAppId: refuse,
    getQuote: async (reportData) => {
      quotes++
      return quoteProvider.getQuote(reportData)
    },
  })
  for (const route of ['/GetKey', '/GetQuote', '/Info']) {
    assertDstackError(await post(app, route, {}), 403, /cannot tell which pod/)
  }
  assert.equal(quotes, 0)
})

test('security: an unexpected failure is a generic 500, logged without the stack or any key', async () => {
  const lines: string[] = []
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    }),
  )
  const master = createMasterSecret(secret)
  const broken: DstackKeySource = {
    address: master.address,
    publicKey33: master.publicKey33,
    getKey: () => {
      throw new Error('disk on fire')
    },
  }
  const r = await post(appWith({ master: () => broken, logger }), '/GetKey', { path: 'a' })
  assertDstackError(r, 500, /^internal error$/)
  assert.doesNotMatch(r.raw, /disk on fire/)
  assert.equal(lines.length, 1)
  assert.match(lines[0]!, /disk on fire/)
  assert.doesNotMatch(lines[0]!, /"stack"|\bat .*\.ts:\d+/)

  // A successful GetKey logs nothing at all: the derived key never reaches a log line.
  lines.length = 0
  const ok = await post(appWith({ masterSecret: master, logger }), '/GetKey', { path: 'a' })
  assert.equal(ok.status, 200)
  assert.deepEqual(lines, [])
})

test('error: unknown methods and routes answer 404 in the dstack shape', async () => {
  const app = appWith()
  assertDstackError(await post(app, '/GetTlsKey', {}), 404, /no dstack method POST \/GetTlsKey/)
  assertDstackError(await post(app, '/Sign', {}), 404, /no dstack method/)
  const get = await app.request('/GetKey')
  const raw = await get.text()
  assertDstackError({ status: get.status, raw, json: JSON.parse(raw), headers: get.headers }, 404, /no dstack method GET \/GetKey/)
})

test('default: GetQuote pads report_data with zeros to 64 bytes, unhashed, and returns the quote with it', async () => {
  const app = appWith()
  const r = await post(app, '/GetQuote', { report_data: 'deadbeef' })
  assert.equal(r.status, 200)
  assertWireForm(r)
  assert.deepEqual(Object.keys(r.json), ['quote', 'event_log', 'report_data', 'vm_config'])
  const padded = 'deadbeef' + '00'.repeat(60)
  assert.equal(r.json.report_data, padded)
  assert.deepEqual(JSON.parse(r.json.event_log as string), [])
  assert.equal(r.json.vm_config, '')
  const quote = hexToBytes(r.json.quote as string)
  assert.equal(bytesToHex(quote.subarray(568, 632)), padded, 'TDX v4 REPORTDATA @568')

  const full = 'ab'.repeat(64)
  assert.equal((await post(app, '/GetQuote', { report_data: full.toUpperCase() })).json.report_data, full)
  assert.equal((await post(app, '/GetQuote', {})).json.report_data, '00'.repeat(64))
})

test('error: GetQuote refuses report_data that is not hex without 0x, or longer than 64 bytes', async () => {
  let quotes = 0
  const app = appWith({
    getQuote: async (reportData) => {
      quotes++
      return quoteProvider.getQuote(reportData)
    },
  })
  const cases: [unknown, RegExp][] = [
    [{ report_data: 'ab'.repeat(65) }, /at most 64 bytes, got 65/],
    [{ report_data: 'ab'.repeat(5000) }, /at most 64 bytes/],
    [{ report_data: '0xdeadbeef' }, /without a 0x prefix/],
    [{ report_data: 'abc' }, /even number of hex digits/],
    [{ report_data: 'zz' }, /only hex digits/],
    [{ report_data: 12 }, /report_data must be a hex string, got number/],
    [{ report_data: null }, /report_data must be a hex string, got null/],
    ['[]', /JSON object/],
  ]
  for (const [body, pattern] of cases) assertDstackError(await post(app, '/GetQuote', body), 400, pattern)
  assert.equal(quotes, 0)
})

test('security: a quote provider refusal (reserved report data) reaches the caller as a dstack error', async () => {
  const app = appWith({
    getQuote: async () => {
      throw new KeymanagerError('forbidden', 'report data reserved for the keymanager protocol')
    },
  })
  assertDstackError(await post(app, '/GetQuote', { report_data: '00' }), 403, /reserved/)
})

test('default: Info names the pod, its appId, this node key provider and a tcb_info JSON string', async () => {
  const master = createMasterSecret(secret)
  const r = await post(appWith({ masterSecret: master }), '/Info', '{}')
  assert.equal(r.status, 200)
  assertWireForm(r)
  assert.deepEqual(Object.keys(r.json).sort(), [
    'app_cert', 'app_id', 'app_name', 'cloud_product', 'cloud_vendor', 'compose_hash', 'device_id', 'instance_id',
    'key_provider_info', 'mr_aggregated', 'os_image_hash', 'tcb_info', 'vm_config',
  ])
  assert.equal(r.json.app_id, bytesToHex(appIdForPod('oracle')))
  assert.equal(r.json.app_name, 'oracle')
  assert.equal(typeof r.json.tcb_info, 'string')
  const tcb = JSON.parse(r.json.tcb_info as string) as Record<string, unknown>
  assert.equal(tcb.mrtd, bytesToHex(measurement.mrTd))
  assert.equal(tcb.rtmr0, bytesToHex(measurement.rtMr0))
  assert.equal(tcb.rtmr3, bytesToHex(measurement.rtMr3))
  assert.deepEqual(tcb.event_log, [])
  assert.deepEqual(JSON.parse(r.json.key_provider_info as string), {
    name: 'keymanager',
    id: bytesToHex(master.publicKey33),
    chain_id: 31337,
    registry,
    settings_digest: SETTINGS_DIGEST,
    xpub: master.address,
    generation: 1,
  })
})

test('default: Info reads the TCB registers from one quote and caches them; a failed quote is retried', async () => {
  let calls = 0
  let fail = true
  const app = appWith({
    getQuote: async (reportData) => {
      calls++
      if (fail) throw new Error('quote provider starting')
      return quoteProvider.getQuote(reportData)
    },
  })
  const first = await post(app, '/Info', {})
  assert.equal(first.status, 200)
  assert.equal((JSON.parse(first.json.tcb_info as string) as { mrtd: string }).mrtd, '')
  fail = false
  for (let i = 0; i < 3; i++) {
    const r = await post(app, '/Info', {})
    assert.equal((JSON.parse(r.json.tcb_info as string) as { mrtd: string }).mrtd, bytesToHex(measurement.mrTd))
  }
  assert.equal(calls, 2)
})

test('default: Version answers with the node version (the SDK requires it before ed25519)', async () => {
  const r = await post(appWith(), '/Version', '{}')
  assert.equal(r.status, 200)
  assertWireForm(r)
  assert.deepEqual(r.json, { version: '0.1.0', rev: 'abc123' })
})

test('default: podResolverFromMiddleware runs the pod listener identity inside the dstack routes', async () => {
  const identity = podIdentity({ devnet: true, staticNames: {}, reverseLookup: async () => [] })
  const app = appWith({ resolvePodAppId: podResolverFromMiddleware(identity, appIdForPod) })
  const r = await post(app, '/Info', {}, { 'x-keymanager-pod': 'wallet' })
  assert.equal(r.status, 200, r.raw)
  assert.equal(r.json.app_name, 'wallet')
  assert.equal(r.json.app_id, bytesToHex(appIdForPod('wallet')))
  // No header and no address: the middleware's refusal arrives in the dstack shape.
  assertDstackError(await post(app, '/GetKey', {}), 403, /cannot tell which pod/)
  assertDstackError(await post(app, '/GetKey', {}, { 'x-keymanager-pod': 'Not A Name!' }), 400, /pod name must be a DNS name/)
})

test('error: fixedPodResolver checks its pod name and appId once, and hands out copies', () => {
  assert.throws(() => fixedPodResolver('oracle', new Uint8Array(19)), /appId must be 20 bytes, got 19/)
  assert.throws(() => fixedPodResolver('', appIdForPod('x')), /pod name must be a DNS name/)
  const resolve = fixedPodResolver('oracle', appIdForPod('oracle'))
  const first = resolve({} as never) as { appId: Uint8Array }
  first.appId.fill(0)
  assert.deepEqual((resolve({} as never) as { appId: Uint8Array }).appId, appIdForPod('oracle'))
})

test('security: a TypeError from a bug (not from request validation) is a 500 whose message stays in the log', async () => {
  const buggy = () => {
    throw new TypeError("Cannot read properties of undefined (reading 'server')")
  }
  const r = await post(appWith({ resolvePodAppId: buggy }), '/GetKey', {})
  assertDstackError(r, 500, /^internal error$/)
})

test('default: over a real unix socket every answer, errors included, has Content-Length and no chunked encoding', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-dstack-'))
  const server = await serveUnixSocket(appWith(), { path: join(dir, 'dstack.sock') })
  // Written and read the way @phala/dstack-sdk 0.5.8 does it over a socket.
  const raw = (route: string, payload: string) =>
    new Promise<{ head: string; body: string }>((resolve, reject) => {
      const client = connect({ path: server.path }, () => {
        client.write(`POST ${route} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`)
      })
      let data = ''
      client.on('data', (chunk) => {
        data += chunk
        const end = data.indexOf('\r\n\r\n')
        const length = end === -1 ? null : /content-length: (\d+)/i.exec(data.slice(0, end))
        if (length && data.length - end - 4 >= Number(length[1])) client.end()
      })
      client.on('end', () => {
        const end = data.indexOf('\r\n\r\n')
        resolve({ head: data.slice(0, end), body: data.slice(end + 4) })
      })
      client.on('error', reject)
    })
  try {
    const cases: [string, string, number][] = [
      ['/GetKey', '{"path":"a","purpose":"b"}', 200],
      ['/GetQuote', '{"report_data":"00"}', 200],
      ['/Info', '{}', 200],
      ['/Version', '{}', 200],
      ['/GetKey', '{bad', 400],
      ['/GetKey', JSON.stringify({ path: 'x'.repeat(DSTACK_MAX_BODY_BYTES) }), 413],
      ['/Nope', '{}', 404],
    ]
    for (const [route, payload, status] of cases) {
      const { head, body } = await raw(route, payload)
      assert.match(head, new RegExp(`^HTTP/1.1 ${status} `), `${route} ${status}`)
      assert.match(head, new RegExp(`content-length: ${Buffer.byteLength(body)}\\r?$`, 'im'))
      assert.doesNotMatch(head, /transfer-encoding/i)
      JSON.parse(body)
    }
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
