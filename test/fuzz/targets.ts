// Property-based fuzzing (fast-check) of everything that reads attacker bytes: the pod listener (its routes and the
// dstack routes on it), the host listener (token routes, status page and sign-in), a per-pod unix socket (raw bytes),
// the blob envelope codec, the quote parser and verifier, the measured and host settings, and the CLI flags.
// Properties, for every input: no crash (only the module's own error family is thrown), no 5xx, every error a
// JSON body of the documented shape with no stack trace, and no master secret in any response. `npm run fuzz` runs
// them at 10^6 inputs in total (scripts/fuzz.ts); test/fuzz.test.ts runs a short fixed-seed slice in `npm test`.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import pino from 'pino'
import { bytesToHex, hexToBytes } from 'viem'
import { createDstackApp, fixedPodResolver } from '../../src/app/dstack.ts'
import { createHostApp } from '../../src/app/host.ts'
import { createPodApp, dstackDeps } from '../../src/app/pod.ts'
import { serveUnixSocket } from '../../src/app/socket.ts'
import { decodeEnvelope, encodeEnvelope, blobsToEnvelope, type Envelope } from '../../src/chain/envelope.ts'
import { EnvelopeError } from '../../src/chain/errors.ts'
import { parseHostSettings, parseMeasuredSettings, resolveAlerts } from '../../src/config.ts'
import { runDerive } from '../../src/cli/derive.ts'
import { readDeploySettings } from '../../src/cli/deploy.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../../src/devnet/simulated.ts'
import { KeymanagerError } from '../../src/errors.ts'
import { appIdForPod } from '../../src/keys/derive.ts'
import { createMetrics } from '../../src/monitor/metrics.ts'
import { createAlerts } from '../../src/monitor/alerts.ts'
import { withPodMetrics } from '../../src/monitor/instrument.ts'
import { createMonitor } from '../../src/monitor/monitor.ts'
import { createMasterSecret } from '../../src/secret/masterSecret.ts'
import { createCursorStore } from '../../src/store/cursor.ts'
import { measurementOf } from '../../src/tee/measurement.ts'
import { QuoteVerificationError } from '../../src/tee/types.ts'
import { bootstrapped, platform, verifier, removeNodeDirs } from '../inProcessNode.ts'

export type FuzzTarget = {
  name: string
  /** Share of the total number of inputs. */
  share: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each target's input type is its own
  setup(): Promise<{ property: fc.IRawProperty<any, boolean>; teardown?: () => Promise<void> }>
}

const silent = pino({ level: 'silent' })
const MASTER = hexToBytes('0x5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed')
/** The master secret as it could leak: hex (either case, with or without 0x) and base64. */
const secretForms = (secret: Uint8Array) => [bytesToHex(secret).slice(2), Buffer.from(secret).toString('base64')]
const STACK_TRACE = /\bat .*\.(ts|js|tsx):\d+|node:internal/

// ---- HTTP requests ---------------------------------------------------------------------------------------------

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'] as const
const KNOWN_SEGMENTS = [
  'sealkey', 'attest', 'healthz', 'openapi.json', 'GetKey', 'GetQuote', 'Info', 'Version', 'GetTlsKey', 'Attest', 'EmitEvent', 'Sign',
  'Verify', 'helper', 'register',
  'bootstrap', 'status', 'metrics', 'blobs', 'login', 'logout', '', '..', '.', '%', '%00', '%zz', '%2F', '0', '1',
] as const

const hexString = fc
  .tuple(fc.boolean(), fc.uint8Array({ maxLength: 80 }), fc.boolean())
  .map(([prefix, bytes, upper]) => (prefix ? '0x' : '') + (upper ? bytesToHex(bytes).slice(2).toUpperCase() : bytesToHex(bytes).slice(2)))
const decimal = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 260n }).map(String), fc.stringMatching(/^[0-9]{1,90}$/))
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_SEGMENTS) },
  { weight: 2, arbitrary: hexString },
  { weight: 1, arbitrary: decimal },
  { weight: 2, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.stringMatching(/^[!-~]{0,40}$/) },
)
const path = fc
  .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.option(fc.string({ maxLength: 30 }).map(encodeURIComponent), { nil: undefined }))
  .map(([segments, query]) => `/${segments.join('/')}${query === undefined ? '' : `?${query}`}`)

const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 100, unit: 'binary' }), hexString, fc.constant(null))
/** Bodies shaped like the dstack requests (GetKey, GetQuote), with every field's value from anywhere. */
const dstackBody = fc
  .record(
    {
      path: fc.oneof(fc.string({ maxLength: 600, unit: 'binary' }), jsonish),
      purpose: fc.oneof(fc.string({ maxLength: 300, unit: 'binary' }), jsonish),
      algorithm: fc.oneof(fc.constantFrom('secp256k1', 'k256', 'ed25519', 'ED25519', ''), jsonish),
      report_data: fc.oneof(hexString, jsonish),
      subject: fc.oneof(fc.string({ maxLength: 300 }), jsonish),
      alt_names: fc.oneof(fc.array(fc.string({ maxLength: 40 }), { maxLength: 5 }), jsonish),
      not_before: fc.oneof(fc.integer(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String), jsonish),
      not_after: fc.oneof(fc.integer(), fc.maxSafeNat(), jsonish),
      usage_ra_tls: fc.oneof(fc.boolean(), jsonish),
      usage_server_auth: fc.oneof(fc.boolean(), jsonish),
      usage_client_auth: fc.oneof(fc.boolean(), jsonish),
      with_app_info: fc.oneof(fc.boolean(), jsonish),
      event: fc.oneof(fc.string({ maxLength: 1100, unit: 'binary' }), jsonish),
      payload: fc.oneof(hexString, jsonish),
      data: fc.oneof(hexString, jsonish),
      signature: fc.oneof(hexString, jsonish),
      public_key: fc.oneof(hexString, jsonish),
    },
    { requiredKeys: [] },
  )
  .map((value) => JSON.stringify(value))
const body = fc.oneof(
  { weight: 4, arbitrary: dstackBody },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.nat({ max: 40_000 }).map((n) => '{"path":"' + 'a'.repeat(n) + '"}') },
)
const headerValue = fc.oneof(fc.constantFrom('app', 'oracle', 'pinned', '', ' app', 'APP', 'a'.repeat(300)), fc.stringMatching(/^[ -~]{0,80}$/))

export type FuzzRequest = { method: (typeof METHODS)[number]; path: string; headers: Record<string, string>; body?: string }

export function requests(extraHeaders: fc.Arbitrary<Record<string, string>> = fc.constant({})): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      method: fc.constantFrom(...METHODS),
      path,
      pod: fc.option(headerValue, { nil: undefined }),
      contentType: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', ''), {
        nil: undefined,
      }),
      extra: extraHeaders,
      body,
    })
    .map(({ method, path, pod, contentType, extra, body }) => ({
      method,
      path,
      headers: {
        ...(pod === undefined ? {} : { 'x-keymanager-pod': pod }),
        ...(contentType === undefined ? {} : { 'content-type': contentType }),
        ...extra,
      },
      ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
    }))
}

/** A request the fetch API can carry (header values it refuses are the client's problem, not the server's). */
export function toRequest(r: FuzzRequest): Request | undefined {
  try {
    return new Request(`http://localhost${r.path}`, { method: r.method, headers: r.headers, ...(r.body === undefined ? {} : { body: r.body }) })
  } catch {
    return undefined
  }
}

/** What every answer must be: below 500, an error in one of the two documented shapes, no stack, no master secret. */
export async function checkResponse(res: Response, r: FuzzRequest, secrets: string[]): Promise<void> {
  const text = await res.text()
  assert.ok(res.status < 500, `${r.method} ${r.path}: status ${res.status} ${text.slice(0, 300)}`)
  assert.doesNotMatch(text, STACK_TRACE, 'no stack trace')
  const lower = text.toLowerCase()
  for (const form of secrets) assert.ok(!lower.includes(form.toLowerCase()) && !text.includes(form), 'no master secret in a response')
  if (res.status >= 400 && r.method !== 'HEAD' && (res.headers.get('content-type') ?? '').includes('json')) {
    const parsed = JSON.parse(text) as { error?: unknown }
    const error = parsed.error
    const documented =
      typeof error === 'string' ||
      (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string' && typeof (error as { message?: unknown }).message === 'string')
    assert.ok(documented, `error shape: ${text.slice(0, 200)}`)
  }
}

type Fetchable = { request: (input: Request, init?: undefined, env?: unknown) => Response | Promise<Response> }

function routeProperty(app: Fetchable, secrets: string[], arbitrary = requests(), env?: unknown) {
  return fc.asyncProperty(arbitrary, async (r) => {
    const request = toRequest(r)
    fc.pre(request !== undefined)
    await checkResponse(await app.request(request!, undefined, env), r, secrets)
  })
}

// app.request() has no socket: the pod's address comes from the env hono's node adapter reads (as in pod.test.ts).
const podEnv = { incoming: { socket: { remoteAddress: '10.0.0.9', remotePort: 5000, remoteFamily: 'IPv4' } } }

function podDeps(options: { devnet: boolean }) {
  const master = createMasterSecret(MASTER)
  const quoteProvider = simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('fuzz') })
  return {
    node: {
      state: 'ready' as const,
      generation: 1,
      master: () => master,
      // One generation, held: /sealkey?generation=1 answers, any other generation is 404 (fuzzed query strings).
      masterOf: (g: number) => {
        if (g === 1) return { secret: master, revoked: false }
        throw new KeymanagerError('not_found', `generation ${g} is not held`)
      },
      generations: () => [{ generation: 1, xPub: master.address, current: true, revoked: false, purged: false, retiresAt: 0, held: true }],
    },
    chainId: 31337,
    registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' as const,
    settingsDigest: `0x${'d1'.repeat(32)}` as const,
    appIds: { pinned: hexToBytes('0x5bb4ff9a3837357f19dc176407a5709c62eb6c56') },
    identity: {
      devnet: options.devnet,
      staticNames: { '10.0.0.9': 'oracle' },
      reverseLookup: async () => [],
    },
    quoteProvider,
    version: '0.0.0-fuzz',
    logger: silent,
  }
}

// ---- structured inputs -----------------------------------------------------------------------------------------

const envelope: fc.Arbitrary<Envelope> = fc.oneof(
  fc.record({
    kind: fc.constant('bootstrap' as const),
    teeType: fc.constantFrom('tdx' as const, 'sgx' as const),
    quote: fc.uint8Array({ minLength: 1, maxLength: 2000 }),
    masterPubkey64: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    settingsDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
  fc.record({
    kind: fc.constant('register' as const),
    teeType: fc.constantFrom('tdx' as const, 'sgx' as const),
    quote: fc.uint8Array({ minLength: 1, maxLength: 2000 }),
    pubkey64: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    refBlockNumber: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    refBlockHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    settingsDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
  fc.record({
    kind: fc.constant('onboard' as const),
    generation: fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }),
    entries: fc.uniqueArray(
      fc.record({ requestId: fc.bigInt({ min: 1n, max: 2n ** 256n - 1n }), ciphertext: fc.uint8Array({ minLength: 93, maxLength: 93 }) }),
      { minLength: 1, maxLength: 8, selector: (entry) => entry.requestId },
    ),
  }),
)

/** Mutations of valid bytes: flip, set, cut, extend, splice. Most bugs live near the valid inputs. */
function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0xc0, 0xf7, 0xf8, 0xb7, 0xb8) }),
    fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ op: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  )
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([bytes, edits]) => {
    let out = Uint8Array.from(bytes)
    for (const e of edits) {
      const at = out.length === 0 ? 0 : ('at' in e ? e.at : 0) % out.length
      if (e.op === 'flip' && out.length > 0) out[at] = out[at]! ^ (1 << e.bit)
      else if (e.op === 'set' && out.length > 0) out[at] = e.value
      else if (e.op === 'cut') out = out.subarray(0, at)
      else if (e.op === 'extend') out = Uint8Array.from([...out, ...e.bytes])
      else if (e.op === 'splice') out = Uint8Array.from([...out.subarray(0, at), ...e.bytes, ...out.subarray(at + e.bytes.length)])
    }
    return out
  })
}

/** Runs `f`; anything it throws must be one of `allowed`, with a one-line message. */
function onlyThrows(f: () => unknown, allowed: (error: unknown) => boolean, what: string): void {
  try {
    f()
  } catch (error) {
    assert.ok(allowed(error), `${what}: unexpected ${(error as Error)?.name}: ${(error as Error)?.message}`)
  }
}

const oneLineError = (error: unknown) => error instanceof Error && !error.message.includes('\n') && !STACK_TRACE.test(error.message)

/** A JSON value with `replacement` at a random place of `value` (or a key removed, or one added). */
function mutatedJson(base: unknown): fc.Arbitrary<unknown> {
  const paths: string[][] = []
  const walk = (v: unknown, at: string[]) => {
    paths.push(at)
    if (v && typeof v === 'object') for (const [k, inner] of Object.entries(v)) walk(inner, [...at, k])
  }
  walk(base, [])
  const replacement = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(-1, 0, 1, 2 ** 53, 1e308, '', 'none', 'dev-file', 'simulated', 'dstack', 'tdx', '0x', '__proto__', true, null, [], {}),
    hexString,
  )
  const edit = fc.record({ path: fc.constantFrom(...paths), op: fc.constantFrom('set', 'delete', 'add'), key: fc.string({ maxLength: 12 }), value: replacement })
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    let out = structuredClone(base) as unknown
    for (const e of edits) {
      if (e.path.length === 0) {
        if (e.op === 'set') out = e.value
        continue
      }
      let parent = out as Record<string, unknown>
      for (const k of e.path.slice(0, -1)) parent = (parent && typeof parent === 'object' ? parent[k] : undefined) as Record<string, unknown>
      if (!parent || typeof parent !== 'object') continue
      const last = e.path.at(-1)!
      if (e.op === 'set') parent[last] = e.value
      else if (e.op === 'delete') delete parent[last]
      else Object.defineProperty(parent, e.key, { value: e.value, enumerable: true, configurable: true, writable: true })
    }
    return out
  })
}

const MEASURED = {
  version: 1,
  chain: { chainId: 1, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
  quote: { provider: 'tdx' },
  seal: 'dstack',
  pods: { sockets: [{ path: '/var/run/keymanager/app/dstack.sock', pod: 'app' }], names: { '10.0.0.9': 'app' }, appIds: { app: '0x5bb4ff9a3837357f19dc176407a5709c62eb6c56' } },
  maxReferenceAge: 64,
}
const HOST = {
  dataDir: 'data',
  chain: { rpcUrl: 'http://127.0.0.1:8545', fromBlock: 0 },
  blobs: { kind: 'beacon', url: 'http://127.0.0.1:5052', peers: [{ url: 'http://10.0.0.2:8081' }] },
  pod: { host: '0.0.0.0', port: 80 },
  host: { host: '127.0.0.1', port: 8081, tokenFile: 'host.token' },
  collateral: { pccsUrl: 'https://pccs.example:8081/sgx/certification/v4' },
  auto: { enabled: true, register: true, help: true, maxBatch: 50 },
  log: { level: 'info' },
}

const DERIVE_FLAGS = ['--master-secret', '--master-secret-file', '--app-id', '--path', '--purpose', '--algorithm', '--json', '--help', '-x', '--', '--unknown']

// ---- the targets ----------------------------------------------------------------------------------------------

export const FUZZ_TARGETS: FuzzTarget[] = [
  {
    name: 'pod listener (devnet identity): /sealkey, /attest, dstack routes, anything',
    share: 0.25,
    async setup() {
      const app = withPodMetrics(createPodApp(podDeps({ devnet: true })), createMetrics({ processMetrics: false }))
      return { property: routeProperty(app, secretForms(MASTER), requests(), podEnv) }
    },
  },
  {
    name: 'pod listener (production identity: static names, reverse DNS)',
    share: 0.15,
    async setup() {
      const app = withPodMetrics(createPodApp(podDeps({ devnet: false })), createMetrics({ processMetrics: false }))
      return { property: routeProperty(app, secretForms(MASTER), requests(), podEnv) }
    },
  },
  {
    name: 'dstack routes as served on a pod socket (fixed pod)',
    share: 0.15,
    async setup() {
      const deps = podDeps({ devnet: false })
      const master = deps.node.master()
      const app = withPodMetrics(
        createDstackApp(dstackDeps(deps, fixedPodResolver('oracle', appIdForPod('oracle')), () => master)),
        createMetrics({ processMetrics: false }),
      )
      const dstackRequests = requests().map((r) => ({ ...r, method: 'POST' as const, body: r.body ?? '{}' }))
      return { property: routeProperty(app, secretForms(MASTER), fc.oneof(requests(), dstackRequests)) }
    },
  },
  {
    name: 'host listener: token routes over a ready in-process node, status page, sign-in',
    share: 0.1,
    async setup() {
      const { helper, chain } = await bootstrapped()
      const token = 'fuzz-host-token-0123456789abcdef0123'
      const metrics = createMetrics({ processMetrics: false })
      const alertSettings = resolveAlerts(undefined)
      const monitor = createMonitor({
        metrics,
        node: helper.node,
        cursor: createCursorStore(helper.db),
        blobs: helper.stores.blobs,
        checkPlatform: async () => ({ ok: false, checkedAt: 0, reason: 'not_checked', message: 'fuzz' }),
        alerts: createAlerts({
          settings: { ...alertSettings, minGasBalanceWei: BigInt(alertSettings.minGasBalanceWei) },
          logger: silent,
          metrics,
          meta: helper.stores.meta,
          now: () => Math.floor(Date.now() / 1000),
        }),
        peers: [],
        logger: silent,
        now: () => Math.floor(Date.now() / 1000),
      })
      const app = createHostApp({ node: helper.node, blobs: helper.stores.blobs, token, logger: silent, monitor, metrics })
      const login = await app.request('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
        body: `token=${token}`,
      })
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
      const knownBlob = [...chain.blobs.keys()][0]!
      const hostHeaders = fc.record(
        {
          authorization: fc.oneof(fc.constant(`Bearer ${token}`), fc.constant(`Bearer ${token}`), headerValue.map((v) => `Bearer ${v}`), headerValue),
          cookie: fc.oneof(fc.constant(cookie), headerValue),
          origin: fc.constantFrom('http://localhost', 'http://evil.example', 'null'),
          'x-status-fragment': fc.constantFrom('1', '0'),
        },
        { requiredKeys: [] },
      )
      const hostRequests = fc.oneof(
        requests(hostHeaders),
        requests(hostHeaders).map((r) => ({ ...r, path: `/blobs/${knownBlob}` })),
        requests(hostHeaders).map((r) => ({ ...r, method: 'POST' as const, path: '/login', body: `token=${encodeURIComponent(r.body ?? '')}` })),
      )
      return {
        property: routeProperty(app, [...secretForms(helper.node.master().exportForSealing((s) => Uint8Array.from(s))), token], hostRequests),
        teardown: async () => {
          helper.node.stop()
          helper.db.close()
          removeNodeDirs()
        },
      }
    },
  },
  {
    name: 'unix socket: raw bytes and malformed HTTP/1.1 to a served dstack app',
    share: 0.01,
    async setup() {
      const deps = podDeps({ devnet: false })
      const master = deps.node.master()
      const dir = mkdtempSync(join(tmpdir(), 'km-fuzz-sock-'))
      const server = await serveUnixSocket(
        withPodMetrics(createDstackApp(dstackDeps(deps, fixedPodResolver('oracle', appIdForPod('oracle')), () => master)), createMetrics({ processMetrics: false })),
        { path: join(dir, 'dstack.sock') },
      )
      const raw = fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        fc
          .record({
            method: fc.constantFrom('POST', 'GET', 'PRI', 'X', ''),
            route: fc.oneof(fc.constantFrom('/GetKey', '/GetQuote', '/Info', '/Version', '*', ''), fc.stringMatching(/^[!-~]{0,30}$/)),
            version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/9.9', ''),
            headers: fc.array(fc.tuple(fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Host', 'Content-Type', 'Expect', 'X'), fc.stringMatching(/^[ -~]{0,20}$/)), {
              maxLength: 5,
            }),
            body: fc.oneof(dstackBody, fc.string({ maxLength: 100 })),
            lengthDelta: fc.integer({ min: -5, max: 5 }),
          })
          .map(({ method, route, version, headers, body, lengthDelta }) =>
            Buffer.from(
              `${method} ${route} ${version}\r\nHost: localhost\r\nContent-Length: ${Math.max(0, Buffer.byteLength(body) + lengthDelta)}\r\n` +
                headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
                `\r\n${body}`,
            ),
          ),
      )
      const exchange = (bytes: Uint8Array) =>
        new Promise<string>((resolve) => {
          const socket = connect({ path: server.path })
          let data = ''
          const timer = setTimeout(() => socket.destroy(), 1000)
          socket.on('data', (chunk) => (data += chunk.toString('latin1')))
          socket.on('close', () => {
            clearTimeout(timer)
            resolve(data)
          })
          socket.on('error', () => undefined)
          socket.end(bytes)
        })
      const secrets = secretForms(MASTER)
      let runs = 0
      return {
        property: fc.asyncProperty(raw, async (bytes) => {
          const answer = await exchange(bytes)
          for (const status of answer.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)) assert.ok(Number(status[1]) < 500, `status ${status[1]}: ${answer.slice(0, 200)}`)
          assert.doesNotMatch(answer, STACK_TRACE)
          for (const form of secrets) assert.ok(!answer.toLowerCase().includes(form.toLowerCase()))
          // The server is still there and still right after whatever came before.
          if (++runs % 50 === 0) {
            const ok = await exchange(Buffer.from('POST /Version HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'))
            assert.match(ok, /^HTTP\/1\.1 200/)
          }
        }),
        teardown: async () => {
          await server.close()
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  },
  {
    name: 'envelope codec: decode(mutated valid envelopes, random bytes, blobs) throws EnvelopeError only; encode/decode round trip',
    share: 0.14,
    async setup() {
      const property = fc.property(
        fc.oneof(
          envelope.map((e) => ({ kind: 'roundtrip' as const, e })),
          mutated(envelope.map(encodeEnvelope)).map((bytes) => ({ kind: 'bytes' as const, bytes })),
          fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'bytes' as const, bytes })),
          fc.uint8Array({ maxLength: 200 }).map((prefix) => ({ kind: 'blob' as const, bytes: prefix })),
        ),
        (input) => {
          if (input.kind === 'roundtrip') {
            // structuredClone: fast-check's records have a null prototype, decoded envelopes do not.
            assert.deepEqual(decodeEnvelope(encodeEnvelope(input.e)), structuredClone(input.e))
            return
          }
          if (input.kind === 'bytes') {
            onlyThrows(
              () => {
                const decoded = decodeEnvelope(input.bytes)
                // Canonical: what decodes re-encodes to the same bytes (one envelope, one encoding).
                assert.deepEqual(encodeEnvelope(decoded), input.bytes)
              },
              (e) => e instanceof EnvelopeError,
              'decodeEnvelope',
            )
            return
          }
          const blob = new Uint8Array(131072)
          for (let i = 0; i < input.bytes.length; i++) blob[1 + Math.floor(i / 31) * 32 + (i % 31)] = input.bytes[i]!
          onlyThrows(() => blobsToEnvelope([blob]), (e) => e instanceof EnvelopeError, 'blobsToEnvelope')
        },
      )
      return { property: property }
    },
  },
  {
    name: 'quote parser: measurementOf(mutated Intel and simulated quotes, random bytes) throws QuoteVerificationError only',
    share: 0.1,
    async setup() {
      const fixtures = join(import.meta.dirname, '..', 'fixtures', 'dcap')
      const simulated = await simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('fuzz') }).getQuote(new Uint8Array(64))
      const quotes = [new Uint8Array(readFileSync(join(fixtures, 'tdx_quote'))), new Uint8Array(readFileSync(join(fixtures, 'sgx_quote'))), simulated]
      const property = fc.property(fc.oneof(mutated(fc.constantFrom(...quotes)), fc.uint8Array({ maxLength: 1200 })), (bytes) =>
        onlyThrows(() => measurementOf(bytes), (e) => e instanceof QuoteVerificationError && oneLineError(e), 'measurementOf'),
      )
      return { property: property }
    },
  },
  {
    name: 'quote verifier: verify(mutated simulated quotes) rejects with QuoteVerificationError or verifies the same signed content',
    share: 0.004,
    async setup() {
      const original = await simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('fuzz') }).getQuote(new Uint8Array(64).fill(9))
      const expected = await verifier.verify(original)
      const property = fc.asyncProperty(mutated(fc.constant(original)), async (bytes) => {
        try {
          const verified = await verifier.verify(bytes)
          assert.equal(verified.measurementId, expected.measurementId, 'a changed quote that verifies carries the same measurement')
          assert.deepEqual(verified.reportData, expected.reportData, 'and the same report data')
        } catch (error) {
          assert.ok(error instanceof QuoteVerificationError, `unexpected ${(error as Error).name}: ${(error as Error).message}`)
        }
      })
      return { property: property }
    },
  },
  {
    name: 'settings: measured and host settings (mutated valid files, any JSON) are accepted or refused in one line',
    share: 0.05,
    async setup() {
      const property = fc.property(
        fc.oneof(
          mutatedJson(MEASURED).map((raw) => ({ which: 'measured' as const, raw })),
          mutatedJson(HOST).map((raw) => ({ which: 'host' as const, raw })),
          fc.jsonValue({ maxDepth: 3 }).map((raw) => ({ which: 'measured' as const, raw })),
          fc.jsonValue({ maxDepth: 3 }).map((raw) => ({ which: 'host' as const, raw })),
        ),
        ({ which, raw }) =>
          onlyThrows(
            () => (which === 'measured' ? parseMeasuredSettings(raw, 'measured settings') : parseHostSettings(raw, 'config')),
            oneLineError,
            which,
          ),
      )
      return { property: property }
    },
  },
  {
    name: 'CLI flags: derive and deploy argv give exit 0/2 or a UsageError, and never echo a secret on error',
    share: 0.046,
    async setup() {
      const secretHex = bytesToHex(MASTER)
      const argv = fc.array(
        fc.oneof(
          fc.constantFrom(...DERIVE_FLAGS, '--rpc', '--owner-key-file', '--owner', '--measurement-delay'),
          fc.constantFrom(secretHex, secretHex.slice(2), '0x5bb4ff9a3837357f19dc176407a5709c62eb6c56', '', '/', 'secp256k1', 'ed25519', 'http://127.0.0.1:8545'),
          fc.string({ maxLength: 30 }),
          hexString,
          fc.tuple(fc.constantFrom(...DERIVE_FLAGS), fc.string({ maxLength: 20 })).map(([f, v]) => `${f}=${v}`),
        ),
        { maxLength: 10 },
      )
      const property = fc.asyncProperty(argv, async (args) => {
        const errors: string[] = []
        const code = await runDerive(args, () => undefined, (line) => errors.push(line))
        assert.ok(code === 0 || code === 2, `exit ${code}`)
        for (const line of errors) {
          assert.ok(!line.includes('\n'), 'one line')
          assert.ok(!line.toLowerCase().includes(secretHex.slice(2)), 'a usage error never echoes the secret')
        }
        onlyThrows(() => readDeploySettings(args, {}), (e) => e instanceof KeymanagerError && e.name === 'UsageError' && oneLineError(e), 'deploy flags')
      })
      return { property: property }
    },
  },
]
