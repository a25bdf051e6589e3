import assert from 'node:assert/strict'
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import { KeymanagerError } from '../errors.ts'
import { appIdForPod, deriveAppKey, deriveKey } from '../keys/derive.ts'
import { verifyGetKeyChain } from '../keys/verifyChain.ts'
import { appCaCertificate, certificatePem, extensionOctets, RATLS_OID, raTlsReportData, readCertificateExtensions, verifyAppCaCertificate } from '../keys/appCa.ts'
import { decodeDstackAttestation } from '../tee/dstackAttestation.ts'
import { replayRtmrs, runtimeEvent, type TdxEvent } from '../tee/eventLog.ts'
import { measurementOf } from '../tee/measurement.ts'
import { createMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import { generateSimulatedAttestationKey, simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { createPodTee } from '../tee/podTee.ts'
import { POD_REPORT_DATA_REFUSED } from '../tee/podQuote.ts'
import { PROTOCOL_MARKER } from '../keys/reportData.ts'
import { dstackQuoteProvider } from '../tee/hardwareQuotes.ts'
import type { QuoteEvidence, QuoteProvider } from '../tee/types.ts'
import { simulatorKeySource, simulatorVectors } from '../../test/simulatorKeySource.ts'
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
const quoteProvider = simulatedQuoteProvider({ attestationSecretKey: attestation.secretKey, measurement, bootEventLog: simulatedBootEventLog('dstack-test') })

const SETTINGS_DIGEST = `0x${'d1'.repeat(32)}` as const

type Options = Partial<DstackAppDeps> & { masterSecret?: MasterSecret; provider?: QuoteProvider }

function appWith(options: Options = {}) {
  const master = options.masterSecret ?? createMasterSecret(secret)
  return createDstackApp({
    resolvePodAppId: options.resolvePodAppId ?? fixedPodResolver('oracle', appIdForPod('oracle')),
    master: options.master ?? (() => master),
    tee: options.tee ?? createPodTee(options.provider ?? quoteProvider),
    info: options.info ?? (() => ({ chainId: 31337, registry, settingsDigest: SETTINGS_DIGEST, generation: 1, version: '0.1.0', rev: 'abc123' })),
    logger: options.logger ?? silent,
    ...(options.now ? { now: options.now } : {}),
  })
}

/** A provider that counts the quotes asked of it and can be made to fail. */
function countingProvider(base: QuoteProvider = quoteProvider) {
  const state = { quotes: 0, fail: false }
  const provider: QuoteProvider = {
    name: 'counting',
    teeType: base.teeType,
    getQuote: async (reportData) => {
      state.quotes++
      if (state.fail) throw new Error('quote provider starting')
      return base.getQuote(reportData)
    },
    quoteWithEvidence: async (reportData) => {
      state.quotes++
      if (state.fail) throw new Error('quote provider starting')
      return base.quoteWithEvidence!(reportData)
    },
  }
  return { provider, state }
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
  const v = simulatorVectors
  const kmsSignature = hexToBytes(v.kms_signature)
  const source = simulatorKeySource()
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
  const { provider, state } = countingProvider()
  const app = appWith({ resolvePodAppId: refuse, provider })
  const bodies: Record<string, unknown> = {
    '/GetKey': {},
    '/GetQuote': { report_data: 'ff'.repeat(64) },
    '/Attest': { report_data: 'ff'.repeat(64) },
    '/Info': {},
    '/GetTlsKey': { usage_ra_tls: true },
    '/Sign': { algorithm: 'secp256k1', data: '00' },
    '/Verify': { algorithm: 'secp256k1', data: '00', signature: '00'.repeat(64), public_key: '02' + '11'.repeat(32) },
    '/EmitEvent': { event: 'x', payload: '' },
  }
  for (const [route, body] of Object.entries(bodies)) {
    assertDstackError(await post(app, route, body), 403, /cannot tell which pod/)
  }
  assert.equal(state.quotes, 0)
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
    appCa: (appId) => master.appCa(appId),
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
  assertDstackError(await post(app, '/prpc/Tappd.DeriveKey', {}), 404, /no dstack method POST \/prpc\/Tappd.DeriveKey/)
  assertDstackError(await post(app, '/GpuInfo', {}), 404, /no dstack method/)
  const get = await app.request('/GetKey')
  const raw = await get.text()
  assertDstackError({ status: get.status, raw, json: JSON.parse(raw), headers: get.headers }, 404, /no dstack method GET \/GetKey/)
})

test('default: GetQuote pads report_data with zeros to 64 bytes, unhashed, and returns the quote with it', async () => {
  const app = appWith()
  const r = await post(app, '/GetQuote', { report_data: 'deadbeef' + '00'.repeat(59) + '01' })
  assert.equal(r.status, 200, r.raw)
  assertWireForm(r)
  assert.deepEqual(Object.keys(r.json), ['quote', 'event_log', 'report_data', 'vm_config'])
  const padded = 'deadbeef' + '00'.repeat(59) + '01'
  assert.equal(r.json.report_data, padded)
  // The boot log without its payloads (as dstack strips them), every digest kept.
  assert.deepEqual(JSON.parse(r.json.event_log as string), simulatedBootEventLog('dstack-test').map((e) => ({ ...e, event_payload: '' })))
  assert.equal(r.json.vm_config, '')
  const quote = hexToBytes(r.json.quote as string)
  assert.equal(bytesToHex(quote.subarray(568, 632)), padded, 'TDX v4 REPORTDATA @568')

  const full = 'ab'.repeat(64)
  assert.equal((await post(app, '/GetQuote', { report_data: full.toUpperCase() })).json.report_data, full)
  // 32 bytes or fewer (dstack apps' usual hash) are zero-padded and served (docs/protocol.md#report-data).
  const hash = 'c0'.repeat(32)
  assert.equal((await post(app, '/GetQuote', { report_data: hash })).json.report_data, hash + '00'.repeat(32))
  assert.equal((await post(app, '/GetQuote', {})).json.report_data, '00'.repeat(64))
  // Only data ending in the protocol marker is refused.
  assertDstackError(await post(app, '/GetQuote', { report_data: 'ab'.repeat(32) + bytesToHex(PROTOCOL_MARKER) }), 403, new RegExp(POD_REPORT_DATA_REFUSED.slice(0, 30)))
})

test('error: GetQuote refuses report_data that is not hex without 0x, or longer than 64 bytes', async () => {
  const { provider, state } = countingProvider()
  const app = appWith({ provider })
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
  for (const route of ['/GetQuote', '/Attest']) {
    for (const [body, pattern] of cases) assertDstackError(await post(app, route, body), 400, pattern)
  }
  assert.equal(state.quotes, 0)
})

test('security: no route yields a quote over protocol-shaped report data, and a provider failure is a dstack error', async () => {
  const { provider, state } = countingProvider()
  const app = appWith({ provider })
  for (const route of ['/GetQuote', '/Attest']) {
    assertDstackError(await post(app, route, { report_data: 'aa'.repeat(32) + bytesToHex(PROTOCOL_MARKER) }), 403, /reserved for keymanager protocol quotes/)
  }
  assert.equal(state.quotes, 0)
  state.fail = true
  assertDstackError(await post(app, '/GetQuote', { report_data: 'aa'.repeat(64) }), 502, /^quote provider starting$/)
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
  assert.deepEqual(Object.keys(tcb), ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mr_aggregated', 'os_image_hash', 'compose_hash', 'device_id', 'event_log', 'app_compose'])
  assert.equal(r.json.tcb_info, JSON.stringify(tcb, null, 2), 'pretty JSON, as serde_json::to_string_pretty')
  assert.equal(tcb.mrtd, bytesToHex(measurement.mrTd))
  assert.equal(tcb.rtmr0, bytesToHex(measurement.rtMr0))
  assert.equal(tcb.rtmr3, bytesToHex(measurement.rtMr3))
  assert.deepEqual(tcb.event_log, simulatedBootEventLog('dstack-test'), 'the full log, payloads included (dstack Info)')
  // mr_aggregated as dstack: SHA-256(MRTD ‖ RTMR0-2 ‖ RTMR3 replayed from runtime events); config ids are zero.
  const aggregated = createHash('sha256').update(Buffer.concat([measurement.mrTd, measurement.rtMr0, measurement.rtMr1, measurement.rtMr2, new Uint8Array(48)])).digest('hex')
  assert.equal(r.json.mr_aggregated, aggregated)
  assert.equal(tcb.mr_aggregated, aggregated)
  for (const empty of ['instance_id', 'compose_hash', 'os_image_hash', 'device_id', 'vm_config', 'cloud_vendor', 'cloud_product']) assert.equal(r.json[empty], '', empty)
  // app_cert: this app's CA certificate, which verifies against xPub.
  assert.equal(verifyAppCaCertificate(r.json.app_cert as string, { masterAddress: master.address, appId: appIdForPod('oracle') }).ok, true)
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
  const { provider, state } = countingProvider()
  state.fail = true
  const app = appWith({ provider })
  const first = await post(app, '/Info', {})
  assert.equal(first.status, 200)
  assert.equal((JSON.parse(first.json.tcb_info as string) as { mrtd: string }).mrtd, '')
  assert.equal(first.json.mr_aggregated, '')
  state.fail = false
  for (let i = 0; i < 3; i++) {
    const r = await post(app, '/Info', {})
    assert.equal((JSON.parse(r.json.tcb_info as string) as { mrtd: string }).mrtd, bytesToHex(measurement.mrTd))
  }
  assert.equal(state.quotes, 2)
})

test('default: Info passes the platform\'s device id, app compose and cloud vendor/product through; a failed read leaves them empty and is retried', async () => {
  const compose = JSON.stringify({ manifest_version: 2, name: 'oracle-cvm', docker_compose_file: 'services: {}' })
  const state = { reads: 0, fail: true }
  const provider: QuoteProvider = {
    ...quoteProvider,
    name: 'with-platform',
    platformInfo: async () => {
      state.reads++
      if (state.fail) throw new Error('agent starting')
      return { deviceId: 'ab'.repeat(32), appCompose: compose, cloudVendor: 'Example Cloud', cloudProduct: 'tdx-small' }
    },
  }
  const app = appWith({ provider })
  const first = await post(app, '/Info', {})
  assert.equal(first.status, 200)
  for (const empty of ['device_id', 'cloud_vendor', 'cloud_product']) assert.equal(first.json[empty], '', empty)
  assert.equal((JSON.parse(first.json.tcb_info as string) as { app_compose: string }).app_compose, '')
  state.fail = false
  for (let i = 0; i < 2; i++) {
    const r = await post(app, '/Info', {})
    assertWireForm(r)
    assert.equal(r.json.device_id, 'ab'.repeat(32))
    assert.equal(r.json.cloud_vendor, 'Example Cloud')
    assert.equal(r.json.cloud_product, 'tdx-small')
    const tcb = JSON.parse(r.json.tcb_info as string) as { app_compose: string; device_id: string }
    assert.equal(tcb.app_compose, compose)
    assert.equal(tcb.device_id, 'ab'.repeat(32))
  }
  assert.equal(state.reads, 2, 'read again after the failure, then kept')
})

test('vectors: Info on a real dstack 0.6.0 agent\'s quote and log gives dstack\'s app facts: boot events, not vm_config, for os_image_hash', async () => {
  const fixture = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-agent-getquote.json', import.meta.url), 'utf8')) as Record<string, string>
  // The production path: provider dstack reads the agent's answer (runtime digests filled in) over its socket.
  const dir = mkdtempSync(join(tmpdir(), 'km-dstack-agent-'))
  const agent = createHttpServer((req, res) => {
    req.resume()
    const payload = JSON.stringify({ quote: fixture.quote, event_log: fixture.event_log, report_data: fixture.report_data, vm_config: fixture.vm_config })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload)
  })
  await new Promise<void>((resolve) => agent.listen(join(dir, 'dstack.sock'), resolve))
  let evidence: QuoteEvidence
  try {
    evidence = await dstackQuoteProvider({ socketPath: join(dir, 'dstack.sock') }).quoteWithEvidence!(hexToBytes(fixture.report_data!))
  } finally {
    agent.close()
    rmSync(dir, { recursive: true, force: true })
  }
  // That TD, as the node's provider (its one quote stands for every later one).
  const provider: QuoteProvider = { name: 'dstack-0.6.0', teeType: 'tdx', getQuote: async () => evidence.quote, quoteWithEvidence: async () => evidence }
  const r = await post(appWith({ provider }), '/Info', {})
  assert.equal(r.status, 200, r.raw)
  assertWireForm(r)
  // Expected values straight from the vector: dstack's decode_app_info reads these boot events (before system-ready).
  const boot = new Map((JSON.parse(fixture.event_log!) as { imr: number; event: string; event_payload: string }[]).filter((e) => e.imr === 3).map((e) => [e.event, e.event_payload]))
  const vmConfig = JSON.parse(fixture.vm_config!) as { os_image_hash: string }
  assert.notEqual(boot.get('os-image-hash'), vmConfig.os_image_hash, 'the vector tells the two apart')
  assert.equal(r.json.os_image_hash, boot.get('os-image-hash'))
  assert.equal(r.json.compose_hash, boot.get('compose-hash'))
  assert.equal(r.json.instance_id, boot.get('instance-id'))
  assert.equal(r.json.vm_config, fixture.vm_config)
  // The TD body of a v4 quote starts at byte 48: MRTD @136, MRCONFIGID @184, MROWNER @232, MROWNERCONFIG @280, RTMR0-3 @328.
  const quote = hexToBytes(fixture.quote!)
  const td = (offset: number) => quote.subarray(48 + offset, 48 + offset + 48)
  const tcb = JSON.parse(r.json.tcb_info as string) as Record<string, unknown>
  assert.deepEqual([tcb.mrtd, tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3], [136, 328, 376, 424, 472].map((o) => bytesToHex(td(o))))
  assert.notDeepEqual(td(184), new Uint8Array(48), 'a non-zero MRCONFIGID: mr_aggregated takes the config ids')
  const aggregated = createHash('sha256').update(Buffer.concat([136, 328, 376, 424, 472, 184, 232, 280].map(td))).digest('hex')
  assert.equal(r.json.mr_aggregated, aggregated)
  assert.deepEqual([tcb.mr_aggregated, tcb.os_image_hash, tcb.compose_hash], [aggregated, boot.get('os-image-hash'), boot.get('compose-hash')])
})

test('default: Version answers with the node version (the SDK requires it before ed25519)', async () => {
  const r = await post(appWith(), '/Version', '{}')
  assert.equal(r.status, 200)
  assertWireForm(r)
  assert.deepEqual(r.json, { version: '0.1.0', rev: 'abc123' })
})

test('default: podResolverFromMiddleware runs the pod listener identity inside the dstack routes', async () => {
  const identity = podIdentity({ devnet: true, staticNames: {} })
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
      ['/GetQuote', `{"report_data":"${'ab'.repeat(64)}"}`, 200],
      ['/GetQuote', `{"report_data":"${'00'.repeat(32) + bytesToHex(PROTOCOL_MARKER)}"}`, 403],
      ['/Attest', `{"report_data":"${'ab'.repeat(64)}"}`, 200],
      ['/GetTlsKey', '{"subject":"a","usage_ra_tls":true,"with_app_info":true}', 200],
      ['/Sign', '{"algorithm":"ed25519","data":"00"}', 200],
      ['/EmitEvent', '{"event":"e","payload":"00"}', 200],
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

// ---- GetTlsKey ----------------------------------------------------------------------------------------------------

function tlsKeyOf(r: { json: Record<string, unknown> }) {
  const [leafPem, caPem] = r.json.certificate_chain as string[]
  return { key: createPrivateKey(r.json.key as string), leaf: new X509Certificate(leafPem!), ca: new X509Certificate(caPem!), leafPem: leafPem!, caPem: caPem! }
}

test('default: GetTlsKey answers a PKCS#8 P-256 key and [leaf, app CA]; the leaf chains to the CA and binds its key in the quote', async () => {
  const master = createMasterSecret(secret)
  const app = appWith({ masterSecret: master })
  const r = await post(app, '/GetTlsKey', { subject: 'oracle.example', alt_names: ['oracle.example', '10.0.0.9'], usage_ra_tls: true, usage_server_auth: true, usage_client_auth: false })
  assert.equal(r.status, 200, r.raw)
  assertWireForm(r)
  assert.deepEqual(Object.keys(r.json), ['key', 'certificate_chain'])
  assert.match(r.json.key as string, /^-----BEGIN PRIVATE KEY-----\n/)
  const { key, leaf, ca, caPem } = tlsKeyOf(r)
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  assert.ok(leaf.checkPrivateKey(key))
  assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey))
  assert.equal(leaf.subject, 'CN=oracle.example')
  assert.equal(leaf.subjectAltName, 'DNS:oracle.example, IP Address:10.0.0.9')
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'])
  assert.equal(caPem, certificatePem(appCaCertificate(appIdForPod('oracle'), master.appCa(appIdForPod('oracle')))))
  assert.equal(verifyAppCaCertificate(caPem, { masterAddress: master.address, appId: appIdForPod('oracle') }).ok, true)

  const ext = readCertificateExtensions(leaf.raw)
  const quote = extensionOctets(ext.get(RATLS_OID.tdxQuote)!)
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  assert.deepEqual(measurementOf(quote).reportData, raTlsReportData(spki), 'report data = SHA-512("ratls-cert:" ‖ leaf SPKI)')
  const eventLog = JSON.parse(Buffer.from(extensionOctets(ext.get(RATLS_OID.eventLog)!)).toString()) as TdxEvent[]
  const rtmrs = replayRtmrs(eventLog).map(bytesToHex)
  assert.deepEqual(rtmrs, [376, 424, 472, 520].map((o) => bytesToHex(quote.subarray(o, o + 48))))
  assert.deepEqual(extensionOctets(ext.get(RATLS_OID.appId)!), appIdForPod('oracle'))
  assert.equal(ext.has(RATLS_OID.appInfo), false)
})

test('default: GetTlsKey honours the usages, validity and app info, and derives the same key for a path on every node', async () => {
  const now = 1_800_000_000
  const a = appWith({ masterSecret: createMasterSecret(secret), now: () => now })
  const b = appWith({ masterSecret: createMasterSecret(secret), now: () => now })
  const plain = tlsKeyOf(await post(a, '/GetTlsKey', {}))
  assert.equal(plain.leaf.validFrom, 'Jan  1 00:00:00 1975 GMT', 'rcgen default notBefore, as dstack')
  assert.equal(Date.parse(plain.leaf.validTo) / 1000, now + 3650 * 86_400, 'notAfter: now + 10 years, as dstack')
  assert.equal(plain.leaf.keyUsage, undefined, 'no extended key usage unless asked')
  assert.equal(readCertificateExtensions(plain.leaf.raw).has(RATLS_OID.tdxQuote), false)

  const both = tlsKeyOf(await post(a, '/GetTlsKey', { usage_server_auth: true, usage_client_auth: true, not_before: 1_700_000_000, not_after: 1_900_000_000, with_app_info: true }))
  assert.deepEqual(both.leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  assert.equal(both.leaf.validFrom, 'Nov 14 22:13:20 2023 GMT')
  assert.equal(both.leaf.validTo, 'Mar 17 17:46:40 2030 GMT')
  const info = extensionOctets(readCertificateExtensions(both.leaf.raw).get(RATLS_OID.appInfo)!)
  assert.equal(info[0], 0x98, 'a msgpack array of the 8 AppInfo fields')
  assert.deepEqual(info.subarray(1, 23), Uint8Array.of(0xc4, 20, ...appIdForPod('oracle')))

  const fresh1 = await post(a, '/GetTlsKey', {})
  const fresh2 = await post(a, '/GetTlsKey', {})
  assert.notEqual(fresh1.json.key, fresh2.json.key, 'no path: a fresh key each time')
  const onA = await post(a, '/GetTlsKey', { path: 'site/tls' })
  const onB = await post(b, '/GetTlsKey', { path: 'site/tls' })
  assert.equal(onA.json.key, onB.json.key, 'a path: the same key on every node')
  assert.notEqual((await post(a, '/GetTlsKey', { path: 'site/other' })).json.key, onA.json.key)
  // Another app's key at the same path differs (keys are per app).
  const wallet = appWith({ masterSecret: createMasterSecret(secret), resolvePodAppId: fixedPodResolver('wallet', appIdForPod('wallet')) })
  assert.notEqual((await post(wallet, '/GetTlsKey', { path: 'site/tls' })).json.key, onA.json.key)
})

test('error: GetTlsKey refuses malformed fields; 503 before the node is ready', async () => {
  const app = appWith()
  const cases: [unknown, RegExp][] = [
    [{ subject: 5 }, /subject must be a string, got number/],
    [{ subject: 'x'.repeat(257) }, /subject must be at most 256 bytes/],
    [{ alt_names: 'a.example' }, /alt_names must be an array of strings, got string/],
    [{ alt_names: [1] }, /alt_names\[0\] must be a string, got number/],
    [{ alt_names: ['bad name'] }, /alt_names\[0\] must be an IP address or a DNS name/],
    [{ alt_names: ['ü.example'] }, /alt_names\[0\] must be an IP address or a DNS name/],
    [{ alt_names: Array(33).fill('a') }, /at most 32 names/],
    [{ usage_ra_tls: 'yes' }, /usage_ra_tls must be a boolean, got string/],
    [{ with_app_info: 1 }, /with_app_info must be a boolean/],
    [{ not_before: -1 }, /not_before must be a non-negative integer/],
    [{ not_after: 1.5 }, /not_after must be a non-negative integer/],
    [{ not_after: '100' }, /not_after must be a non-negative integer/],
    [{ not_after: 253_402_300_800 }, /not_after must be at most 253402300799/],
    [{ not_before: 10, not_after: 10 }, /not_before must be earlier than not_after/],
    [{ not_before: 253_402_300_799 }, /earlier than the default not_after/],
    [{ path: 'x'.repeat(1025) }, /path must be at most 1024 bytes/],
  ]
  for (const [body, pattern] of cases) assertDstackError(await post(app, '/GetTlsKey', body), 400, pattern)
  const notReady = appWith({ master: () => { throw new KeymanagerError('not_ready', 'node is registering') } })
  assertDstackError(await post(notReady, '/GetTlsKey', {}), 503, /^node is registering$/)
})

// ---- Sign / Verify ------------------------------------------------------------------------------------------------

test('default: Sign signs with GetKey("vms", "signing") and returns [signature, GetKey chain]; Verify agrees', async () => {
  const master = createMasterSecret(secret)
  const app = appWith({ masterSecret: master })
  const data = Buffer.from('price=3000').toString('hex')
  for (const algorithm of ['secp256k1', 'k256', 'ed25519', 'secp256k1_prehashed'] as const) {
    const payload = algorithm === 'secp256k1_prehashed' ? createHash('sha256').update(Buffer.from(data, 'hex')).digest('hex') : data
    const r = await post(app, '/Sign', { algorithm, data: payload })
    assert.equal(r.status, 200, r.raw)
    assertWireForm(r)
    assert.deepEqual(Object.keys(r.json), ['signature', 'signature_chain', 'public_key'])
    const chain = r.json.signature_chain as string[]
    assert.equal(chain.length, 3)
    assert.equal(chain[0], r.json.signature)
    const keyAlgorithm = algorithm === 'ed25519' ? 'ed25519' : 'secp256k1'
    const issued = master.getKey({ appId: appIdForPod('oracle'), path: 'vms', purpose: 'signing', algorithm: keyAlgorithm })
    assert.deepEqual(chain.slice(1), issued.signatureChain.map((s) => bytesToHex(s)))
    const verified = verifyGetKeyChain({
      appId: appIdForPod('oracle'),
      publicKey: hexToBytes(r.json.public_key as string),
      signatureChain: chain.slice(1).map((s) => hexToBytes(s)),
      purpose: 'signing',
      algorithm: keyAlgorithm,
      masterAddress: master.address,
    })
    assert.equal(verified.ok, true, JSON.stringify(verified.steps))
    const check = (body: Record<string, unknown>) => post(app, '/Verify', { algorithm, data: payload, signature: r.json.signature, public_key: r.json.public_key, ...body })
    assert.deepEqual((await check({})).json, { valid: true })
    const tampered = payload.slice(0, -2) + (payload.endsWith('00') ? '01' : '00')
    assert.deepEqual((await check({ data: tampered })).json, { valid: false })
  }
  // secp256k1 signs SHA-256(data): the same signature as prehashed over that digest.
  const plain = await post(app, '/Sign', { algorithm: 'secp256k1', data })
  const pre = await post(app, '/Sign', { algorithm: 'secp256k1_prehashed', data: createHash('sha256').update(Buffer.from(data, 'hex')).digest('hex') })
  assert.equal(plain.json.signature, pre.json.signature)
})

test('error: Sign and Verify refuse bad algorithms, hex and keys in the dstack shape', async () => {
  const app = appWith()
  const signCases: [unknown, RegExp][] = [
    [{ algorithm: 'rsa', data: '00' }, /unsupported algorithm "rsa"/],
    [{ data: '00' }, /unsupported algorithm ""/],
    [{ algorithm: 7, data: '00' }, /algorithm must be a string/],
    [{ algorithm: 'secp256k1_prehashed', data: '00' }, /Pre-hashed signing requires a 32-byte digest, but received 1 bytes/],
    [{ algorithm: 'ed25519', data: '0x00' }, /without a 0x prefix/],
    [{ algorithm: 'ed25519', data: 'a' }, /even number of hex digits/],
    [{ algorithm: 'ed25519', data: 'ab'.repeat(6 * 1024 + 1) }, /at most 6144 bytes/],
  ]
  for (const [body, pattern] of signCases) assertDstackError(await post(app, '/Sign', body), 400, pattern)
  const good = await post(app, '/Sign', { algorithm: 'secp256k1', data: '00' })
  const verifyCases: [unknown, RegExp][] = [
    [{ algorithm: 'secp256k1', data: '00', signature: good.json.signature, public_key: '04' }, /SEC1 keys are 33 or 65 bytes/],
    [{ algorithm: 'secp256k1', data: '00', signature: '00', public_key: good.json.public_key }, /expected 64 bytes/],
    [{ algorithm: 'ed25519', data: '00', signature: '00'.repeat(64), public_key: 'ff'.repeat(32) }, /not an ed25519 point/],
    [{ algorithm: 'p256', data: '00', signature: '', public_key: '' }, /unsupported algorithm/],
  ]
  for (const [body, pattern] of verifyCases) assertDstackError(await post(app, '/Verify', body), 400, pattern)
  const notReady = appWith({ master: () => { throw new KeymanagerError('not_ready', 'node is registering') } })
  assertDstackError(await post(notReady, '/Sign', { algorithm: 'ed25519', data: '00' }), 503, /registering/)
  assert.deepEqual((await post(notReady, '/Verify', { algorithm: 'secp256k1', data: '00', signature: good.json.signature, public_key: good.json.public_key })).json, { valid: true }, 'Verify needs no key')
})

// ---- Attest -------------------------------------------------------------------------------------------------------

test('default: Attest answers dstack\'s SCALE attestation: the quote, full event log, runtime events, report data', async () => {
  const provider = simulatedQuoteProvider({ measurement, bootEventLog: simulatedBootEventLog('dstack-test') })
  await provider.emitEvent!('boot-step', Uint8Array.of(1))
  const app = appWith({ provider })
  const reportData = 'cd'.repeat(40)
  const r = await post(app, '/Attest', { report_data: reportData })
  assert.equal(r.status, 200, r.raw)
  assert.deepEqual(Object.keys(r.json), ['attestation'])
  const decoded = decodeDstackAttestation(hexToBytes(r.json.attestation as string))
  assert.equal(bytesToHex(decoded.reportData), reportData + '00'.repeat(24))
  assert.deepEqual(measurementOf(decoded.quote).reportData, decoded.reportData)
  assert.deepEqual(decoded.eventLog, [...simulatedBootEventLog('dstack-test'), runtimeEvent('boot-step', Uint8Array.of(1))])
  assert.deepEqual(decoded.runtimeEvents, [{ event: 'boot-step', payload: Uint8Array.of(1) }])
  assert.equal(decoded.config, '')
  const sgx: QuoteProvider = { name: 'sgx', teeType: 'sgx', getQuote: async () => new Uint8Array(0) }
  assertDstackError(await post(appWith({ provider: sgx }), '/Attest', { report_data: reportData }), 422, /this TEE is sgx/)
})

// ---- EmitEvent ----------------------------------------------------------------------------------------------------

test('default: EmitEvent extends RTMR3 under the app\'s name; the next GetQuote and Info show it and replay to it', async () => {
  const provider = simulatedQuoteProvider({ measurement, bootEventLog: simulatedBootEventLog('dstack-test') })
  const app = appWith({ provider })
  const rd = { report_data: 'ab'.repeat(64) }
  const before = await post(app, '/GetQuote', rd)
  const infoBefore = JSON.parse((await post(app, '/Info', {})).json.tcb_info as string) as { rtmr3: string }
  const r = await post(app, '/EmitEvent', { event: 'model-loaded', payload: 'c0ffee' })
  assert.equal(r.status, 200, r.raw)
  assert.equal(r.raw, '{}')
  const after = await post(app, '/GetQuote', rd)
  const rtmr3 = (q: unknown) => bytesToHex(hexToBytes(q as string).subarray(520, 568))
  assert.notEqual(rtmr3(after.json.quote), rtmr3(before.json.quote))
  const log = JSON.parse(after.json.event_log as string) as TdxEvent[]
  const name = `${bytesToHex(appIdForPod('oracle'))}:model-loaded`
  assert.deepEqual(log.at(-1), runtimeEvent(name, hexToBytes('c0ffee')))
  assert.equal(bytesToHex(replayRtmrs(log)[3]!), rtmr3(after.json.quote))
  const infoAfter = JSON.parse((await post(app, '/Info', {})).json.tcb_info as string) as { rtmr3: string; event_log: TdxEvent[] }
  assert.notEqual(infoAfter.rtmr3, infoBefore.rtmr3, 'Info is not served from a stale cache')
  assert.equal(infoAfter.rtmr3, rtmr3(after.json.quote))
  assert.equal(infoAfter.event_log.at(-1)!.event, name)
})

test('security: EmitEvent waits for a ready node, names only the caller\'s app, and is bounded', async () => {
  const provider = simulatedQuoteProvider({ measurement })
  const { provider: counted, state } = countingProvider(provider)
  const notReady = appWith({ provider: { ...counted, emitEvent: provider.emitEvent }, master: () => { throw new KeymanagerError('not_ready', 'node is registering') } })
  assertDstackError(await post(notReady, '/EmitEvent', { event: 'early', payload: '' }), 503, /registering/)
  assert.equal((await provider.quoteWithEvidence!(new Uint8Array(64).fill(1))).eventLog.length, 0, 'RTMR3 untouched')
  assert.equal(state.quotes, 0)

  const app = appWith({ provider })
  const cases: [unknown, RegExp][] = [
    [{ payload: '00' }, /event must not be empty/],
    [{ event: 'a:b', payload: '' }, /without spaces or ":"/],
    [{ event: 'a b', payload: '' }, /without spaces or ":"/],
    [{ event: 'é', payload: '' }, /visible ASCII/],
    [{ event: 'x'.repeat(129), payload: '' }, /at most 128 bytes/],
    [{ event: 'x', payload: 'ab'.repeat(4097) }, /payload must be at most 4096 bytes/],
    [{ event: 'x', payload: 'xyz' }, /even number of hex digits|only hex digits/],
    [{ event: 5, payload: '' }, /event must be a string/],
  ]
  for (const [body, pattern] of cases) assertDstackError(await post(app, '/EmitEvent', body), 400, pattern)
  for (let i = 0; i < 64; i++) assert.equal((await post(app, '/EmitEvent', { event: `e${i}`, payload: '' })).status, 200)
  assertDstackError(await post(app, '/EmitEvent', { event: 'one-more', payload: '' }), 409, /emitted its 64 events/)
  const names = (await provider.quoteWithEvidence!(new Uint8Array(64).fill(1))).eventLog.map((e) => e.event)
  assert.ok(names.every((n) => n.startsWith(`${bytesToHex(appIdForPod('oracle'))}:`)))

  const noEvents: QuoteProvider = { name: 'sgx', teeType: 'sgx', getQuote: async () => new Uint8Array(0) }
  assertDstackError(await post(appWith({ provider: noEvents }), '/EmitEvent', { event: 'x', payload: '' }), 422, /cannot extend runtime measurements/)
})

test('security: GetKey keeps the keymanager. purposes for the key manager\'s own chains', async () => {
  assertDstackError(await post(appWith(), '/GetKey', { path: 'x', purpose: 'keymanager.app-ca.v1' }), 400, /reserved for the key manager/)
  assert.equal((await post(appWith(), '/GetKey', { path: 'x', purpose: 'app-ca' })).status, 200)
})
