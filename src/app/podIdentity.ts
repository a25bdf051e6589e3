import { reverse } from 'node:dns/promises'
import type { MiddlewareHandler } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'
import { KeymanagerError } from '../errors.ts'

/** Header naming the pod; honoured only in devnet mode (docs/protocol.md#http-api). */
export const DEVNET_POD_HEADER = 'x-keymanager-pod'

// A pod name is a DNS name (compose service or k8s pod names): labels of [a-z0-9-], dots between, ≤ 253.
const POD_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

export function parsePodName(value: string): string {
  const name = value.trim().toLowerCase().replace(/\.$/, '')
  if (!POD_NAME.test(name)) throw new KeymanagerError('bad_request', 'pod name must be a DNS name (letters, digits, hyphens, dots; at most 253)')
  return name
}

export type PodIdentityOptions = {
  devnet: boolean
  /** Static map from caller IP address to pod name; checked before reverse DNS. */
  staticNames: Record<string, string>
  /** Reverse lookup of an IP; injected so tests need no DNS server. Defaults to node's resolver. */
  reverseLookup?: (ip: string) => Promise<string[]>
  /** Seconds a reverse-DNS answer is reused (lookups would otherwise dominate `/sealkey`). */
  cacheSeconds?: number
}

/**
 * Resolves the calling pod's name into `c.var.pod`. In production: the static map, else reverse DNS of the
 * peer address, first label only (compose/k8s give `service-1.network`; the service is the pod's identity).
 * In devnet mode the `x-keymanager-pod` header wins, so one person can act as several pods.
 */
export function podIdentity(options: PodIdentityOptions): MiddlewareHandler<{ Variables: { pod: string } }> {
  const lookup = options.reverseLookup ?? reverse
  const ttlMs = (options.cacheSeconds ?? 60) * 1000
  const cache = new Map<string, { name: string | null; until: number }>()
  const staticNames = new Map(Object.entries(options.staticNames).map(([ip, name]) => [ip, parsePodName(name)]))

  async function nameOf(ip: string): Promise<string | null> {
    const fixed = staticNames.get(ip)
    if (fixed) return fixed
    const cached = cache.get(ip)
    if (cached && cached.until > Date.now()) return cached.name
    let name: string | null = null
    try {
      const [host] = await lookup(ip)
      if (host) name = parsePodName(host.split('.')[0] ?? '')
    } catch {
      name = null
    }
    if (cache.size > 10_000) cache.clear()
    cache.set(ip, { name, until: Date.now() + ttlMs })
    return name
  }

  return async function resolvePod(c, next) {
    if (options.devnet) {
      const header = c.req.header(DEVNET_POD_HEADER)
      if (header !== undefined) {
        c.set('pod', parsePodName(header))
        return next()
      }
    }
    const ip = getConnInfo(c).remote.address?.replace(/^::ffff:/, '')
    const name = ip ? await nameOf(ip) : null
    if (!name) throw new KeymanagerError('forbidden', 'cannot tell which pod is calling (no static name or reverse DNS for its address)')
    c.set('pod', name)
    return next()
  }
}
