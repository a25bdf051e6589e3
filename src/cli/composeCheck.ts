// `keymanager compose-check FILE` (docs/protocol.md#compose-check): refuses a compose file in which a service other than
// the sidecar can reach the platform's quote interface or seal-key source, or the sidecar's data. A container that
// reaches `/var/run/dstack.sock` gets quotes carrying the CVM's measurement and the dstack keys the `dstack` seal is
// made from; configfs-tsm (`/sys/kernel/config/tsm`) and Gramine's `/dev/attestation` are the raw quote interfaces.
//
// Decisions written down here:
// - The file is parsed as YAML 1.2 by js-yaml (pinned at 4.3.2, the version @lodestar/utils already brings in, so no
//   new code enters the tree), anchors and merge keys included, duplicate keys refused
//   (a file that means two things is not checked, it is refused).
// - A mount counts when its host source is a sensitive path, inside one, or an ancestor of one (`/var/run`, `/dev`,
//   `/sys` and `/` all expose the socket or the interface). Relative sources are taken from the file's directory.
//   A source with variables (`$VAR`, `${VAR}`) cannot be checked and is refused.
// - A named volume whose `driver_opts` bind a host directory (`o: bind`, `device: PATH`) counts as that host path.
//   Two volume keys that name the same volume (`name:`) count as one.
// - Also refused for other services: `privileged`, `cap_add` of SYS_ADMIN or ALL (it may mount configfs and reach
//   the TSM interface itself), `pid: host` or `pid: service:<sidecar>` (ptrace into the sidecar), `network_mode`
//   `host` or `service:<sidecar>` (the sidecar's loopback, its host listener included), `volumes_from` the sidecar,
//   devices that are TEE interfaces, and any mount of the sidecar's data volume.
// - For the sidecar itself: its image must be pinned by digest (on dstack the compose hash covers the image, so the
//   baked measured settings, only through the digest), and nothing from the host may be mounted over the app
//   directory where measured.json lives (an inline `configs` content is measured with the compose and allowed).
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, normalize, resolve } from 'node:path'
import yaml from 'js-yaml'
import { parseFlags, UsageError } from './args.ts'

export const COMPOSE_CHECK_USAGE = 'usage: keymanager compose-check FILE [--sidecar SERVICE] [--data-dir PATH] [--json]'
/** The sidecar's service name: pods reach it as `http://dstack-keymanager/` (docs/protocol.md#serving-pods). */
export const DEFAULT_SIDECAR = 'dstack-keymanager'

/** Host paths that are the quote interface or the seal-key source, with what they give. */
export const SENSITIVE_PATHS: Record<string, string> = {
  '/var/run/dstack.sock': "the dstack agent (quotes with this CVM's measurement, the keys the dstack seal is made from)",
  '/run/dstack.sock': "the dstack agent (quotes with this CVM's measurement, the keys the dstack seal is made from)",
  '/var/run/tappd.sock': "dstack's older agent socket (quotes and keys)",
  '/sys/kernel/config/tsm': 'configfs-tsm, the TDX quote interface',
  '/dev/attestation': "Gramine's attestation interface (quotes, the SGX sealing key)",
  '/dev/tdx_guest': 'the TDX guest device (reports and quotes)',
  '/dev/tdx-guest': 'the TDX guest device (reports and quotes)',
  '/dev/sgx_enclave': 'the SGX enclave device',
  '/dev/sgx/enclave': 'the SGX enclave device',
  '/dev/sgx_provision': 'the SGX provisioning device',
}
/** Where the production image keeps its code and measured.json (sidecar.Dockerfile). */
const APP_DIR = '/app'

export type Finding = { service: string; where: string; problem: string }

type Mount = { where: string; kind: 'bind' | 'volume' | 'other'; source: string | undefined; target: string | undefined }

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Top-level volumes: key → the volume it is (its `name`, else the key) or, for a bind through `driver_opts`, a host path. */
type VolumeTable = Map<string, { kind: 'bind' | 'volume'; source: string }>

function volumeTable(doc: Record<string, unknown>, baseDir: string): VolumeTable {
  const table: VolumeTable = new Map()
  const volumes = isObject(doc.volumes) ? doc.volumes : {}
  for (const [key, definition] of Object.entries(volumes)) {
    const def = isObject(definition) ? definition : {}
    const opts = isObject(def.driver_opts) ? def.driver_opts : {}
    const bind = typeof opts.o === 'string' && opts.o.split(',').includes('bind') && typeof opts.device === 'string'
    if (bind) table.set(key, { kind: 'bind', source: hostPath(opts.device as string, baseDir) })
    else table.set(key, { kind: 'volume', source: typeof def.name === 'string' ? def.name : key })
  }
  return table
}

/** Short (`src:dst[:mode]`) or long (`{type, source, target}`) volume entries. */
function mountsOf(service: Record<string, unknown>, baseDir: string, table: VolumeTable): Mount[] {
  const volumes = Array.isArray(service.volumes) ? service.volumes : []
  const named = (mount: Mount): Mount => {
    if (mount.kind !== 'volume' || mount.source === undefined) return mount
    const volume = table.get(mount.source)
    return volume === undefined ? mount : { ...mount, ...volume }
  }
  return volumes.map((entry, i): Mount => named(mountOf(entry, i, baseDir)))
}

function mountOf(entry: unknown, i: number, baseDir: string): Mount {
  const where = `volumes[${i}]`
  if (typeof entry === 'string') {
    const parts = entry.split(':')
    if (parts.length === 1) return { where, kind: 'volume', source: undefined, target: parts[0] }
    const [source, target] = parts as [string, string]
    const bind = source.startsWith('/') || source.startsWith('.') || source.startsWith('~') || source.includes('$')
    return { where, kind: bind ? 'bind' : 'volume', source: bind ? hostPath(source, baseDir) : source, target }
  }
  if (isObject(entry)) {
    const type = typeof entry.type === 'string' ? entry.type : 'volume'
    const source = typeof entry.source === 'string' ? entry.source : undefined
    const target = typeof entry.target === 'string' ? entry.target : undefined
    if (type === 'bind') return { where, kind: 'bind', source: source === undefined ? undefined : hostPath(source, baseDir), target }
    if (type === 'volume') return { where, kind: 'volume', source, target }
    return { where, kind: 'other', source, target }
  }
  return { where, kind: 'other', source: undefined, target: undefined }
}

function hostPath(source: string, baseDir: string): string {
  if (source.includes('$') || source.startsWith('~')) return source
  return normalize(isAbsolute(source) ? source : resolve(baseDir, source)).replace(/\/+$/, '') || '/'
}

/** `a` is `b`, inside `b`, or an ancestor of `b`. */
function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string) => x === y || x.startsWith(y === '/' ? '/' : `${y}/`)
  return inside(a, b) || inside(b, a)
}

function sensitiveHit(path: string): string | undefined {
  const hit = Object.keys(SENSITIVE_PATHS).find((sensitive) => overlaps(path, sensitive))
  return hit === undefined ? undefined : `${hit}: ${SENSITIVE_PATHS[hit]}`
}

function devicesOf(service: Record<string, unknown>): { where: string; source: string }[] {
  const devices = Array.isArray(service.devices) ? service.devices : []
  return devices.flatMap((entry, i) => {
    const source = typeof entry === 'string' ? entry.split(':')[0] : isObject(entry) && typeof entry.source === 'string' ? entry.source : undefined
    return source === undefined ? [] : [{ where: `devices[${i}]`, source }]
  })
}

/** Parses compose YAML; throws a UsageError with one line when it is not a compose file. */
export function parseCompose(text: string): Record<string, unknown> {
  let doc: unknown
  try {
    doc = yaml.load(text, { json: false })
  } catch (error) {
    throw new UsageError(`not valid YAML: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!isObject(doc) || !isObject(doc.services)) throw new UsageError('not a compose file: no services mapping')
  return doc
}

/** Every finding for `doc` (a parsed compose file); none means the file passes. */
export function checkCompose(doc: Record<string, unknown>, options: { sidecar: string; dataDir: string; baseDir: string }): Finding[] {
  const services = doc.services as Record<string, unknown>
  const sidecar = services[options.sidecar]
  if (!isObject(sidecar)) throw new UsageError(`no service named ${options.sidecar} (name the sidecar with --sidecar)`)
  const findings: Finding[] = []
  const add = (service: string, where: string, problem: string) => findings.push({ service, where, problem })

  const table = volumeTable(doc, options.baseDir)
  const sidecarMounts = mountsOf(sidecar, options.baseDir, table)
  const dataMount = sidecarMounts.find((m) => m.target !== undefined && overlaps(normalize(m.target), options.dataDir))
  if (!dataMount || dataMount.source === undefined)
    add(options.sidecar, 'volumes', `no volume is mounted at its data dir ${options.dataDir} (state would live in the container layer)`)
  for (const mount of sidecarMounts) {
    if (mount.target !== undefined && overlaps(normalize(mount.target), APP_DIR))
      add(options.sidecar, mount.where, `mounts ${mount.source ?? 'a volume'} over ${mount.target}: the measured settings and code in ${APP_DIR} would come from outside the image`)
  }
  const configs = Array.isArray(sidecar.configs) ? sidecar.configs : []
  const topConfigs = isObject(doc.configs) ? doc.configs : {}
  configs.forEach((entry, i) => {
    const name = typeof entry === 'string' ? entry : isObject(entry) && typeof entry.source === 'string' ? entry.source : undefined
    const target = isObject(entry) && typeof entry.target === 'string' ? entry.target : name === undefined ? undefined : `/${name}`
    const definition = name === undefined ? undefined : topConfigs[name]
    const inline = isObject(definition) && typeof definition.content === 'string'
    if (target !== undefined && overlaps(normalize(target), APP_DIR) && !inline)
      add(options.sidecar, `configs[${i}]`, `puts config ${name ?? '?'} at ${target} from outside the compose file: only inline content is measured with it`)
  })
  const image = typeof sidecar.image === 'string' ? sidecar.image : ''
  if (!/@sha256:[0-9a-f]{64}$/.test(image))
    add(options.sidecar, 'image', `image ${image || '(none)'} is not pinned by digest (@sha256:…): the compose hash would not cover the image and its measured settings`)

  for (const [name, service] of Object.entries(services)) {
    if (name === options.sidecar || !isObject(service)) continue
    for (const mount of mountsOf(service, options.baseDir, table)) {
      if (mount.kind === 'bind' && mount.source !== undefined) {
        if (mount.source.includes('$') || mount.source.startsWith('~'))
          add(name, mount.where, `mounts ${mount.source}: a path with variables cannot be checked`)
        else {
          const hit = sensitiveHit(mount.source)
          if (hit) add(name, mount.where, `mounts ${mount.source}, which reaches ${hit}`)
        }
      }
      if (dataMount?.source !== undefined && mount.source !== undefined && mount.kind === dataMount.kind) {
        const same = mount.kind === 'volume' ? mount.source === dataMount.source : overlaps(mount.source, dataMount.source)
        if (same) add(name, mount.where, `mounts ${mount.source}, the sidecar's data volume (sealed secrets, its database)`)
      }
    }
    for (const device of devicesOf(service)) {
      const hit = sensitiveHit(normalize(device.source))
      if (hit) add(name, device.where, `has device ${device.source}, which is ${hit}`)
    }
    if (service.privileged === true) add(name, 'privileged', 'is privileged: it can reach every device and configfs, the TEE interfaces included')
    if (service.pid === 'host' || service.pid === `service:${options.sidecar}`)
      add(name, 'pid', `shares a process namespace (${String(service.pid)}) that lets it read the sidecar's memory`)
    if (service.network_mode === 'host' || service.network_mode === `service:${options.sidecar}`)
      add(name, 'network_mode', `shares a network namespace (${String(service.network_mode)}): the sidecar's loopback, its host listener included`)
    const caps = Array.isArray(service.cap_add) ? service.cap_add.map((c) => String(c).toUpperCase().replace(/^CAP_/, '')) : []
    for (const cap of caps.filter((c) => c === 'SYS_ADMIN' || c === 'ALL'))
      add(name, 'cap_add', `adds ${cap}: it can mount configfs and reach /sys/kernel/config/tsm, the TDX quote interface`)
    const from = Array.isArray(service.volumes_from) ? service.volumes_from : []
    from.forEach((entry, i) => {
      if (typeof entry === 'string' && entry.replace(/^service:/, '').split(':')[0] === options.sidecar)
        add(name, `volumes_from[${i}]`, "takes every volume of the sidecar, its data and the agent socket included")
    })
  }
  return findings
}

/** `keymanager compose-check FILE`: exit 0 when nothing is found, 1 with one line per finding, 2 on bad input. */
export async function runComposeCheck(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  try {
    const { values, positionals } = parseFlags(argv, {
      sidecar: { type: 'string', default: DEFAULT_SIDECAR },
      'data-dir': { type: 'string', default: '/data' },
      json: { type: 'boolean', default: false },
    })
    if (positionals.length !== 1) throw new UsageError(`compose-check takes one FILE, got ${positionals.length}\n${COMPOSE_CHECK_USAGE}`)
    const file = positionals[0]!
    const dataDir = values['data-dir']!
    if (!isAbsolute(dataDir)) throw new UsageError('--data-dir must be an absolute path inside the sidecar')
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new UsageError(`${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
    let findings: Finding[]
    try {
      findings = checkCompose(parseCompose(text), { sidecar: values.sidecar!, dataDir: normalize(dataDir), baseDir: dirname(resolve(file)) })
    } catch (error) {
      if (error instanceof UsageError) throw new UsageError(`${file}: ${error.message}`)
      throw error
    }
    if (values.json) out(JSON.stringify({ ok: findings.length === 0, findings }, null, 2))
    else {
      for (const f of findings) out(`✗ service ${f.service}: ${f.where} ${f.problem}`)
      out(findings.length === 0 ? `✓ ${file}: no service besides ${values.sidecar} reaches the quote interface, the seal-key source or the sidecar's data` : `compose-check failed: ${findings.length} finding(s)`)
    }
    return findings.length === 0 ? 0 : 1
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    err(`keymanager compose-check: ${error.message.split('\n')[0]}`)
    return 2
  }
}
