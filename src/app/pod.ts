import { Hono } from 'hono'
import type { Logger } from 'pino'
import type { Address, Hex } from 'viem'
import { KeymanagerError } from '../errors.ts'
import { appIdForPod } from '../keys/derive.ts'
import { parseHex, toHex0x } from '../keys/bytes.ts'
import type { KeymanagerNode } from '../node/node.ts'
import type { MasterSecret } from '../secret/masterSecret.ts'
import { podTeeFor } from '../tee/podTee.ts'
import type { QuoteProvider } from '../tee/types.ts'
import { createDstackApp, podResolverFromMiddleware, type DstackAppDeps, type PodResolver } from './dstack.ts'
import { createErrorHandler, notFound, parseInput } from './errors.ts'
import { podOpenApiDocument } from './openapi.ts'
import { podIdentity, type PodIdentityOptions } from './podIdentity.ts'

export type PodAppDeps = {
  /** `masterOf` and `generations` (older generations, docs/protocol.md#generations) default to the current generation only. */
  node: Pick<KeymanagerNode, 'master' | 'state' | 'generation'> & Partial<Pick<KeymanagerNode, 'masterOf' | 'generations'>>
  chainId: number
  registry: Address
  /** This node's settingsDigest (docs/protocol.md#measured-settings), shown by dstack `Info`. */
  settingsDigest: Hex
  /** Pod name → pinned 20-byte appId (docs/protocol.md#keys-and-derivations), e.g. to keep a dstack app's keys across a migration. */
  appIds: Record<string, Uint8Array>
  /** Pod name → pinned generation for GetKey (measured settings `pods.generations`, docs/protocol.md#generations). */
  generationPins?: Record<string, number>
  identity: PodIdentityOptions
  /** The node's quote provider, for the dstack routes (wrapped once per node by podTeeFor: protocol-shaped data refused). */
  quoteProvider: QuoteProvider
  version: string
  logger: Logger
}

type Env = { Variables: { pod: string } }

/** The pod listener (docs/protocol.md#http-api): keys for the pods of this CVM. */
export function createPodApp(input: PodAppDeps) {
  const deps = { ...input, node: withGenerations(input.node) }
  const app = new Hono<Env>()
  const appIdCache = new Map<string, Uint8Array>()
  function appIdOf(pod: string): Uint8Array {
    let id = deps.appIds[pod] ?? appIdCache.get(pod)
    if (!id) {
      id = appIdForPod(pod)
      if (appIdCache.size > 10_000) appIdCache.clear()
      appIdCache.set(pod, id)
    }
    return id
  }
  // The /sealkey body is a pure function of (pod, generation, revoked): serve it from memory. The cache lives in the
  // TEE like the master secret, and is dropped when the current generation changes.
  const sealkeyBodies = new Map<string, string>()
  let cachedGeneration = -1

  function requireReady() {
    if (deps.node.state !== 'ready') throw new KeymanagerError('not_ready', `node is ${deps.node.state}`)
    return deps.node.master()
  }

  app.onError(createErrorHandler(deps.logger))
  app.notFound(notFound)

  app.get('/healthz', (c) => c.json({ ok: true, state: deps.node.state }))
  app.get('/openapi.json', (c) => c.json(podOpenApiDocument()))

  const identity = podIdentity(deps.identity)
  app.use('/sealkey', identity)
  app.use('/attest/*', identity)

  app.use('/generations', identity)

  // `/sealkey` serves the current generation; `/sealkey?generation=N` an older one for migration: `"revoked": true`
  // when the registry revoked it, 410 once purged, 404 when this node never held it (docs/protocol.md#generations).
  app.get('/sealkey', (c) => {
    const query = c.req.query('generation')
    const requested = query === undefined ? undefined : parseInput(() => parseGeneration(query))
    requireReady()
    const pod = c.get('pod')
    if (cachedGeneration !== deps.node.generation) {
      sealkeyBodies.clear()
      cachedGeneration = deps.node.generation
    }
    const { secret, revoked } = deps.node.masterOf(requested ?? deps.node.generation)
    const g = requested ?? deps.node.generation
    const cacheKey = `${g}/${revoked ? 'r' : ''}/${pod}`
    let body = sealkeyBodies.get(cacheKey)
    if (!body) {
      const appId = appIdOf(pod)
      body = JSON.stringify({ key: toHex0x(secret.sealkey(appId)), appId: toHex0x(appId), generation: g, ...(revoked ? { revoked: true } : {}) })
      if (sealkeyBodies.size > 10_000) sealkeyBodies.clear()
      sealkeyBodies.set(cacheKey, body)
    }
    return c.body(body, 200, { 'content-type': 'application/json' })
  })

  app.get('/generations', (c) => {
    requireReady()
    return c.json({ current: deps.node.generation, generations: deps.node.generations() })
  })

  app.get('/attest/:appdata', (c) => {
    const appData = parseInput(() => parseHex(c.req.param('appdata'), { name: 'appdata', length: 32, prefix: 'optional' }))
    const master = requireReady()
    const hostname = c.get('pod')
    const signature = master.signAttestation({ chainId: deps.chainId, registry: deps.registry, hostname, appData })
    return c.json({
      hostname,
      appData: toHex0x(appData),
      signature: toHex0x(signature),
      signer: master.address,
      registry: deps.registry,
      chainId: deps.chainId,
      generation: deps.node.generation,
    })
  })

  // dstack guest-agent API (docs/protocol.md#http-api): same listener, same pod identity, its own error shape.
  app.route('/', createDstackApp(dstackDeps(deps, podResolverFromMiddleware(identity, appIdOf), podKeySource(deps))))

  return app
}

type PodNode = Pick<KeymanagerNode, 'master' | 'state' | 'generation' | 'masterOf' | 'generations'>

/** A node view without older generations serves the current one only. */
function withGenerations(node: PodAppDeps['node']): PodNode {
  if (node.masterOf && node.generations) return node as PodNode
  return {
    get state() {
      return node.state
    },
    get generation() {
      return node.generation
    },
    master: () => node.master(),
    masterOf(g: number) {
      if (g !== node.generation) throw new KeymanagerError('not_found', `generation ${g} is not held by this node (current: ${node.generation})`)
      return { secret: node.master(), revoked: false }
    },
    generations: () => [],
  }
}

/** `?generation=N`: a decimal generation, 1 to 2^53-1. */
export function parseGeneration(value: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new RangeError('generation must be a decimal integer from 1 to 2^53-1')
  return Number(value)
}

/**
 * The GetKey key source of a pod: its pinned generation (measured settings), else the current one. A pin to a revoked
 * generation fails closed (docs/protocol.md#generations): the registry no longer vouches for its keys.
 */
export function podKeySource(input: Pick<PodAppDeps, 'node' | 'generationPins'>): (pod?: string) => MasterSecret {
  const deps = { ...input, node: withGenerations(input.node) }
  return (pod) => {
    const pin = pod === undefined ? undefined : deps.generationPins?.[pod]
    if (pin === undefined) return deps.node.master()
    const { secret, revoked } = deps.node.masterOf(pin)
    if (revoked) throw new KeymanagerError('forbidden', `generation ${pin}, pinned for this pod, is revoked: its keys are no longer served`)
    return secret
  }
}

/** Dependencies of the dstack routes, shared by the pod listener and the per-pod unix sockets. */
export function dstackDeps(deps: PodAppDeps, resolvePodAppId: PodResolver, master: (pod?: string) => MasterSecret): DstackAppDeps {
  return {
    resolvePodAppId,
    master,
    tee: podTeeFor(deps.quoteProvider),
    info: () => ({
      chainId: deps.chainId,
      registry: deps.registry,
      settingsDigest: deps.settingsDigest,
      generation: deps.node.generation,
      version: deps.version,
      rev: '',
    }),
    logger: deps.logger,
  }
}
