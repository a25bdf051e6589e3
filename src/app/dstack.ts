// The dstack guest-agent API (docs/protocol.md#dstack-api): the nine routes @phala/dstack-sdk 0.5.8 calls — `GetKey`,
// `GetTlsKey`, `GetQuote`, `Attest`, `EmitEvent`, `Sign`, `Verify`, `Info`, `Version` — so an app written for dstack runs
// unchanged against this sidecar, over HTTP or a unix socket (socket.ts). Wire form as the dstack agent's prpc JSON
// (Dstack-TEE/dstack v0.5.8 guest-agent `rpc_service.rs`, `agent_rpc.proto`; ra-rpc `encode_error`): bytes as
// lowercase hex without 0x, errors as `{"error": "<message>"}`.
//
// Decisions written down here:
// - Pod identity is not decided here: `resolvePodAppId(c)` comes from the listener. The pod listener resolves it as
//   `/sealkey` does (podIdentity middleware, see `podResolverFromMiddleware`); a unix socket is bound to one
//   configured pod (socket.ts). Identity is resolved inside the handlers, not by a middleware of the parent app, so
//   an identity failure still answers in the dstack error shape the SDK understands. Every route needs an identified
//   pod (Verify included: it reveals nothing, but unidentified callers get nothing), and every key is the caller's
//   app's: no field names another app.
// - Errors: body `{"error": message}` exactly as dstack's prpc; the status follows the project's closed list
//   (400 bad input, 403 unknown pod, 409 a pod event limit, 413 body too large, 422 not on this TEE, 502 the TEE
//   interface failed, 503 not ready, 500 internal) where dstack always says 400. @phala/dstack-sdk ignores the status
//   and looks for the `error` key, so both readings agree.
// - Every response is ASCII JSON (non-ASCII escaped as \uXXXX) with an explicit Content-Length: the SDK's unix-socket
//   client reads exactly Content-Length bytes and compares them with a JS string length, so the two must coincide.
// - Request bodies: at most DSTACK_MAX_BODY_BYTES; empty means `{}` (protobuf defaults, as prpc decodes it); unknown
//   fields are ignored (as serde does for prpc); known fields must have their JSON type (null is refused). Strings
//   are bounded and must be well-formed Unicode: a lone surrogate would be encoded as U+FFFD and so collide with
//   another value (dstack's serde refuses it too). Hex fields: without 0x, even length, bounded.
// - GetKey: secp256k1 by default, `k256` an alias, `ed25519` as dstack derives it (src/keys/derive.ts); purposes
//   starting with `keymanager.` are reserved for the sidecar's own chains (the app CA's). Derived keys are wiped once
//   serialised.
// - GetQuote / Attest: report_data is hex, at most 64 bytes, right-padded with zeros, never hashed (dstack `pad64`).
//   SECURITY: a raw quote of this sidecar's TEE over caller-chosen report data could carry the register report data
//   of docs/protocol.md#report-data and onboard the caller to the master secret: every quote goes through the
//   injected PodTee, which refuses the reserved shapes (src/tee/podQuote.ts). GetQuote answers `quote`, `event_log`
//   (JSON string, src/tee/eventLog.ts: boot payloads dropped, every digest kept so the SDK's `replayRtmrs()`
//   reproduces the quote's RTMRs), `report_data` (the 64 padded bytes), `vm_config`. Attest answers dstack's SCALE
//   versioned attestation (src/tee/dstackAttestation.ts) with the full event log, TDX only.
// - EmitEvent: only once the node is ready (it then holds M, so its bootstrap or register quote is already made: a
//   pod cannot make the node's onboarding quote carry a measurement nobody allowed). Recorded as
//   `<appId hex>:<event>` and bounded (src/tee/podTee.ts, which says why); answers `{}`.
// - Sign / Verify: src/keys/dstackSign.ts (key GetKey("vms", "signing"); chain [signature, GetKey's two]).
// - GetTlsKey: src/keys/appCa.ts. Fields as dstack's GetTlsKeyArgs, plus `path` (ours; dstack's retired
//   Tappd.DeriveKey had it): absent or "" gives a fresh key (node:crypto), otherwise the P-256 key
//   HKDF(appCaKey, utf8(path)), the same on every node. `not_before`/`not_after` are unix seconds up to 9999-12-31,
//   `not_before` < `not_after`; alt names are IP addresses or DNS names (visible ASCII); a leaf private key is never
//   logged or kept.
// - Info: `app_id` = the pod's appId, `app_name` = the pod name, `app_cert` = the app's CA certificate (PEM; "" until
//   the node is ready), `tcb_info` a pretty JSON *string* (the SDK JSON.parses it) with this TEE's registers and full
//   event log, mr_aggregated, compose_hash, os_image_hash and instance_id derived as dstack does
//   (src/tee/tdReport.ts); `device_id`, `cloud_vendor`, `cloud_product` and `app_compose` are the platform's (provider
//   `dstack`: its agent's Info, see PodTee.platformInfo), empty elsewhere (nothing else knows them); `key_provider_info` a JSON string `{"name":"keymanager","id":<compressed master public key hex>,
//   "chain_id","registry","settings_digest","xpub","generation"}` (dstack's KeyProviderInfo has `name` and `id`, the
//   KMS root public key). Info answers before the node is ready, with id "" and xpub null.
import type { Context, MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { Logger } from 'pino'
import type { Address, Hex } from 'viem'
import { ERROR_STATUS, KeymanagerError, type ErrorCode } from '../errors.ts'
import {
  appCaCertificate,
  appInfoMsgpack,
  certificatePem,
  issueLeafCertificate,
  LEAF_DEFAULT_NOT_BEFORE,
  LEAF_DEFAULT_VALIDITY,
  raTlsReportData,
} from '../keys/appCa.ts'
import { assertBytes, describeValue, parseHex, toHexPlain, wipe } from '../keys/bytes.ts'
import { MAX_X509_TIME } from '../keys/der.ts'
import { deriveP256Key, normalizeKeyAlgorithm } from '../keys/derive.ts'
import { dstackSign, dstackVerify, normalizeSignAlgorithm, SIGN_KEY_PATH, SIGN_KEY_PURPOSE, signKeyAlgorithm } from '../keys/dstackSign.ts'
import { p256KeyObject, p256Spki } from '../keys/x509.ts'
import type { MasterSecret } from '../secret/masterSecret.ts'
import { encodeDstackAttestation } from '../tee/dstackAttestation.ts'
import { runtimeEventsOf, withoutBootPayloads } from '../tee/eventLog.ts'
import { checkPodEvent, MAX_EVENT_PAYLOAD_BYTES, type PodTee } from '../tee/podTee.ts'
import { bootFacts, mrAggregated, mrSystem, tdRegistersOf } from '../tee/tdReport.ts'
import type { QuoteEvidence } from '../tee/types.ts'
import { parsePodName } from './podIdentity.ts'

/** Largest request body accepted on a dstack route (a GetKey request is a few hundred bytes). */
export const DSTACK_MAX_BODY_BYTES = 16 * 1024
/** Largest GetKey `path`, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024
/** Largest GetKey `purpose`, in UTF-8 bytes. */
export const MAX_PURPOSE_BYTES = 1024
/** GetQuote report data: at most 64 bytes, right-padded with zeros. */
export const REPORT_DATA_BYTES = 64
/** Largest Sign/Verify `data` (the body limit allows no more). */
export const MAX_SIGN_DATA_BYTES = 6 * 1024
/** GetTlsKey limits: subject (UTF-8 bytes), alt names (count, and bytes each). */
export const MAX_SUBJECT_BYTES = 256
export const MAX_ALT_NAMES = 32
export const MAX_ALT_NAME_BYTES = 253
/** GetKey purposes the sidecar keeps for its own signature chains. */
export const RESERVED_PURPOSE_PREFIX = 'keymanager.'

/** Which pod is calling and its 20-byte appId; throws a KeymanagerError (`forbidden`) when it cannot tell. */
export type PodResolver = (c: Context) => { pod: string; appId: Uint8Array } | Promise<{ pod: string; appId: Uint8Array }>

/** What the dstack routes need of the master secret (a MasterSecret, or anything that answers the same way). */
export type DstackKeySource = Pick<MasterSecret, 'getKey' | 'address' | 'publicKey33' | 'appCa'>

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
  /**
   * The key source: for GetKey the pod's pinned generation (measured settings), else the current one; throws
   * KeymanagerError `not_ready` until the node holds the master secret, and fails closed for a pin to a revoked or purged
   * generation (docs/protocol.md#generations).
   */
  master(pod?: string): DstackKeySource
  /** This node's TEE as pods see it (src/tee/podTee.ts): one per node, shared by every listener and socket. */
  tee: PodTee
  info(): DstackNodeInfo
  logger: Logger
  /** Unix seconds, for GetTlsKey's default notAfter. */
  now?: () => number
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const NON_ASCII = /[\u007f-\uffff]/g
const utf8 = new TextEncoder()

/** JSON with every non-ASCII character escaped, so its byte length equals its string length. */
function asciiJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(NON_ASCII, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
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

function checkString(name: string, value: string, maxBytes: number): string {
  // UTF-8 takes at least one byte per UTF-16 unit: a cheap bound before encoding.
  if (value.length > maxBytes || utf8.encode(value).length > maxBytes) {
    throw new RangeError(`${name} must be at most ${maxBytes} bytes of UTF-8`)
  }
  if (LONE_SURROGATE.test(value)) throw new RangeError(`${name} must be well-formed Unicode (no lone surrogates)`)
  return value
}

/** A string field with its protobuf default "", at most `maxBytes` of UTF-8, well-formed Unicode. */
function stringField(body: Body, name: string, maxBytes: number): string {
  const value = body[name]
  if (value === undefined) return ''
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describeValue(value)}`)
  return checkString(name, value, maxBytes)
}

/** A bool field with its protobuf default false. */
function boolField(body: Body, name: string): boolean {
  const value = body[name]
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describeValue(value)}`)
  return value
}

/** An optional uint64 field of unix seconds, at most 9999-12-31T23:59:59Z (what X.509 can say). */
function timeField(body: Body, name: string): number | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer (unix seconds), got ${describeValue(value)}`)
  if (value > MAX_X509_TIME) throw new RangeError(`${name} must be at most ${MAX_X509_TIME} (9999-12-31T23:59:59Z)`)
  return value
}

/** A hex field (no 0x) with its protobuf default of no bytes, at most `maxBytes`. */
function hexField(body: Body, name: string, maxBytes: number): Uint8Array {
  const value = body[name]
  if (value === undefined) return new Uint8Array(0)
  if (typeof value === 'string' && value.length > maxBytes * 2) throw new RangeError(`${name} must be at most ${maxBytes} bytes, got ${Math.ceil(value.length / 2)}`)
  return parseHex(value, { name, prefix: 'forbidden' })
}

/** GetQuote's report_data: hex without 0x, at most 64 bytes, right-padded with zeros (dstack `pad64`). */
function reportDataField(body: Body): Uint8Array {
  const padded = new Uint8Array(REPORT_DATA_BYTES)
  padded.set(hexField(body, 'report_data', REPORT_DATA_BYTES))
  return padded
}

function altNamesField(body: Body): string[] {
  const value = body.alt_names
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new TypeError(`alt_names must be an array of strings, got ${describeValue(value)}`)
  if (value.length > MAX_ALT_NAMES) throw new RangeError(`alt_names must hold at most ${MAX_ALT_NAMES} names`)
  return value.map((name, i) => {
    if (typeof name !== 'string') throw new TypeError(`alt_names[${i}] must be a string, got ${describeValue(name)}`)
    if (isIP(name)) return name
    if (name.length === 0 || name.length > MAX_ALT_NAME_BYTES || !/^[\x21-\x7e]+$/.test(name)) {
      throw new RangeError(`alt_names[${i}] must be an IP address or a DNS name of 1-${MAX_ALT_NAME_BYTES} visible ASCII characters`)
    }
    return name
  })
}

type TcbRegisters = { mrtd: string; rtmr0: string; rtmr1: string; rtmr2: string; rtmr3: string }
const NO_TCB: TcbRegisters = { mrtd: '', rtmr0: '', rtmr1: '', rtmr2: '', rtmr3: '' }

/** dstack's app facts of this TEE, from one quote and its log (src/tee/tdReport.ts); empty where there is none. */
function tdFacts(evidence: QuoteEvidence | undefined, keyProviderInfo: Uint8Array) {
  const registers = evidence ? tdRegistersOf(evidence.quote) : undefined
  const events = evidence?.eventLog ?? []
  const empty = new Uint8Array(0)
  return {
    registers,
    tcb: registers
      ? { mrtd: bytesToHex(registers.mrTd), rtmr0: bytesToHex(registers.rtMr0), rtmr1: bytesToHex(registers.rtMr1), rtmr2: bytesToHex(registers.rtMr2), rtmr3: bytesToHex(registers.rtMr3) }
      : NO_TCB,
    mrAggregated: registers ? mrAggregated(registers, events) : empty,
    mrSystem: registers ? mrSystem(registers, keyProviderInfo) : empty,
    ...bootFacts(events),
    eventLog: events,
    vmConfig: evidence?.vmConfig ?? '',
  }
}

/**
 * The dstack guest-agent routes as a Hono app. Mount it on the pod listener (`podApp.route('/', dstackApp)`) and
 * serve another instance on a unix socket (socket.ts); both take their pod identity from `resolvePodAppId`.
 */
export function createDstackApp(deps: DstackAppDeps) {
  const app = new Hono()
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000))
  const limit = bodyLimit({
    maxSize: DSTACK_MAX_BODY_BYTES,
    onError: (c) => sendError(c, 'payload_too_large', `request body must be at most ${DSTACK_MAX_BODY_BYTES} bytes`),
  })

  async function resolvePod(c: Context): Promise<{ pod: string; appId: Uint8Array }> {
    const resolved = await deps.resolvePodAppId(c)
    assertBytes(resolved.appId, 20, 'appId')
    return resolved
  }

  function keyProviderInfo(master: DstackKeySource | undefined) {
    const node = deps.info()
    return JSON.stringify({
      name: 'keymanager',
      id: master ? toHexPlain(master.publicKey33) : '',
      chain_id: node.chainId,
      registry: node.registry,
      settings_digest: node.settingsDigest,
      xpub: master ? master.address : null,
      generation: node.generation,
    })
  }

  // The app CA certificate is a pure function of (M, appId): made once per app and master key (a generation).
  const caPems = new Map<string, string>()
  function appCaPem(master: DstackKeySource, appId: Uint8Array): string {
    const id = `${master.address}:${bytesToHex(appId)}`
    let pem = caPems.get(id)
    if (!pem) {
      const ca = master.appCa(appId)
      try {
        pem = certificatePem(appCaCertificate(appId, ca))
      } finally {
        wipe(ca.key)
      }
      if (caPems.size >= 4096) caPems.clear()
      caPems.set(id, pem)
    }
    return pem
  }

  function masterIfReady(): DstackKeySource | undefined {
    try {
      return deps.master()
    } catch (error) {
      if (error instanceof KeymanagerError && error.code === 'not_ready') return undefined
      throw error
    }
  }

  async function localEvidence(): Promise<QuoteEvidence | undefined> {
    try {
      return await deps.tee.localEvidence()
    } catch (error) {
      // The next Info tries again (the quote provider may be starting up).
      deps.logger.warn({ error: { name: (error as Error).name, message: (error as Error).message } }, 'dstack Info: no quote for tcb_info')
      return undefined
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
    const { path, purpose, algorithm } = validated(() => {
      const purpose = stringField(body, 'purpose', MAX_PURPOSE_BYTES)
      if (purpose.startsWith(RESERVED_PURPOSE_PREFIX)) throw new RangeError(`purposes starting with "${RESERVED_PURPOSE_PREFIX}" are reserved for the key manager`)
      return { path: stringField(body, 'path', MAX_PATH_BYTES), purpose, algorithm: normalizeKeyAlgorithm(body.algorithm) }
    })
    const { pod, appId } = await resolvePod(c)
    const { key, signatureChain } = deps.master(pod).getKey({ appId, path, purpose, algorithm })
    try {
      return send(c, 200, { key: toHexPlain(key), signature_chain: signatureChain.map(toHexPlain) })
    } finally {
      wipe(key)
    }
  })

  app.post('/GetTlsKey', limit, async (c) => {
    const body = await readBody(c)
    const request = validated(() => {
      const notBefore = timeField(body, 'not_before')
      const notAfter = timeField(body, 'not_after')
      if (notBefore !== undefined && notAfter !== undefined && notBefore >= notAfter) throw new RangeError('not_before must be earlier than not_after')
      return {
        path: stringField(body, 'path', MAX_PATH_BYTES),
        subject: stringField(body, 'subject', MAX_SUBJECT_BYTES),
        altNames: altNamesField(body),
        raTls: boolField(body, 'usage_ra_tls'),
        serverAuth: boolField(body, 'usage_server_auth'),
        clientAuth: boolField(body, 'usage_client_auth'),
        withAppInfo: boolField(body, 'with_app_info'),
        notBefore,
        notAfter,
      }
    })
    const { appId } = await resolvePod(c)
    const master = deps.master()
    const ca = master.appCa(appId)
    const secrets: Uint8Array[] = [ca.key]
    try {
      let leafKey: KeyObject
      if (request.path === '') {
        leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
      } else {
        const derived = deriveP256Key(ca.key, request.path)
        secrets.push(derived)
        leafKey = p256KeyObject(derived)
      }
      const jwk = leafKey.export({ format: 'jwk' })
      const point = Buffer.concat([Uint8Array.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])
      const notBefore = request.notBefore ?? LEAF_DEFAULT_NOT_BEFORE
      const notAfter = request.notAfter ?? now() + LEAF_DEFAULT_VALIDITY
      if (notBefore >= notAfter) throw new KeymanagerError('bad_request', 'not_before must be earlier than the default not_after (now + 10 years)')
      // One quote binds the leaf key (dstack RaTlsCert report data); it also feeds the app info's registers.
      const evidence = request.raTls || request.withAppInfo ? await deps.tee.quote(raTlsReportData(p256Spki(point))) : undefined
      const kpi = utf8.encode(keyProviderInfo(master))
      const facts = tdFacts(evidence, kpi)
      const leaf = issueLeafCertificate(
        appId,
        ca,
        point,
        {
          subject: request.subject,
          altNames: request.altNames,
          serverAuth: request.serverAuth,
          clientAuth: request.clientAuth,
          notBefore,
          notAfter,
          ...(request.raTls && evidence ? { raTls: { quote: evidence.quote, eventLogJson: JSON.stringify(withoutBootPayloads(evidence.eventLog)) } } : {}),
          // An issuer claim (dstack's reading of this extension): the pod's appId and key provider, the TEE's facts.
          ...(request.withAppInfo
            ? { appInfo: appInfoMsgpack([appId, facts.composeHash, facts.instanceId, new Uint8Array(0), facts.mrSystem, facts.mrAggregated, facts.osImageHash, kpi]) }
            : {}),
        },
        randomSerial(),
      )
      return send(c, 200, {
        key: leafKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        certificate_chain: [certificatePem(leaf), appCaPem(master, appId)],
      })
    } finally {
      wipe(...secrets)
    }
  })

  app.post('/GetQuote', limit, async (c) => {
    const body = await readBody(c)
    const reportData = validated(() => reportDataField(body))
    await resolvePod(c)
    const { quote, eventLog, vmConfig } = await deps.tee.quote(reportData)
    return send(c, 200, {
      quote: toHexPlain(quote),
      event_log: JSON.stringify(withoutBootPayloads(eventLog)),
      report_data: toHexPlain(reportData),
      vm_config: vmConfig,
    })
  })

  app.post('/Attest', limit, async (c) => {
    const body = await readBody(c)
    const reportData = validated(() => reportDataField(body))
    await resolvePod(c)
    if (deps.tee.teeType !== 'tdx') throw new KeymanagerError('unprocessable', `Attest gives dstack's TDX attestation; this TEE is ${deps.tee.teeType}`)
    const { quote, eventLog, vmConfig } = await deps.tee.quote(reportData)
    const attestation = encodeDstackAttestation({ quote, eventLog, runtimeEvents: runtimeEventsOf(eventLog), reportData, config: vmConfig })
    return send(c, 200, { attestation: toHexPlain(attestation) })
  })

  app.post('/EmitEvent', limit, async (c) => {
    const body = await readBody(c)
    const { event, payload } = validated(() => {
      const event = stringField(body, 'event', 1024)
      const payload = hexField(body, 'payload', MAX_EVENT_PAYLOAD_BYTES)
      checkPodEvent(event, payload)
      return { event, payload }
    })
    const { pod, appId } = await resolvePod(c)
    deps.master()
    if (!deps.tee.canEmitEvents) throw new KeymanagerError('unprocessable', 'this TEE cannot extend runtime measurements')
    await deps.tee.emitEvent(appId, event, payload)
    // No payload in the log: it is the pod's business. The measurement id of every later quote moves.
    deps.logger.info({ pod, event }, 'pod event extended RTMR3: the measurement id of this TEE changed')
    return send(c, 200, {})
  })

  app.post('/Sign', limit, async (c) => {
    const body = await readBody(c)
    const { algorithm, data } = validated(() => {
      const algorithm = normalizeSignAlgorithm(body.algorithm ?? '')
      const data = hexField(body, 'data', MAX_SIGN_DATA_BYTES)
      if (algorithm === 'secp256k1_prehashed' && data.length !== 32) {
        throw new RangeError(`Pre-hashed signing requires a 32-byte digest, but received ${data.length} bytes`)
      }
      return { algorithm, data }
    })
    // The pod's generation pin applies as in GetKey: Sign's key is GetKey(SIGN_KEY_PATH, SIGN_KEY_PURPOSE) of the pod.
    const { pod, appId } = await resolvePod(c)
    const { key, signatureChain } = deps.master(pod).getKey({ appId, path: SIGN_KEY_PATH, purpose: SIGN_KEY_PURPOSE, algorithm: signKeyAlgorithm(algorithm) })
    try {
      const { signature, publicKey } = dstackSign(algorithm, key, data)
      return send(c, 200, {
        signature: toHexPlain(signature),
        signature_chain: [signature, ...signatureChain].map(toHexPlain),
        public_key: toHexPlain(publicKey),
      })
    } finally {
      wipe(key)
    }
  })

  app.post('/Verify', limit, async (c) => {
    const body = await readBody(c)
    const { algorithm, data, signature, publicKey } = validated(() => ({
      algorithm: normalizeSignAlgorithm(body.algorithm ?? ''),
      data: hexField(body, 'data', MAX_SIGN_DATA_BYTES),
      signature: hexField(body, 'signature', 65),
      publicKey: hexField(body, 'public_key', 65),
    }))
    await resolvePod(c)
    const valid = validated(() => dstackVerify(algorithm, data, signature, publicKey))
    return send(c, 200, { valid })
  })

  app.post('/Info', limit, async (c) => {
    await readBody(c)
    const { pod, appId } = await resolvePod(c)
    const master = masterIfReady()
    const kpi = keyProviderInfo(master)
    const [evidence, platform] = await Promise.all([localEvidence(), deps.tee.platformInfo()])
    const facts = tdFacts(evidence, utf8.encode(kpi))
    const tcbInfo = {
      ...facts.tcb,
      mr_aggregated: toHexPlain(facts.mrAggregated),
      os_image_hash: toHexPlain(facts.osImageHash),
      compose_hash: toHexPlain(facts.composeHash),
      device_id: platform.deviceId,
      event_log: facts.eventLog,
      app_compose: platform.appCompose,
    }
    return send(c, 200, {
      app_id: toHexPlain(appId),
      instance_id: toHexPlain(facts.instanceId),
      app_cert: master ? appCaPem(master, appId) : '',
      // serde_json's to_string_pretty, as dstack writes it.
      tcb_info: asciiJson(tcbInfo, 2),
      app_name: pod,
      device_id: platform.deviceId,
      mr_aggregated: toHexPlain(facts.mrAggregated),
      os_image_hash: toHexPlain(facts.osImageHash),
      key_provider_info: kpi,
      compose_hash: toHexPlain(facts.composeHash),
      vm_config: facts.vmConfig,
      cloud_vendor: platform.cloudVendor,
      cloud_product: platform.cloudProduct,
    })
  })

  app.post('/Version', limit, async (c) => {
    await readBody(c)
    const node = deps.info()
    return send(c, 200, { version: node.version, rev: node.rev ?? '' })
  })

  return app
}

/** Random positive 16-byte certificate serial. */
function randomSerial(): Uint8Array {
  const serial = randomBytes(16)
  serial[0] = (serial[0]! & 0x7f) | 0x40
  return serial
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
