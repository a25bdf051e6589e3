// Which pod is calling the TCP pod listener (docs/protocol.md#pod-identity). A pod gets the keys of its
// name, so the name must come from something the pod cannot choose and the host cannot forge:
//   1. the static map of the measured settings (caller IP → pod name);
//   2. forward-confirmed reverse DNS through the resolver the measured settings name (never the host's resolv.conf):
//      the caller's address must be in an allowed source range, its PTR name must resolve (A/AAAA) back to that
//      address, and a measured rule turns the full name into the compose service (project prefix and replica index
//      stripped), so replicas share keys and two namespaces never collide;
//   3. devnet entry only: the `x-keymanager-pod` header, said to be insecure in the node's log.
// Per-pod unix sockets (socket.ts) need none of this: access to the socket file is the identity. They are the
// recommended production default; the TCP listener is for pods that cannot mount a socket.
//
// Decisions written down here:
// - A PTR answer alone proves nothing (whoever controls the reverse zone writes it); the forward lookup of that name
//   through the measured resolver must contain the caller's address. Every PTR name is checked; if the confirmed
//   names give different pod names the caller is refused as ambiguous.
// - By default (`cacheSeconds` 0) every call confirms the name again (PTR, then A/AAAA): the first call after the
//   forward record moved is refused, so an address a new container took over never gets the previous pod's keys.
//   Only concurrent calls from one address share one lookup. A cache is the operator's explicit choice
//   (`cacheSeconds` > 0): a confirmed name is then reused for at most that long (never beyond the smallest TTL of the
//   A/AAAA answer), and inside that window a reused address gets the previous pod's name; after it the name is
//   confirmed again and dropped if the forward lookup no longer contains the address. Answers are never cached
//   negatively.
// - DNS failures (timeout, SERVFAIL, no record) refuse the caller (403): a pod name is never guessed.
// - Names are compared lowercase without the trailing dot; labels may hold `_` (docker network names do).
import { BlockList, isIP } from 'node:net'
import { Resolver } from 'node:dns/promises'
import type { MiddlewareHandler } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'
import { KeymanagerError } from '../errors.ts'

/** Header naming the pod; honoured only by the devnet entry (docs/protocol.md#measured-settings). */
export const DEVNET_POD_HEADER = 'x-keymanager-pod'

// A pod name is a DNS name (compose service or k8s pod names): labels of [a-z0-9_-], dots between, ≤ 253.
const POD_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/

export function parsePodName(value: string): string {
  const name = value.trim().toLowerCase().replace(/\.$/, '')
  if (!POD_NAME.test(name)) throw new KeymanagerError('bad_request', 'pod name must be a DNS name (letters, digits, hyphens, underscores, dots; at most 253)')
  return name
}

/** How a confirmed DNS name becomes the compose service's pod name (measured: `pods.dns.rule`). */
export type ServiceRule = {
  /** Compose project: the first label must start with `<project>-` or `<project>_`, which is stripped. */
  project?: string
  /** Strip a trailing `-<n>` or `_<n>` (the replica index) from the first label. */
  replicaIndex: boolean
  /** The name must end in `.<domain>` (the compose network, a k8s namespace suffix), which is stripped. */
  domain?: string
}

/**
 * The pod name of a confirmed DNS name under `rule`, or a reason it has none. `myapp-web-2.myapp_default` with
 * `{project: "myapp", replicaIndex: true, domain: "myapp_default"}` is `web`; `web-0.nsa` with `{replicaIndex: true}`
 * is `web.nsa` (the rest of the name is kept, so namespaces stay apart).
 */
export function servicePodName(dnsName: string, rule: ServiceRule): { pod: string } | { refused: string } {
  let name = dnsName.toLowerCase().replace(/\.$/, '')
  if (rule.domain !== undefined) {
    const suffix = `.${rule.domain.toLowerCase()}`
    if (!name.endsWith(suffix)) return { refused: `its name is not in the domain ${rule.domain}` }
    name = name.slice(0, -suffix.length)
  }
  const dot = name.indexOf('.')
  let label = dot === -1 ? name : name.slice(0, dot)
  const rest = dot === -1 ? '' : name.slice(dot)
  if (rule.project !== undefined) {
    const project = rule.project.toLowerCase()
    if (!label.startsWith(`${project}-`) && !label.startsWith(`${project}_`)) return { refused: `its name is not a container of project ${rule.project}` }
    label = label.slice(project.length + 1)
  }
  if (rule.replicaIndex) label = label.replace(/[-_][0-9]+$/, '')
  try {
    return { pod: parsePodName(label + rest) }
  } catch {
    return { refused: 'its name gives no valid pod name' }
  }
}

/** Forward-confirmed reverse DNS (measured: `pods.dns`). */
export type DnsIdentityOptions = {
  /** The DNS server asked, `ip` or `ip:port` (`[ipv6]:port`); docker's embedded DNS is 127.0.0.11. */
  resolver: string
  /** CIDR ranges callers may come from; anyone else is refused before any lookup. */
  sourceRanges: string[]
  rule: ServiceRule
  /** Seconds a confirmed name is reused before it is confirmed again (capped by the answer's TTL). */
  cacheSeconds: number
  /** Per query. */
  timeoutMs?: number
  /** Milliseconds clock, for tests. */
  now?: () => number
}

export type PodIdentityOptions = {
  /** The devnet entry: the `x-keymanager-pod` header names the pod. */
  devnet: boolean
  /** Static map from caller IP address to pod name; checked first. */
  staticNames: Record<string, string>
  /** Forward-confirmed reverse DNS; without it, callers not in `staticNames` are refused. */
  dns?: DnsIdentityOptions
}

const CACHE_LIMIT = 10_000

function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return (mapped ? mapped[1]! : address).toLowerCase()
}

/** Parses `a.b.c.d/n` or `ipv6/n` into a BlockList; throws a RangeError naming the bad range. */
export function sourceRangeList(ranges: readonly string[]): BlockList {
  const list = new BlockList()
  for (const range of ranges) {
    const [address, prefix, extra] = range.split('/')
    const family = isIP(address ?? '')
    const bits = Number(prefix)
    if (extra !== undefined || family === 0 || !/^\d{1,3}$/.test(prefix ?? '') || bits > (family === 4 ? 32 : 128))
      throw new RangeError(`source range ${range} is not a CIDR range`)
    list.addSubnet(address!, bits, family === 4 ? 'ipv4' : 'ipv6')
  }
  return list
}

/** `ip` or `ip:port` or `[ipv6]:port`, as the resolver accepts it; throws a RangeError. */
export function checkResolverAddress(value: string): string {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value)
  const plain = /^([^:]+)(?::(\d{1,5}))?$/.exec(value)
  const [address, port] = bracketed ? [bracketed[1]!, bracketed[2]] : plain ? [plain[1]!, plain[2]] : [value, undefined]
  if (isIP(address) === 0 || (port !== undefined && (Number(port) < 1 || Number(port) > 65535)))
    throw new RangeError(`resolver ${value} is not an IP address with an optional port`)
  return value
}

/** Resolves a caller address to its pod name by forward-confirmed reverse DNS; throws KeymanagerError `forbidden`. */
export function createDnsIdentity(options: DnsIdentityOptions) {
  const ranges = sourceRangeList(options.sourceRanges)
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 })
  resolver.setServers([checkResolverAddress(options.resolver)])
  const now = options.now ?? Date.now
  const cache = new Map<string, { pod: string; until: number }>()
  const inFlight = new Map<string, Promise<string>>()
  const refuse = (address: string, why: string) => new KeymanagerError('forbidden', `cannot tell which pod is calling from ${address}: ${why}`)

  async function forwardTtl(name: string, address: string, family: 4 | 6): Promise<number | null> {
    let answers: { address: string; ttl: number }[]
    try {
      answers = family === 4 ? await resolver.resolve4(name, { ttl: true }) : await resolver.resolve6(name, { ttl: true })
    } catch {
      return null
    }
    const match = answers.filter((a) => normalizeAddress(a.address) === address)
    if (match.length === 0) return null
    return Math.min(...answers.map((a) => a.ttl))
  }

  async function confirm(address: string, family: 4 | 6): Promise<string> {
    let names: string[]
    try {
      names = await resolver.reverse(address)
    } catch {
      throw refuse(address, 'no reverse DNS name')
    }
    const confirmed: { pod: string; ttl: number }[] = []
    let lastReason = 'its reverse DNS name does not resolve back to it'
    for (const name of names) {
      const ttl = await forwardTtl(name, address, family)
      if (ttl === null) continue
      const derived = servicePodName(name, options.rule)
      if ('refused' in derived) {
        lastReason = derived.refused
        continue
      }
      confirmed.push({ pod: derived.pod, ttl })
    }
    if (confirmed.length === 0) throw refuse(address, lastReason)
    const pods = new Set(confirmed.map((c) => c.pod))
    if (pods.size > 1) throw refuse(address, `its names give several pods (${[...pods].join(', ')})`)
    const pod = confirmed[0]!.pod
    const seconds = Math.min(options.cacheSeconds, ...confirmed.map((c) => c.ttl))
    if (seconds > 0) {
      if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!)
      cache.set(address, { pod, until: now() + seconds * 1000 })
    }
    return pod
  }

  return async function podOf(rawAddress: string): Promise<string> {
    const address = normalizeAddress(rawAddress)
    const family = isIP(address)
    if (family === 0) throw refuse(rawAddress.slice(0, 64), 'not an IP address')
    if (!ranges.check(address, family === 4 ? 'ipv4' : 'ipv6')) throw refuse(address, 'its address is not in the allowed source ranges')
    const cached = cache.get(address)
    if (cached && cached.until > now()) return cached.pod
    // Expired: dropped now, and confirmed again below; a name that no longer resolves to the address is refused.
    cache.delete(address)
    let pending = inFlight.get(address)
    if (!pending) {
      pending = confirm(address, family as 4 | 6).finally(() => inFlight.delete(address))
      inFlight.set(address, pending)
    }
    return pending
  }
}

/**
 * Resolves the calling pod's name into `c.var.pod`: the devnet header (devnet entry only), the static map, then
 * forward-confirmed reverse DNS when the measured settings configure it.
 */
export function podIdentity(options: PodIdentityOptions): MiddlewareHandler<{ Variables: { pod: string } }> {
  const staticNames = new Map(Object.entries(options.staticNames).map(([ip, name]) => [normalizeAddress(ip), parsePodName(name)]))
  const dns = options.dns ? createDnsIdentity(options.dns) : undefined

  return async function resolvePod(c, next) {
    if (options.devnet) {
      const header = c.req.header(DEVNET_POD_HEADER)
      if (header !== undefined) {
        c.set('pod', parsePodName(header))
        return next()
      }
    }
    const raw = getConnInfo(c).remote.address
    if (!raw) throw new KeymanagerError('forbidden', 'cannot tell which pod is calling (no peer address)')
    const fixed = staticNames.get(normalizeAddress(raw))
    if (fixed) {
      c.set('pod', fixed)
      return next()
    }
    if (!dns) throw new KeymanagerError('forbidden', 'cannot tell which pod is calling (its address has no static name and DNS identity is off)')
    c.set('pod', await dns(raw))
    return next()
  }
}
