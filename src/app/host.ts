import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Logger } from 'pino'
import { getAddress, type Address, type Hex } from 'viem'
import { KeymanagerError } from '../errors.ts'
import { parseHex, toHex0x } from '../keys/bytes.ts'
import { addressOfPublicKey } from '../keys/signature.ts'
import type { HelpResult, KeymanagerNode } from '../node/node.ts'
import type { BlobArchive } from '../store/blobArchive.ts'
import type { KeptRow } from '../store/keptCollateral.ts'
import { MAX_KEPT_COLLATERAL_BYTES } from '../tee/keptCollateral.ts'
import type { GasSpent } from '../monitor/instrument.ts'
import type { Metrics } from '../monitor/metrics.ts'
import type { Monitor } from '../monitor/monitor.ts'
import { createErrorHandler, errorJson, notFound, parseInput } from './errors.ts'
import { hostOpenApiDocument } from './openapi.ts'
import { createStatusRoutes } from './status/routes.tsx'
import { createSessions, hostAuthentication } from './status/session.ts'

export type HostAppDeps = {
  node: Pick<KeymanagerNode, 'bootstrap' | 'register' | 'complete' | 'helpByRef' | 'status' | 'state' | 'joinAsMember' | 'rotation' | 'publishEscrow' | 'recover'>
  blobs: BlobArchive
  /** Bearer token the host must present; compared in constant time. */
  token: string
  logger: Logger
  /** The status page's data and the Prometheus registry (src/monitor). */
  monitor: Pick<Monitor, 'snapshot'>
  metrics: Pick<Metrics, 'registry'>
  /** Rate of the public `/blobs` route (docs/protocol.md#limits); tests pass a clock. */
  blobsRate?: { perSecond: number; burst: number; now?: () => number }
  /** Collateral kept with the decisions (docs/protocol.md#node-state), served publicly at `/collateral/:quoteBlobHash`. */
  keptCollateral?: { get(quoteBlobHash: Hex): KeptRow | undefined }
  /** Rate of the public `/collateral` route; tests pass a clock. */
  collateralRate?: { perSecond: number; burst: number; now?: () => number }
  /** Gas the node's own transactions used, per onboarding (src/monitor/instrument.ts); absent without a gas key. */
  gasSpent?: (() => GasSpent) | undefined
}

/** `/blobs` answers at most this many blobs per second (6.5 MB/s), bursts up to `burst`, to all callers together. */
export const BLOBS_RATE = { perSecond: 50, burst: 100 }

/** `/collateral` answers at most this many records per second (each at most MAX_KEPT_COLLATERAL_BYTES), to all callers together. */
export const COLLATERAL_RATE = { perSecond: 10, burst: 20 }

/** A token bucket: `take()` is false once `burst` tokens are spent faster than `perSecond` come back. */
export function createTokenBucket({ perSecond, burst, now = () => performance.now() / 1000 }: { perSecond: number; burst: number; now?: () => number }) {
  let tokens = burst
  let at = now()
  return {
    take(): boolean {
      const t = now()
      tokens = Math.min(burst, tokens + (t - at) * perSecond)
      at = t
      if (tokens < 1) return false
      tokens -= 1
      return true
    },
  }
}

/** Host requests carry no large bodies: anything over this is refused before it is read. */
const MAX_BODY = 16 * 1024

/** `:addr` of `/helper/:addr`: a request id in decimal, or the newcomer's 0x address. */
export function parseHelperRef(value: string): { requestId: bigint } | { requester: Address } {
  if (/^[0-9]{1,78}$/.test(value)) {
    const requestId = BigInt(value)
    if (requestId === 0n || requestId >= 2n ** 256n) throw new KeymanagerError('bad_request', 'request id out of range')
    return { requestId }
  }
  if (/^0x[0-9a-fA-F]{40}$/.test(value)) return { requester: getAddress(value.toLowerCase()) }
  throw new KeymanagerError('bad_request', 'addr must be a decimal request id or a 0x-prefixed 20-byte address')
}

/** `:enckey` of `/register/:enckey`: the registration's key as an address or a 64-byte public key. */
export function parseEncKey(value: string): Address {
  if (/^0x[0-9a-fA-F]{40}$/.test(value)) return getAddress(value.toLowerCase())
  return parseInput(() => addressOfPublicKey(parseHex(value, { name: 'enckey', length: 64, prefix: 'optional' })))
}

function helpResultJson(result: HelpResult) {
  if (result.decision === 'refused')
    return { requestId: result.requestId.toString(), decision: result.decision, reason: result.reason, message: result.message }
  if (result.decision === 'needs_mark') return { requestId: result.requestId.toString(), decision: result.decision, tx: result.tx, next: result.message }
  return { requestId: result.requestId.toString(), decision: result.decision, ...result.tx }
}

/** The host listener (docs/protocol.md#http-api): an untrusted operator drives bootstrap and onboarding. */
export function createHostApp(deps: HostAppDeps) {
  const app = new Hono()
  app.onError(createErrorHandler(deps.logger))
  app.notFound(notFound)
  app.use('*', bodyLimit({ maxSize: MAX_BODY, onError: (c) => errorJson(c, 'payload_too_large', `request body over ${MAX_BODY} bytes`) }))
  // Blobs are public chain data (their hashes are on chain, every reader checks them): peers read this node's archive
  // without the host token, which is never handed to anyone (docs/protocol.md#http-api). Anyone can call it, so it is
  // rate-limited for all callers together (a caller's address is the network's to say) and answers one blob at most.
  const blobsBucket = createTokenBucket(deps.blobsRate ?? BLOBS_RATE)
  app.get('/blobs/:versionedHash', (c) => {
    if (!blobsBucket.take()) {
      c.header('retry-after', '1')
      return errorJson(c, 'too_many_requests', `over ${(deps.blobsRate ?? BLOBS_RATE).perSecond} blobs per second; retry later`)
    }
    const hash = parseInput(() => parseHex(c.req.param('versionedHash'), { name: 'versionedHash', length: 32, prefix: 'required' }))
    if (hash[0] !== 0x01) throw new KeymanagerError('bad_request', 'versionedHash must start with 0x01 (EIP-4844 KZG version)')
    const blob = deps.blobs.get(toHex0x(hash))
    if (!blob) return errorJson(c, 'not_found', 'blob not in this node archive')
    return c.body(blob as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream' })
  })
  // Collateral kept with a decision (docs/protocol.md#http-api): public Intel data, read by `audit --peer` without the
  // host token, which checks it in full. Rate-limited for all callers together, one record of bounded size per call.
  const collateralBucket = createTokenBucket(deps.collateralRate ?? COLLATERAL_RATE)
  app.get('/collateral/:quoteBlobHash', (c) => {
    if (!collateralBucket.take()) {
      c.header('retry-after', '1')
      return errorJson(c, 'too_many_requests', `over ${(deps.collateralRate ?? COLLATERAL_RATE).perSecond} collateral records per second; retry later`)
    }
    const hash = parseInput(() => parseHex(c.req.param('quoteBlobHash'), { name: 'quoteBlobHash', length: 32, prefix: 'required' }))
    if (hash[0] !== 0x01) throw new KeymanagerError('bad_request', 'quoteBlobHash must start with 0x01 (EIP-4844 KZG version)')
    const row = deps.keptCollateral?.get(toHex0x(hash))
    if (!row || Buffer.byteLength(row.collateral) > MAX_KEPT_COLLATERAL_BYTES) return errorJson(c, 'not_found', 'no collateral kept with a decision on this quote blob')
    // The stored canonical JSON goes out as it is: its bytes are what collateralHash is taken over.
    const body = `{"quoteBlobHash":${JSON.stringify(row.quoteBlobHash)},"collateralHash":${JSON.stringify(row.collateralHash)},"judgedAt":${row.judgedAt},"collateral":${row.collateral}}`
    return c.body(body, 200, { 'content-type': 'application/json' })
  })
  const sessions = createSessions({ token: deps.token })
  // The status page and its sign-in handle their own session; everything after this needs the token (session.ts).
  app.route('/', createStatusRoutes({ sessions, snapshot: () => deps.monitor.snapshot(), logger: deps.logger }))
  app.use('*', hostAuthentication(sessions))

  app.post('/bootstrap', async (c) => c.json(await deps.node.bootstrap()))
  app.post('/register', async (c) => c.json(await deps.node.register()))
  app.post('/register/:enckey', async (c) => c.json(await deps.node.complete(parseEncKey(c.req.param('enckey')))))

  const helper = async (c: Context) => {
    const result = await deps.node.helpByRef(parseHelperRef(c.req.param('addr') ?? ''))
    if (result.decision === 'refused')
      return errorJson(c, 'unprocessable', `request ${result.requestId} refused: ${result.message}`, { reason: result.reason, requestId: result.requestId.toString() })
    // docs/protocol.md#verified-chain-view: without a gas key the host sends the freshness mark, then asks again.
    if (result.decision === 'needs_mark') return c.json(helpResultJson(result), 202)
    return c.json(helpResultJson(result))
  }
  app.get('/helper/:addr', helper)
  app.post('/helper/:addr', helper)

  app.get('/status', async (c) => c.json({ ...(await deps.node.status()), gasSpent: deps.gasSpent?.() ?? null }))

  // Generations (docs/protocol.md#node-flows-what-the-sidecar-does): the host drives what auto mode does by itself.
  app.post('/member', async (c) => c.json(await deps.node.joinAsMember()))
  app.get('/rotation', async (c) => c.json(await deps.node.rotation.status()))
  app.post('/rotation/propose', async (c) => {
    const supersede = c.req.query('supersede')
    if (supersede !== undefined && supersede !== 'true' && supersede !== 'false') throw new KeymanagerError('bad_request', 'supersede must be true or false')
    return c.json(await deps.node.rotation.propose({ supersede: supersede === 'true' }))
  })
  app.post('/rotation/acknowledge', async (c) => c.json(await deps.node.rotation.acknowledge()))
  app.post('/rotation/commit', async (c) => c.json(await deps.node.rotation.commit()))
  // Guardian escrow and recovery (docs/protocol.md#guardians, docs/protocol.md#recovery).
  app.post('/escrow', async (c) => c.json(await deps.node.publishEscrow()))
  app.post('/recover/:enckey', async (c) => c.json(await deps.node.recover(parseEncKey(c.req.param('enckey')))))
  app.get('/openapi.json', (c) => c.json(hostOpenApiDocument()))

  app.get('/metrics', async (c) => {
    const registry = deps.metrics.registry
    return c.text(await registry.metrics(), 200, { 'content-type': registry.contentType })
  })
  return app
}
