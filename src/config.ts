// A node's two settings files (docs/protocol.md#measured-settings):
// - measured settings: every setting a security decision rests on. They come only from what the TEE measures: the
//   production entry reads them from MEASURED_SETTINGS_FILE, a file baked into the image at build time (its bytes are
//   part of the measurement), never from a path, flag or variable the host can choose. Their `settingsDigest` is
//   bound into the node's report data.
// - host settings (`serve --config FILE`): what the operator may choose without deciding anything that matters:
//   listen addresses, RPC, beacon and PCCS URLs, the gas key and host token files, auto-mode timing, log level.
//   A host file that sets a measured setting is refused at start with a one-line reason naming the key.
// `keymanager init` writes both files; their keys never overlap (except the `chain` object, split by key).
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getAddress, type Address } from 'viem'
import { z } from 'zod'
import { checkResolverAddress, parsePodName } from './app/podIdentity.ts'
import { lightClientSettingsSchema } from './chain/lightClient/settings.ts'

const hex = (bytes: number, what: string) =>
  z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `${what}: expected 0x and ${bytes * 2} hex digits`)
const port = z.number().int().min(0).max(65535)
/** A path inside the image or CVM: measured settings name no path relative to anything the host chooses. */
const imagePath = z.string().min(1).refine(isAbsolute, 'must be an absolute path')
const podName = z.string().transform((value, ctx) => {
  try {
    const name = parsePodName(value)
    if (name !== value) ctx.addIssue({ code: 'custom', message: `pod name must be written in its normal form ("${name}")` })
    return name
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message })
    return z.NEVER
  }
})

// ---- measured settings ----------------------------------------------------------------------------------------

/**
 * The package root (`/app` in the image): one level above this module, and above the production bundle
 * (dist/keymanager.js, scripts/build.ts), which sits at the same depth so that both resolve the same files.
 */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** Where the production entry reads its measured settings: `measured.json` at the package root. */
export const MEASURED_SETTINGS_FILE = resolve(PACKAGE_ROOT, 'measured.json')
export const MEASURED_SETTINGS_VERSION = 1

/** The chain this node serves; the RPC URL that reaches it is a host setting. */
export const measuredChainSchema = z.strictObject({
  chainId: z.number().int().positive(),
  /** Lowercased, so the digest names the address and not its spelling. */
  registry: hex(20, 'chain.registry').transform((a) => a.toLowerCase() as Address),
  /**
   * How the node believes the chain (docs/protocol.md#verified-chain-view): `light-client`, finalized light-client
   * headers and storage proofs, the default and the only mode of a production build. The devnet entry also takes
   * `trusted-rpc` (src/devnet/settings.ts), which believes the RPC and says so at start.
   */
  verification: z.literal('light-client').default('light-client'),
})

/** Quote providers of production builds (docs/protocol.md#tee-providers); their verifiers trust Intel's SGX Root CA only. */
export const hardwareQuoteOptions = [
  /** Intel TDX guest: Linux configfs-tsm. */
  z.strictObject({ provider: z.literal('tdx'), tsmDir: imagePath.optional() }),
  /** A dstack CVM: the guest agent's GetQuote on its unix socket. */
  z.strictObject({ provider: z.literal('dstack'), socket: imagePath.optional() }),
  /** An SGX enclave under Gramine with DCAP attestation. */
  z.strictObject({ provider: z.literal('sgx-gramine'), attestationDir: imagePath.optional() }),
] as const

/**
 * Seal providers of production builds (docs/protocol.md#node-state): `dstack` (key from the guest agent), `gramine`
 * (the SGX MRENCLAVE sealing key), `none` (memory only). A bare name is short for `{provider}`.
 */
export const hardwareSealOptions = [
  z.strictObject({ provider: z.literal('dstack'), socket: imagePath.optional() }),
  z.strictObject({ provider: z.literal('gramine'), attestationDir: imagePath.optional() }),
  z.strictObject({ provider: z.literal('none') }),
] as const
/** A bare provider name is short for `{"provider": name}`; the digest sees the object form. */
export const sealShorthand = (value: unknown) => (typeof value === 'string' ? { provider: value } : value)

/** How the sidecar tells which pod is calling (docs/protocol.md#http-api), and the appIds pinned to pods. */
export const podsSchema = z
  .strictObject({
    /**
     * dstack-compatible unix sockets, one per pod: a socket carries no peer address, so access to the socket file is
     * the identity (the compose file, itself measured, mounts each socket into its pod only).
     */
    sockets: z
      .array(z.strictObject({ path: imagePath, pod: podName, mode: z.number().int().min(0).max(0o777).optional() }))
      .default([]),
    /** Caller IP address → pod name on the TCP listener; checked before reverse DNS. */
    names: z.record(z.union([z.ipv4(), z.ipv6()]), podName).default({}),
    /** Pod name → pinned 20-byte appId (docs/protocol.md#keys-and-derivations), lowercased. */
    appIds: z.record(podName, hex(20, 'pods.appIds value').transform((a) => a.toLowerCase())).default({}),
    /**
     * Forward-confirmed reverse DNS on the TCP pod listener (src/app/podIdentity.ts). Absent: only `names` identify
     * TCP callers.
     */
    dns: z
      .strictObject({
        /** The DNS server asked, `ip[:port]` (docker's embedded DNS: `127.0.0.11`); never the host's resolv.conf. */
        resolver: z.string().refine(
          (value) => {
            try {
              return checkResolverAddress(value) === value
            } catch {
              return false
            }
          },
          { message: 'must be an IP address with an optional port' },
        ),
        /** CIDR ranges callers may come from (the compose network's subnet); anyone else is refused before any lookup. */
        sourceRanges: z.array(z.union([z.cidrv4(), z.cidrv6()])).min(1),
        /** The compose service from the confirmed name: project prefix, replica index and domain stripped. */
        rule: z
          .strictObject({
            project: z.string().min(1).max(63).optional(),
            replicaIndex: z.boolean().default(true),
            domain: z.string().min(1).max(253).optional(),
          })
          .default({ replicaIndex: true }),
        /**
         * Seconds a confirmed name is reused before DNS is asked again (capped by the answer's TTL). Default 0: every
         * call confirms the name again, so a name is never served after its forward record moved. Above 0 is an
         * operator's choice, with its window: an address that another container takes over inside it gets the
         * previous pod's name and keys (docs/protocol.md#pod-identity).
         */
        cacheSeconds: z.number().int().min(0).max(300).default(0),
      })
      .optional(),
    /**
     * Pod name → pinned generation (docs/protocol.md#generations): the pod's `GetKey` answers stay byte-identical
     * across rotations (wallet-style keys); a pin to a revoked generation fails closed. Absent = no pins (no default, so
     * the settings digest of files without it is unchanged).
     */
    generations: z.record(podName, z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)).optional(),
  })
  .default({ sockets: [], names: {}, appIds: {} })

/** A request's reference block may trail its inclusion by at most this many blocks (the contract allows 256). */
export const maxReferenceAgeSchema = z.number().int().min(1).max(256).default(64)

/**
 * How the node believes the chain (docs/protocol.md#verified-chain-view). Every decision to release or accept `M` reads
 * the registry through this view, so each of these settings is a security setting.
 */
export const freshnessSchema = z
  .strictObject({
    /**
     * Longest wait, in seconds, for the verified view to prove a decision's own freshness mark; after it the decision
     * is refused (`stale_chain_view`). It bounds how far behind real time the state a decision uses may be: the mark
     * is made when the decision starts. Ethereum finalizes a block in about 13 minutes; a devnet in seconds.
     */
    timeoutSeconds: z.number().int().min(1).max(86_400).default(1800),
  })
  .default({ timeoutSeconds: 1800 })

// A beacon chain of the image's own (`lightClient.network: "devnet"` with its chain spec: genesis, validators root, fork
// epochs) is allowed in a production build: like the checkpoint root, it is a trust root the image builder chooses, the
// measurement binds it, and the light client names it loudly at start (TRUSTING A DEVNET SYNC COMMITTEE). The image
// test runs a production image against the devnet beacon chain this way. The optimistic option is devnet-only.
export const chainViewSchema = z.strictObject({
  /** keccak256 of the registry's runtime code: every proof checks that the account carries it (it pins the immutables). */
  registryCodeHash: hex(32, 'chainView.registryCodeHash').transform((h) => h.toLowerCase() as `0x${string}`),
  /** The light client's trust root: network (or devnet chain spec) and checkpoint (src/chain/lightClient/settings.ts). */
  lightClient: lightClientSettingsSchema,
  freshness: freshnessSchema,
})
export type ChainViewSettings = z.infer<typeof chainViewSchema>

/** The measured settings of a production build. Every key here is refused in a host file (`MEASURED_KEYS`). */
export const measuredSettingsSchema = z.strictObject({
  version: z.literal(MEASURED_SETTINGS_VERSION),
  chain: measuredChainSchema,
  quote: z.discriminatedUnion('provider', [...hardwareQuoteOptions]),
  seal: z.preprocess(sealShorthand, z.discriminatedUnion('provider', [...hardwareSealOptions])),
  pods: podsSchema,
  maxReferenceAge: maxReferenceAgeSchema,
  chainView: chainViewSchema,
})
export type MeasuredSettings = z.infer<typeof measuredSettingsSchema>

/** The `chainView` section of the devnet entry's `trusted-rpc` mode: no light client, the code hash optional. */
export type TrustedRpcChainView = { registryCodeHash?: `0x${string}` | undefined; freshness: z.infer<typeof freshnessSchema> }

/**
 * The verified chain view as `startNode` takes it (`chain.verification` with the `chainView` section): a production
 * build always has `light-client`; only the devnet entry may name `trusted-rpc` (src/devnet/settings.ts).
 */
export type ChainViewCore = ({ verification: 'light-client' } & ChainViewSettings) | ({ verification: 'trusted-rpc' } & TrustedRpcChainView)

/** What every entry's measured settings share, and all that `startNode` reads from them. */
export type MeasuredCore = Pick<MeasuredSettings, 'pods' | 'maxReferenceAge'> & {
  chain: Omit<MeasuredSettings['chain'], 'verification'> & { verification: 'light-client' | 'trusted-rpc' }
  chainView: ChainViewSettings | TrustedRpcChainView
}

/** `chain.verification` and the `chainView` section as one value; a light-client view without its trust root is refused. */
export function chainViewCore(measured: Pick<MeasuredCore, 'chain' | 'chainView'>): ChainViewCore {
  if (measured.chain.verification === 'trusted-rpc') return { verification: 'trusted-rpc', registryCodeHash: measured.chainView.registryCodeHash, freshness: measured.chainView.freshness }
  if (!('lightClient' in measured.chainView) || measured.chainView.registryCodeHash === undefined) {
    throw new Error('chainView: light-client verification needs registryCodeHash and lightClient (docs/protocol.md#verified-chain-view)')
  }
  return { verification: 'light-client', ...(measured.chainView as ChainViewSettings) }
}

/**
 * Settings that exist only in the devnet entry (`bin/keymanager-devnet.js`, src/devnet/settings.ts): the production
 * entry refuses each of them with this reason, whatever file it appears in.
 */
const DEVNET_ONLY: { path: string; applies: (value: unknown) => boolean; why: string }[] = [
  { path: 'devnet', applies: () => true, why: 'devnet mode exists only in the devnet entry (bin/keymanager-devnet.js), never in a production build' },
  { path: 'quote.provider', applies: (v) => v === 'simulated', why: 'the simulated TEE exists only in the devnet entry' },
  { path: 'quote.trustedRootCaFiles', applies: () => true, why: "production builds trust Intel's SGX Root CA only" },
  { path: 'seal', applies: (v) => v === 'dev-file' || (isObject(v) && v.provider === 'dev-file'), why: 'the dev-file seal exists only in the devnet entry' },
  {
    path: 'chain.verification',
    applies: (v) => v === 'trusted-rpc',
    why: 'production builds verify the chain with the light client and storage proofs (trusted-rpc believes the host\'s RPC)',
  },
  {
    path: 'chainView.lightClient.optimisticConfirmations',
    applies: () => true,
    why: 'production builds decide on finalized headers only',
  },
]

// ---- host settings --------------------------------------------------------------------------------------------

/** Self-running (`auto`, docs/protocol.md#flows without a host) and the chain watcher / outbox settings it implies. */
const autoSchema = z.strictObject({
  /** Register by itself when it holds no secret (and again when its request expires). */
  register: z.boolean().default(true),
  /** Answer other nodes' onboarding requests once ready. */
  help: z.boolean().default(true),
  /** Blocks an event must be buried under before the watcher processes it. */
  confirmations: z.number().int().min(0).max(128).default(0),
  pollIntervalMs: z.number().int().min(50).max(60_000).default(500),
  /** Gathering window before a batch's turns start, drawn in [min, max] ms per batch: requests sent together share one blob. */
  jitterMs: z.tuple([z.number().int().min(0), z.number().int().min(0)]).default([500, 2500]),
  maxBatch: z.number().int().min(1).max(200).default(50),
  /**
   * One helper's turn on a batch (docs/protocol.md#help-schedule): the next in the order acts this long after the one
   * before. It must outlast a helper's whole round, freshness mark to mined answer, or two answer and one reverts
   * (costing gas, never safety). With finalized headers on Ethereum the mark alone waits ~13 minutes, hence the default;
   * a devnet finalizing in seconds uses seconds.
   */
  slotMs: z.number().int().min(100).max(3_600_000).default(1_200_000),
  /** Blocks a broadcast tx may wait before it is replaced with higher fees (same nonce). */
  bumpAfterBlocks: z.number().int().min(1).max(1000).default(3),
  /** Take part in rotations and become a member when ready (docs/protocol.md#node-flows-what-the-sidecar-does). */
  rotate: z.boolean().default(true),
  /** Time each member rank waits before proposing or committing a rotation (src/node/auto.ts). */
  proposerSlotMs: z.number().int().min(100).max(3_600_000).default(10_000),
  /** A member that refused the pending proposal proposes a replacement after this long. */
  supersedeAfterMs: z.number().int().min(1000).max(86_400_000).default(120_000),
  /**
   * Escrow by itself (docs/protocol.md#guardians): publish the escrow of each held generation that has none to the
   * active guardian set, one node per network (the help schedule's order, src/node/auto.ts).
   */
  escrow: z.boolean().default(true),
  /** How often a ready node checks, on its verified view, whether a generation waits for its escrow. */
  escrowCheckMs: z.number().int().min(100).max(3_600_000).default(60_000),
})
export type AutoConfig = z.infer<typeof autoSchema> & { enabled: boolean }

/** `auto: true | false | {...}` as one settled object. */
export function resolveAuto(auto: HostSettings['auto']): AutoConfig {
  if (typeof auto === 'boolean') return { ...autoSchema.parse({}), enabled: auto }
  return { ...autoSchema.parse(auto), enabled: true }
}

/** Operator alert thresholds (src/monitor/alerts.ts); absent means the defaults. */
const alertsSchema = z.strictObject({
  /** Warn when this platform's DCAP collateral expires within this many days. */
  collateralExpiryDays: z.number().min(0).max(365).default(7),
  /** Warn when the gas key holds less than this many wei (decimal string). Default 0.05 ETH. */
  minGasBalanceWei: z.string().regex(/^[0-9]{1,40}$/, 'a decimal number of wei').default('50000000000000000'),
  /** Keep the new-TCB-evaluation-number alert up this many days after the number went up. */
  tcbRecoveryNoticeDays: z.number().min(0).max(365).default(30),
  /** How often the node quotes and verifies itself for the platform alerts. */
  platformCheckIntervalSeconds: z.number().int().min(10).max(86_400).default(600),
})
export type AlertsConfig = z.infer<typeof alertsSchema>

export function resolveAlerts(alerts: HostSettings['alerts']): AlertsConfig {
  return alertsSchema.parse(alerts ?? {})
}

/** Host settings (`keymanager serve --config FILE`): operations only; relative paths are relative to the file. */
/** Defaults of `watcher` (docs/protocol.md#limits): a real requester has one open request, rarely a few. */
export const DEFAULT_MAX_OPEN_PER_REQUESTER = 64
/** About 20 MB of rows at most (a stored request is under 1 KiB with its index entries). */
export const DEFAULT_MAX_OPEN_REQUESTS = 20_000

export const hostSettingsSchema = z.strictObject({
  dataDir: z.string().min(1),
  chain: z.strictObject({
    rpcUrl: z.url(),
    /** Block the registry was deployed in: where event scans start. */
    fromBlock: z.number().int().nonnegative().default(0),
    /** How long one RPC request may take before it counts as failed (and is retried). */
    rpcTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
    /**
     * Unix time Osaka activated on this chain (0: from genesis), for RPCs that do not answer eth_config: it says
     * whether blob txs carry v1 cell proofs (docs/protocol.md#blob-transactions). A wrong value only gets txs refused
     * by the mempool, so it is the host's to set.
     */
    osakaTime: z.number().int().nonnegative().optional(),
    /** Widest eth_getLogs range the node asks for, in blocks (docs/protocol.md#limits): public RPCs refuse wide ones. */
    maxLogRange: z.number().int().min(1).max(100_000).default(1000),
    /**
     * Beacon node serving light-client data (`/eth/v1/beacon/light_client/*`) for the verified chain view. Untrusted:
     * everything it serves is verified against the measured checkpoint. Required unless the view is `trusted-rpc`.
     */
    beaconUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** How often the view is polled while a decision waits for its freshness mark (ms). */
    viewPollIntervalMs: z.number().int().min(50).max(60_000).default(1000),
    /** How often the node moves its view forward when nothing waits on it, so `/status` shows the current lag (ms). */
    viewRefreshIntervalMs: z.number().int().min(100).max(600_000).default(12_000),
  }),
  blobs: z.strictObject({
    /** `anvil`: the devnet's RPC serves blobs by EL block number; `beacon`: a consensus node, by slot. */
    kind: z.enum(['anvil', 'beacon']),
    url: z.url(),
    /** Peers' archives (their host listener's public `GET /blobs/:versionedHash`), tried when the beacon node has no blob. */
    peers: z.array(z.strictObject({ url: z.url({ protocol: /^https?$/ }) })).default([]),
    /**
     * Most bytes of blob data the archive keeps (docs/protocol.md#limits); past it, new blobs are not archived and the
     * node logs it. Only blobs the node acted on are archived. Default 4 GiB (about 32k blobs).
     */
    archiveMaxBytes: z.number().int().min(131_072).max(Number.MAX_SAFE_INTEGER).default(4 * 1024 ** 3),
  }),
  /**
   * Bounds on the registry requests the chain watcher stores (docs/protocol.md#limits): anyone can post onboarding
   * requests, each naming any key, so the rows they leave in the node's database are capped, per requester and in all.
   */
  watcher: z
    .strictObject({
      /** Most unanswered requests kept per requester (the address of the request's key): its latest ones. */
      maxOpenPerRequester: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_OPEN_PER_REQUESTER),
      /** Most unanswered requests kept in all; past it, what is evicted follows docs/protocol.md#limits. */
      maxOpenRequests: z.number().int().min(1).max(10_000_000).default(DEFAULT_MAX_OPEN_REQUESTS),
    })
    .default({ maxOpenPerRequester: DEFAULT_MAX_OPEN_PER_REQUESTER, maxOpenRequests: DEFAULT_MAX_OPEN_REQUESTS }),
  pod: z.strictObject({ host: z.string().default('127.0.0.1'), port }),
  host: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port,
    /** File holding the bearer token (never the token itself in a settings file). */
    tokenFile: z.string().min(1),
  }),
  /** File holding the host-provided gas key (0x + 64 hex). Without one, txs are returned for the host to send. */
  gasKeyFile: z.string().min(1).optional(),
  /**
   * Where DCAP collateral comes from: a PCCS or Intel PCS (`pccsUrl`, default Intel PCS), or one JSON file. Collateral
   * is verified in full against the measured trust root, so its source is the host's choice.
   */
  collateral: z
    .strictObject({ pccsUrl: z.url({ protocol: /^https?$/ }).optional(), file: z.string().min(1).optional() })
    .refine((c) => !(c.pccsUrl && c.file), { message: 'give collateral.pccsUrl or collateral.file, not both' })
    .default({}),
  /**
   * Fee caps, decimal wei (docs/protocol.md#blob-transactions): the node never signs a tx, nor bumps a stuck one, above
   * them; absent, the market decides. A cap only delays the node's own txs, so it is the host's to set.
   */
  fees: z
    .strictObject({
      maxFeePerGasWei: z.string().regex(/^[1-9][0-9]{0,30}$/, 'a decimal number of wei').optional(),
      maxFeePerBlobGasWei: z.string().regex(/^[1-9][0-9]{0,30}$/, 'a decimal number of wei').optional(),
    })
    .default({}),
  /** `true` or settings: the node registers, completes and helps by itself (no host calls). */
  auto: z.union([z.boolean(), autoSchema]).default(false),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug']).default('info'),
  /** Operator alerts (src/monitor/alerts.ts): thresholds that only decide when to warn a person. */
  alerts: alertsSchema.optional(),
})
export type HostSettings = z.infer<typeof hostSettingsSchema>
/** A host file as written (defaults may be left out). */
export type HostSettingsInput = z.input<typeof hostSettingsSchema>

/**
 * Keys a host file must not set: every measured key (the devnet entry's included), the verified chain view's, and
 * the old single-file config's security keys. `chain` is shared, split by key.
 */
export const MEASURED_KEYS = [
  'version',
  'devnet',
  'chain.chainId',
  'chain.registry',
  'chain.verification',
  'quote',
  'seal',
  'pods',
  'pod.sockets',
  'maxReferenceAge',
  'chainView',
] as const

// ---- loading --------------------------------------------------------------------------------------------------

/** One line naming every problem, for a non-zero exit. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .flatMap((issue) => leafIssues(issue, []))
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ')
}

/**
 * A union (`auto: true | false | {...}`) fails as a whole with "Invalid input"; when one branch took the value's type
 * (its issues are inside the value, not about its type), that branch's issues name the field that is wrong.
 */
function leafIssues(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path]
  if (issue.code === 'invalid_union') {
    const branch = issue.errors.find((issues) => issues.length > 0 && !issues.some((i) => i.code === 'invalid_type' && i.path.length === 0))
    if (branch) return branch.flatMap((inner) => leafIssues(inner, path))
  }
  return [{ path, message: issue.message }]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function at(value: unknown, path: string): { found: boolean; value: unknown } {
  let current: unknown = value
  for (const key of path.split('.')) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return { found: false, value: undefined }
    current = current[key]
  }
  return { found: true, value: current }
}

/** The leaf paths under `path` (or `path` itself for a scalar or an array), for naming what a file sets. */
function leaves(value: unknown, path: string): string[] {
  if (!isObject(value) || Object.keys(value).length === 0) return [path]
  return Object.entries(value).flatMap(([key, inner]) => leaves(inner, `${path}.${key}`))
}

/**
 * Settings files are JSON with whole-line `//` comments (what `keymanager init` writes): those lines are dropped, the
 * rest is plain JSON. A `//` inside a value is left alone; the digest is taken over the parsed settings, never the text.
 */
export function parseSettingsJson(text: string): unknown {
  return JSON.parse(
    text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('//'))
      .join('\n'),
  )
}

export function readJsonFile(path: string, what: string): unknown {
  try {
    return parseSettingsJson(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new Error(`${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

/** Throws when `raw` sets a devnet-only setting (a production build refuses them wherever they come from). */
export function refuseDevnetOnly(raw: unknown, where: string): void {
  for (const rule of DEVNET_ONLY) {
    const found = at(raw, rule.path)
    if (found.found && rule.applies(found.value)) throw new Error(`${where}: ${rule.path} is a devnet-only setting: ${rule.why}`)
  }
}

/**
 * Validates production measured settings (the baked file's JSON); throws one line naming the first devnet-only
 * setting, else every schema problem.
 */
export function parseMeasuredSettings(raw: unknown, where: string): MeasuredSettings {
  refuseDevnetOnly(raw, where)
  const parsed = measuredSettingsSchema.safeParse(raw)
  if (!parsed.success) throw new Error(`${where}: ${describeZodError(parsed.error)}`)
  return parsed.data
}

/** The JSON of the baked MEASURED_SETTINGS_FILE, unparsed: measured settings, or a pointer to a launch source. */
export function readBakedMeasuredFile(path: string = MEASURED_SETTINGS_FILE): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new Error(`no measured settings in this build: ${path} is missing (bake it into the image, docs/protocol.md#measured-settings)`)
    throw new Error(`measured settings ${path}: ${code ?? 'unreadable'}`)
  }
  try {
    return parseSettingsJson(text)
  } catch (error) {
    throw new Error(`measured settings ${path}: ${(error as Error).message}`)
  }
}

/** The production entry's measured settings when the image bakes them in full: MEASURED_SETTINGS_FILE, nowhere else. */
export function loadBakedMeasuredSettings(path: string = MEASURED_SETTINGS_FILE): MeasuredSettings {
  return parseMeasuredSettings(readBakedMeasuredFile(path), `measured settings ${path}`)
}

/**
 * A baked file that names, instead of holding, the measured settings: they come from the platform's measured launch
 * config (docs/protocol.md#measured-settings, "launch config"). The image decides the source, never the host:
 * - `dstack-app-compose`: the `x-keymanager` entry of the compose file in dstack's app-compose.json, whose SHA-256
 *   the CVM's boot measured into RTMR3 (`compose-hash`); `socket` is the guest agent's;
 * - `gramine-manifest`: the variable `KEYMANAGER_MEASURED_SETTINGS` set by the Gramine manifest (`loader.env`),
 *   measured into MRENCLAVE; `attestationDir` is Gramine's attestation interface.
 */
export const launchSourceSchema = z.discriminatedUnion('source', [
  z.strictObject({ version: z.literal(MEASURED_SETTINGS_VERSION), source: z.literal('dstack-app-compose'), socket: imagePath.optional() }),
  z.strictObject({ version: z.literal(MEASURED_SETTINGS_VERSION), source: z.literal('gramine-manifest'), attestationDir: imagePath.optional() }),
])
export type LaunchSource = z.infer<typeof launchSourceSchema>

/** A baked file with a `source` key is a launch-source pointer (measured settings have no such key). */
export function parseLaunchSource(raw: unknown, where: string): LaunchSource | undefined {
  if (!isObject(raw) || !Object.hasOwn(raw, 'source')) return undefined
  const parsed = launchSourceSchema.safeParse(raw)
  if (!parsed.success) throw new Error(`${where}: ${describeZodError(parsed.error)}`)
  return parsed.data
}

/** Throws when a host file sets any measured key, naming each one. */
export function refuseMeasuredKeys(raw: unknown, where: string): void {
  const set = MEASURED_KEYS.flatMap((key) => {
    const found = at(raw, key)
    return found.found ? leaves(found.value, key) : []
  })
  if (set.length > 0)
    throw new Error(
      `${where} sets ${set.join(', ')}: ${set.length === 1 ? 'a measured setting' : 'measured settings'}, taken only from the measured settings baked into the image (docs/protocol.md#measured-settings), never from the host`,
    )
}

/** Validates a host settings file's JSON; throws one line naming every measured key it sets, else every schema problem. */
export function parseHostSettings(raw: unknown, where: string): HostSettings {
  refuseMeasuredKeys(raw, where)
  const parsed = hostSettingsSchema.safeParse(raw)
  if (!parsed.success) throw new Error(`${where}: ${describeZodError(parsed.error)}`)
  return parsed.data
}

/** Reads and validates a host settings file; relative paths inside it are relative to the file. */
export function loadHostSettings(path: string): HostSettings {
  const host = parseHostSettings(readJsonFile(path, 'config'), `config ${path}`)
  const base = dirname(resolve(path))
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p))
  host.dataDir = abs(host.dataDir)
  host.host.tokenFile = abs(host.host.tokenFile)
  if (host.gasKeyFile) host.gasKeyFile = abs(host.gasKeyFile)
  if (host.collateral.file) host.collateral.file = abs(host.collateral.file)
  return host
}

/** The registry address as viem wants it (checksummed). */
export const registryOf = (measured: { chain: { registry: Address } }): Address => getAddress(measured.chain.registry)
