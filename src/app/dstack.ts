// The dstack guest-agent API (docs/protocol.md#http-api: `POST /GetKey`, `/GetQuote`, `/Info`, `/Version`), so an app written for
// dstack runs unchanged against this sidecar: @phala/dstack-sdk (and curl examples written for the dstack socket)
// talk to it over HTTP or over a unix socket (socket.ts). Wire form as the dstack agent's prpc JSON
// (Dstack-TEE/dstack guest-agent `rpc_service.rs`, ra-rpc `encode_error`): bytes as lowercase hex without 0x,
// errors as `{"error": "<message>"}`.
//
// Decisions written down here:
// - Pod identity is not decided here: `resolvePodAppId(c)` comes from the listener. The pod listener resolves it as
//   `/sealkey` does (podIdentity middleware, see `podResolverFromMiddleware`); a unix socket is bound to one
//   configured pod (socket.ts). Identity is resolved inside the handlers, not by a middleware of the parent app, so
//   an identity failure still answers in the dstack error shape the SDK understands.
// - Errors: body `{"error": message}` exactly as dstack's prpc; the status follows the project's closed list
//   (400 bad input, 403 unknown pod, 413 body too large, 503 not ready, 500 internal) where dstack always says 400.
//   @phala/dstack-sdk ignores the status and looks for the `error` key, so both readings agree.
// - Every response is ASCII JSON (non-ASCII escaped as \uXXXX) with an explicit Content-Length: the SDK's unix-socket
//   client reads exactly Content-Length bytes and compares them with a JS string length, so the two must coincide.
// - Request bodies: at most DSTACK_MAX_BODY_BYTES; empty means `{}` (protobuf defaults, as prpc decodes it); unknown
//   fields are ignored (as serde does for prpc); known fields must have their JSON type (null is refused).
//   path and purpose are bounded (MAX_PATH_BYTES, MAX_PURPOSE_BYTES of UTF-8) and must be well-formed Unicode: a lone
//   surrogate would be encoded as U+FFFD and so collide with another path's key (dstack's serde refuses it too).
// - GetKey: secp256k1 by default, `k256` an alias, `ed25519` as dstack derives it (src/keys/derive.ts). The derived
//   key is wiped once serialised.
// - GetQuote: report_data is hex, at most 64 bytes, right-padded with zeros, never hashed (dstack `pad64`); the
//   response carries `quote`, `event_log` (a JSON string: `[]`, this sidecar extends no runtime events),
//   `report_data` (the 64 padded bytes) and `vm_config` (""). SECURITY: a raw quote of this sidecar's TEE over
//   caller-chosen report data could carry the register report data of docs/protocol.md#report-data and onboard the caller to the
//   master secret. The injected `getQuote` must refuse report data that the protocol reserves (throw a
//   KeymanagerError `forbidden`): src/tee/podQuote.ts says which.
// - Info: `app_id` = the pod's appId, `app_name` = the pod name, `instance_id` "" (dstack's `no_instance_id` form),
//   `tcb_info` a JSON *string* (the SDK JSON.parses it) with the TDX measurement registers of this node's own quote,
//   read once from a quote over zero report data and cached (empty strings if no quote can be had, or for SGX);
//   `key_provider_info` a JSON string `{"name":"keymanager","id":<compressed master public key hex>,"chain_id",
//   "registry","settings_digest","xpub","generation"}` (dstack's KeyProviderInfo has `name` and `id`, the KMS root public key). Info
//   answers before the node is ready, with id "" and xpub null.
import type { Context, MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Logger } from 'pino'
import type { Address, Hex } from 'viem'
import { ERROR_STATUS, KeymanagerError, type ErrorCode } from '../errors.ts'
import { assertBytes, describeValue, parseHex, toHexPlain, wipe } from '../keys/bytes.ts'
import { normalizeKeyAlgorithm } from '../keys/derive.ts'
import type { MasterSecret } from '../secret/masterSecret.ts'
import { measurementOf } from '../tee/measurement.ts'
import { parsePodName } from './podIdentity.ts'

/** Largest request body accepted on a dstack route (a GetKey request is a few hundred bytes). */
export const DSTACK_MAX_BODY_BYTES = 16 * 1024
/** Largest GetKey `path`, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024
/** Largest GetKey `purpose`, in UTF-8 bytes. */
export const MAX_PURPOSE_BYTES = 1024
/** GetQuote report data: at most 64 bytes, right-padded with zeros. */
export const REPORT_DATA_BYTES = 64

/** Which pod is calling and its 20-byte appId; throws a KeymanagerError (`forbidden`) when it cannot tell. */
export type PodResolver = (c: Context) => { pod: string; appId: Uint8Array } | Promise<{ pod: string; appId: Uint8Array }>

/** What the dstack routes need of the master secret (a MasterSecret, or anything that answers GetKey the same way). */
export type DstackKeySource = Pick<MasterSecret, 'getKey' | 'address' | 'publicKey33'>

/** Public facts of this node for `/Info` and `/Version`. */
export type DstackNodeInfo = {
  chainId: number
  registry: Address
  /** The node's settingsDigest (docs/protocol.md#measured-settings): which measured settings this sidecar runs with. */
  settingsDigest: Hex
  /** Master-key generation on chain (0 before bootstrap). */
  generation: number
  /** Reported by `/Version` (the SDK only checks that the call answers). */
  version: string
  /** Git revision for `/Version`; "" when unknown. */
  rev?: string
}

export type DstackAppDeps = {
  resolvePodAppId: PodResolver
  /** The key source; throws KeymanagerError `not_ready` until the node holds the master secret. */
  master(): DstackKeySource
  /** A quote of this node's TEE over exactly these 64 bytes (see the SECURITY note above). */
  getQuote(reportData64: Uint8Array): Promise<Uint8Array>
  info(): DstackNodeInfo
  logger: Logger
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const NON_ASCII = /[\u007f-\uffff]/g
const utf8 = new TextEncoder()

/** JSON with every non-ASCII character escaped, so its byte length equals its string length. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(NON_ASCII, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function send(c: Context, status: ContentfulStatusCode, value: unknown): Response {
  const body = asciiJson(value)
  return c.body(body, status, { 'content-type': 'application/json', 'content-length': String(body.length) })
}

/** The dstack error body `{"error": message}`, with the project's status for `code`. */
function sendError(c: Context, code: ErrorCode, message: string): Response {
  return send(c, ERROR_STATUS[code] as ContentfulStatusCode, { error: message })
}

type Body = Record<string, unknown>

/** Runs request validation: its TypeError/RangeError (argument named, no secret) becomes a 400 for the caller. */
function validated<T>(check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new KeymanagerError('bad_request', error.message)
    throw error
  }
}

async function readBody(c: Context): Promise<Body> {
  const text = await c.req.text()
  if (text.trim() === '') return {}
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new KeymanagerError('bad_request', 'request body must be JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new KeymanagerError('bad_request', `request body must be a JSON object, got ${describeValue(body)}`)
  }
  return body as Body
}

/** A string field with its protobuf default "", at most `maxBytes` of UTF-8, well-formed Unicode. */
function stringField(body: Body, name: string, maxBytes: number): string {
  const value = body[name]
  if (value === undefined) return ''
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describeValue(value)}`)
  // UTF-8 takes at least one byte per UTF-16 unit: a cheap bound before encoding.
  if (value.length > maxBytes || utf8.encode(value).length > maxBytes) {
    throw new RangeError(`${name} must be at most ${maxBytes} bytes of UTF-8`)
  }
  if (LONE_SURROGATE.test(value)) throw new RangeError(`${name} must be well-formed Unicode (no lone surrogates)`)
  return value
}

/** GetQuote's report_data: hex without 0x, at most 64 bytes, right-padded with zeros (dstack `pad64`). */
function reportDataField(body: Body): Uint8Array {
  const value = body.report_data
  const padded = new Uint8Array(REPORT_DATA_BYTES)
  if (value === undefined) return padded
  if (typeof value === 'string' && value.length > REPORT_DATA_BYTES * 2 + 2) {
    throw new RangeError(`report_data must be at most ${REPORT_DATA_BYTES} bytes, got ${Math.ceil(value.length / 2)}`)
  }
  const bytes = parseHex(value, { name: 'report_data', prefix: 'forbidden' })
  if (bytes.length > REPORT_DATA_BYTES) {
    throw new RangeError(`report_data must be at most ${REPORT_DATA_BYTES} bytes, got ${bytes.length}`)
  }
  padded.set(bytes)
  return padded
}

type TcbRegisters = { mrtd: string; rtmr0: string; rtmr1: string; rtmr2: string; rtmr3: string }
const NO_TCB: TcbRegisters = { mrtd: '', rtmr0: '', rtmr1: '', rtmr2: '', rtmr3: '' }

function tdxRegisters(quote: Uint8Array): TcbRegisters {
  const parsed = measurementOf(quote)
  if (parsed.teeType !== 'tdx') return NO_TCB
  const field = (name: string) => (parsed.measurements[name] ?? '0x').slice(2)
  return { mrtd: field('mrTd'), rtmr0: field('rtMr0'), rtmr1: field('rtMr1'), rtmr2: field('rtMr2'), rtmr3: field('rtMr3') }
}

/**
 * The dstack guest-agent routes as a Hono app. Mount it on the pod listener (`podApp.route('/', dstackApp)`) and
 * serve another instance on a unix socket (socket.ts); both take their pod identity from `resolvePodAppId`.
 */
export function createDstackApp(deps: DstackAppDeps) {
  const app = new Hono()
  const limit = bodyLimit({
    maxSize: DSTACK_MAX_BODY_BYTES,
    onError: (c) => sendError(c, 'payload_too_large', `request body must be at most ${DSTACK_MAX_BODY_BYTES} bytes`),
  })

  async function resolvePod(c: Context): Promise<{ pod: string; appId: Uint8Array }> {
    const resolved = await deps.resolvePodAppId(c)
    assertBytes(resolved.appId, 20, 'appId')
    return resolved
  }

  let tcb: TcbRegisters | undefined
  async function tcbRegisters(): Promise<TcbRegisters> {
    if (tcb) return tcb
    try {
      // Report data that binds nothing and is not protocol-shaped (src/tee/podQuote.ts): only the registers are read.
      tcb = tdxRegisters(await deps.getQuote(new Uint8Array(REPORT_DATA_BYTES).fill(0xff)))
      return tcb
    } catch (error) {
      // Not cached: the next /Info tries again (the quote provider may be starting up).
      deps.logger.warn({ error: { name: (error as Error).name, message: (error as Error).message } }, 'dstack Info: no quote for tcb_info')
      return NO_TCB
    }
  }

  // Only KeymanagerErrors (validation included, see `validated`) reach the caller with their message: a TypeError
  // from a bug elsewhere is a 500 whose message stays in the log.
  app.onError((error, c) => {
    if (error instanceof KeymanagerError) return sendError(c, error.code, error.message)
    deps.logger.error({ error: { name: error.name, message: error.message }, path: c.req.path }, 'dstack route failed')
    return sendError(c, 'internal', 'internal error')
  })
  app.notFound((c) => sendError(c, 'not_found', `no dstack method ${c.req.method} ${c.req.path.slice(0, 64)}`))

  app.post('/GetKey', limit, async (c) => {
    const body = await readBody(c)
    const { path, purpose, algorithm } = validated(() => ({
      path: stringField(body, 'path', MAX_PATH_BYTES),
      purpose: stringField(body, 'purpose', MAX_PURPOSE_BYTES),
      algorithm: normalizeKeyAlgorithm(body.algorithm),
    }))
    const { appId } = await resolvePod(c)
    const { key, signatureChain } = deps.master().getKey({ appId, path, purpose, algorithm })
    try {
      return send(c, 200, { key: toHexPlain(key), signature_chain: signatureChain.map(toHexPlain) })
    } finally {
      wipe(key)
    }
  })

  app.post('/GetQuote', limit, async (c) => {
    const body = await readBody(c)
    const reportData = validated(() => reportDataField(body))
    await resolvePod(c)
    const quote = await deps.getQuote(reportData)
    return send(c, 200, { quote: toHexPlain(quote), event_log: '[]', report_data: toHexPlain(reportData), vm_config: '' })
  })

  app.post('/Info', limit, async (c) => {
    await readBody(c)
    const { pod, appId } = await resolvePod(c)
    const node = deps.info()
    let master: DstackKeySource | undefined
    try {
      master = deps.master()
    } catch (error) {
      if (!(error instanceof KeymanagerError && error.code === 'not_ready')) throw error
    }
    const registers = await tcbRegisters()
    const tcbInfo = {
      ...registers,
      mr_aggregated: '',
      os_image_hash: '',
      compose_hash: '',
      device_id: '',
      event_log: [],
      app_compose: '',
    }
    const keyProviderInfo = {
      name: 'keymanager',
      id: master ? toHexPlain(master.publicKey33) : '',
      chain_id: node.chainId,
      registry: node.registry,
      settings_digest: node.settingsDigest,
      xpub: master ? master.address : null,
      generation: node.generation,
    }
    return send(c, 200, {
      app_id: toHexPlain(appId),
      instance_id: '',
      app_cert: '',
      tcb_info: JSON.stringify(tcbInfo),
      app_name: pod,
      device_id: '',
      mr_aggregated: '',
      os_image_hash: '',
      key_provider_info: JSON.stringify(keyProviderInfo),
      compose_hash: '',
      vm_config: '',
      cloud_vendor: '',
      cloud_product: '',
    })
  })

  app.post('/Version', limit, async (c) => {
    await readBody(c)
    const node = deps.info()
    return send(c, 200, { version: node.version, rev: node.rev ?? '' })
  })

  return app
}

/**
 * Adapts a middleware that sets `c.var.pod` (the pod listener's podIdentity) into a {@link PodResolver}; its
 * errors surface inside the dstack handlers, so in the dstack error shape.
 */
export function podResolverFromMiddleware(
  middleware: MiddlewareHandler<{ Variables: { pod: string } }>,
  appIdOf: (pod: string) => Uint8Array,
): PodResolver {
  return async function resolvePodAppId(c) {
    const typed = c as Context<{ Variables: { pod: string } }>
    let pod: string | undefined
    await middleware(typed, async () => {
      pod = typed.get('pod')
    })
    if (pod === undefined) throw new KeymanagerError('forbidden', 'cannot tell which pod is calling')
    return { pod, appId: appIdOf(pod) }
  }
}

/** A resolver that names one pod for every caller: the identity of a unix socket mounted into that pod only. */
export function fixedPodResolver(pod: string, appId: Uint8Array): PodResolver {
  assertBytes(appId, 20, 'appId')
  const resolved = Object.freeze({ pod: parsePodName(pod), appId: appId.slice() })
  return () => ({ pod: resolved.pod, appId: resolved.appId.slice() })
}
