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
  node: Pick<KeymanagerNode, 'master' | 'state' | 'generation'>
  chainId: number
  registry: Address
  /** This node's settingsDigest (docs/protocol.md#measured-settings), shown by dstack `Info`. */
  settingsDigest: Hex
  /** Pod name → pinned 20-byte appId (docs/protocol.md#keys-and-derivations), e.g. to keep a dstack app's keys across a migration. */
  appIds: Record<string, Uint8Array>
  identity: PodIdentityOptions
  /** The node's quote provider, for the dstack routes (wrapped once per node by podTeeFor: protocol-shaped data refused). */
  quoteProvider: QuoteProvider
  version: string
  logger: Logger
}

type Env = { Variables: { pod: string } }

/** The pod listener (docs/protocol.md#http-api): keys for the pods of this CVM. */
export function createPodApp(deps: PodAppDeps) {
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
  // The /sealkey body is a pure function of (pod, generation): serve it from memory. The cache lives in the TEE
  // like the master secret, and is dropped when the generation changes.
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

  app.get('/sealkey', (c) => {
    const master = requireReady()
    const pod = c.get('pod')
    if (cachedGeneration !== deps.node.generation) {
      sealkeyBodies.clear()
      cachedGeneration = deps.node.generation
    }
    let body = sealkeyBodies.get(pod)
    if (!body) {
      const appId = appIdOf(pod)
      body = JSON.stringify({ key: toHex0x(master.sealkey(appId)), appId: toHex0x(appId), generation: deps.node.generation })
      if (sealkeyBodies.size > 10_000) sealkeyBodies.clear()
      sealkeyBodies.set(pod, body)
    }
    return c.body(body, 200, { 'content-type': 'application/json' })
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
    })
  })

  // dstack guest-agent API (docs/protocol.md#http-api): same listener, same pod identity, its own error shape.
  app.route('/', createDstackApp(dstackDeps(deps, podResolverFromMiddleware(identity, appIdOf), requireReady)))

  return app
}

/** Dependencies of the dstack routes, shared by the pod listener and the per-pod unix sockets. */
export function dstackDeps(deps: PodAppDeps, resolvePodAppId: PodResolver, master: () => MasterSecret): DstackAppDeps {
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
