import { readFileSync } from 'node:fs'
import { isAbsolute, resolve, dirname } from 'node:path'
import { z } from 'zod'

const hex = (bytes: number, what: string) =>
  z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `${what}: expected 0x and ${bytes * 2} hex digits`)
const port = z.number().int().min(0).max(65535)

/** Self-running (`auto`, docs/protocol.md#flows without a host) and the chain watcher / outbox settings it implies. */
const autoSchema = z.strictObject({
  /** Register by itself when it holds no secret (and again when its request expires). */
  register: z.boolean().default(true),
  /** Answer other nodes' onboarding requests once ready. */
  help: z.boolean().default(true),
  /** Blocks an event must be buried under before the watcher processes it. */
  confirmations: z.number().int().min(0).max(128).default(0),
  pollIntervalMs: z.number().int().min(50).max(60_000).default(500),
  /** Random wait before a help round, [min, max] ms: helpers seldom race, and close requests share one blob. */
  jitterMs: z.tuple([z.number().int().min(0), z.number().int().min(0)]).default([500, 2500]),
  maxBatch: z.number().int().min(1).max(200).default(50),
  /** Time each helper rank gets before the next may act (src/node/auto.ts). */
  slotMs: z.number().int().min(100).max(60_000).default(3000),
  /** Blocks a broadcast tx may wait before it is replaced with higher fees (same nonce). */
  bumpAfterBlocks: z.number().int().min(1).max(1000).default(3),
})
export type AutoConfig = z.infer<typeof autoSchema> & { enabled: boolean }

/** `auto: true | false | {...}` as one settled object. */
export function resolveAuto(auto: NodeConfig['auto']): AutoConfig {
  if (typeof auto === 'boolean') return { ...autoSchema.parse({}), enabled: auto }
  return { ...autoSchema.parse(auto), enabled: true }
}

/**
 * How this node verifies other nodes' quotes (docs/protocol.md#tee-providers): the same fields for every quote provider. Trust is
 * explicit: without `trustedRootCaFiles` only Intel's SGX Root CA is trusted; with it, exactly the roots listed, and a
 * node that trusts any root other than Intel's says so in a warning at start (a devnet lists its own root here).
 */
const quoteVerification = {
  /** Root CA certificate files (PEM or DER). Absent: Intel's SGX Root CA only. */
  trustedRootCaFiles: z.array(z.string().min(1)).min(1).optional(),
  /** Collateral from a PCCS or Intel PCS, cached in the node database. Default (with no collateralFile): Intel PCS. */
  pccsUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Collateral from one JSON file in dcap-qvl's `getCollateral` shape (offline nodes, devnets). */
  collateralFile: z.string().min(1).optional(),
}

/** Node configuration (`keymanager serve --config FILE`), validated once at start-up. */
export const nodeConfigSchema = z
  .object({
    dataDir: z.string().min(1),
    chain: z.strictObject({
      rpcUrl: z.url(),
      chainId: z.number().int().positive(),
      registry: hex(20, 'chain.registry'),
      /** Block the registry was deployed in: where event scans start. */
      fromBlock: z.number().int().nonnegative().default(0),
    }),
    blobs: z.strictObject({
      /** `anvil`: the devnet's RPC serves blobs by EL block number; `beacon`: a consensus node, by slot. */
      kind: z.enum(['anvil', 'beacon']),
      url: z.url(),
      /** Peers' archives (their host listener and a token file), tried when the beacon node has no blob. */
      peers: z.array(z.strictObject({ url: z.url({ protocol: /^https?$/ }), tokenFile: z.string().min(1) })).default([]),
    }),
    pod: z.strictObject({
      host: z.string().default('127.0.0.1'),
      port,
      /**
       * dstack-compatible unix sockets (`/var/run/dstack.sock` in a pod), one per pod: a socket carries no peer
       * address, so access to the socket file is the identity, and the operator mounts each into its pod only.
       */
      sockets: z
        .array(z.strictObject({ path: z.string().min(1), pod: z.string().min(1), mode: z.number().int().min(0).max(0o777).optional() }))
        .default([]),
    }),
    host: z.strictObject({
      host: z.string().default('127.0.0.1'),
      port,
      /** File holding the bearer token (never the token itself in config). */
      tokenFile: z.string(),
    }),
    /** File holding the host-provided gas key (0x + 64 hex). Without one, txs are returned for the host to send. */
    gasKeyFile: z.string().optional(),
    quote: z
      .discriminatedUnion('provider', [
        z.strictObject({
          provider: z.literal('simulated'),
          /** The devnet platform (src/tee/devnetPki.ts): PCK certificate chain, PEM, leaf first. */
          pckChainFile: z.string().min(1),
          /** The platform's PCK private key (PKCS#8 PEM): signs the simulated QE report. */
          pckKeyFile: z.string().min(1),
          /** Label of the simulated build; different labels give different measurements. */
          measurementLabel: z.string().min(1).max(64),
          ...quoteVerification,
        }),
        /** Intel TDX guest: Linux configfs-tsm. */
        z.strictObject({ provider: z.literal('tdx'), tsmDir: z.string().min(1).optional(), ...quoteVerification }),
        /** A dstack CVM: the guest agent's GetQuote on its unix socket. */
        z.strictObject({ provider: z.literal('dstack'), socket: z.string().min(1).optional(), ...quoteVerification }),
        /** An SGX enclave under Gramine with DCAP attestation. */
        z.strictObject({ provider: z.literal('sgx-gramine'), attestationDir: z.string().min(1).optional(), ...quoteVerification }),
      ])
      .refine((q) => !(q.pccsUrl && q.collateralFile), { message: 'give quote.pccsUrl or quote.collateralFile, not both' }),
    /**
     * docs/protocol.md#node-state. `dstack`: key from the guest agent (`{provider, socket}` to move its socket); `gramine`: the
     * SGX MRENCLAVE sealing key (`{provider, attestationDir}` to move `/dev/attestation`); `none`; `dev-file` (devnet).
     */
    seal: z.union([
      z.enum(['dev-file', 'none', 'dstack', 'gramine']),
      z.strictObject({ provider: z.literal('dstack'), socket: z.string().min(1) }),
      z.strictObject({ provider: z.literal('gramine'), attestationDir: z.string().min(1) }),
    ]),
    /** `true` or settings: the node registers, completes and helps by itself (no host calls). */
    auto: z.union([z.boolean(), autoSchema]).default(false),
    /** Devnet mode: pods may name themselves with `x-keymanager-pod` (logged as insecure). */
    devnet: z.boolean().default(false),
    pods: z
      .strictObject({
        names: z.record(z.string(), z.string()).default({}),
        appIds: z.record(z.string(), hex(20, 'pods.appIds value')).default({}),
      })
      .default({ names: {}, appIds: {} }),
    /** A request's reference block may trail its inclusion by at most this many blocks (contract allows 256). */
    maxReferenceAge: z.number().int().min(1).max(256).default(64),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug']).default('info'),
  })
  .strict()
  // Devnet-only parts must not run in production by accident (docs/protocol.md#node-state, docs/protocol.md#tee-providers).
  .refine((c) => c.devnet || c.seal !== 'dev-file', { message: 'seal dev-file is for devnets only (set devnet: true, or pick dstack/gramine/none)', path: ['seal'] })
  .refine((c) => c.devnet || c.quote.provider !== 'simulated', { message: 'quote provider simulated is for devnets only', path: ['quote', 'provider'] })
export type NodeConfig = z.infer<typeof nodeConfigSchema>

/** One line naming every problem, for a non-zero exit. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
}

/** Reads and validates a config file; relative paths inside it are relative to the file. */
export function loadNodeConfig(path: string): NodeConfig {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new Error(`config ${path}: ${(error as Error).message}`)
  }
  const parsed = nodeConfigSchema.safeParse(raw)
  if (!parsed.success) throw new Error(`config ${path}: ${describeZodError(parsed.error)}`)
  const base = dirname(resolve(path))
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p))
  const config = parsed.data
  config.dataDir = abs(config.dataDir)
  config.host.tokenFile = abs(config.host.tokenFile)
  if (config.gasKeyFile) config.gasKeyFile = abs(config.gasKeyFile)
  for (const peer of config.blobs.peers) peer.tokenFile = abs(peer.tokenFile)
  const q = config.quote
  if (q.provider === 'simulated') {
    q.pckChainFile = abs(q.pckChainFile)
    q.pckKeyFile = abs(q.pckKeyFile)
  }
  if (q.trustedRootCaFiles) q.trustedRootCaFiles = q.trustedRootCaFiles.map(abs)
  if (q.collateralFile) q.collateralFile = abs(q.collateralFile)
  return config
}
