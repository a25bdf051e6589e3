// `keymanager init --network N --registry A` (docs/protocol.md#command-line): writes a node's two settings files
// (docs/protocol.md#measured-settings), commented, for one network preset (src/chain/networks.ts):
// - measured.json: what the image bakes in (chain id and registry, quote and seal providers, pods, the chain view's
//   trust roots: the registry's code hash and the light client's checkpoint, given as flags): every security
//   decision rests on these, and their digest is bound into the node's quotes;
// - host.json: what the operator runs it with (RPC and beacon URLs, ports, gas key and token files, fee caps).
// Both are read back with the loaders `serve` uses before anything is written, so what init writes always loads.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getAddress, isAddress } from 'viem'
import { isNetworkName, NETWORK_NAMES, NETWORKS, type NetworkPreset } from '../chain/networks.ts'
import { hostSettingsSchema, MEASURED_SETTINGS_VERSION, parseMeasuredSettings, parseSettingsJson, refuseMeasuredKeys, describeZodError } from '../config.ts'
import { parseFlags, UsageError } from './args.ts'

export const INIT_USAGE =
  'usage: keymanager init --network mainnet|sepolia|hoodi|devnet --registry ADDR --registry-code-hash HASH --checkpoint ROOT [--devnet-chain FILE] [--from-block N] [--rpc URL] [--beacon URL] [--quote dstack|tdx|sgx-gramine] [--seal dstack|gramine|none] [--dir DIR] [--force]'

/** The verified chain view's trust roots (docs/protocol.md#verified-chain-view): chosen and checked by the image builder. */
export type ChainViewRoots = { registryCodeHash: string; checkpointRoot: string; devnetChain?: unknown }

type Commented = { value: unknown; comment?: string }
type Tree = { [key: string]: Tree | Commented }

const isCommented = (node: Tree | Commented): node is Commented => Object.hasOwn(node, 'value')

/** Pretty JSON (2 spaces) with a `// comment` line above each key that has one. */
function render(tree: Tree, indent = ''): string {
  const inner = indent + '  '
  const entries = Object.entries(tree).map(([key, node]) => {
    const comment = isCommented(node) && node.comment ? node.comment.split('\n').map((line) => `${inner}// ${line}\n`).join('') : ''
    const value = isCommented(node) ? JSON.stringify(node.value, null, 2).replaceAll('\n', `\n${inner}`) : render(node, inner)
    return `${comment}${inner}${JSON.stringify(key)}: ${value}`
  })
  return `{\n${entries.join(',\n')}\n${indent}}`
}

const v = (value: unknown, comment?: string): Commented => (comment === undefined ? { value } : { value, comment })

export function measuredTree(preset: NetworkPreset, registry: string, quote: string, seal: string, roots: ChainViewRoots): Tree {
  return {
    version: v(MEASURED_SETTINGS_VERSION, `Measured settings (docs/protocol.md#measured-settings) for ${preset.name}. Bake this file into the image as\nmeasured.json: its bytes are measured with the image, and every node checks a peer's settings digest in its quote.`),
    chain: {
      chainId: v(preset.chainId, `The chain this node serves (${preset.name}); the RPC that reaches it is a host setting.`),
      registry: v(registry.toLowerCase(), 'The KeyManager registry contract.'),
      verification: v('light-client', 'How the node believes the chain (docs/protocol.md#verified-chain-view): a light client and storage proofs, never the RPC.'),
    },
    quote: v({ provider: quote }, 'Where quotes come from (docs/protocol.md#tee-providers); other nodes verify them against Intel\'s root only.'),
    seal: v({ provider: seal }, 'How the master secret is sealed at rest (docs/protocol.md#node-state); none: re-onboard after a restart.'),
    pods: v({ sockets: [], names: {}, appIds: {} }, 'Pod identity (docs/protocol.md#pod-identity): per-pod unix sockets, static names, pinned appIds.'),
    maxReferenceAge: v(64, 'A request\'s reference block may trail its inclusion by at most this many blocks (the contract allows 256).'),
    chainView: {
      registryCodeHash: v(roots.registryCodeHash.toLowerCase(), 'keccak256 of the registry\'s runtime code (cast keccak $(cast code ADDR)): every proof checks it; it pins the immutables.'),
      lightClient: v(
        {
          network: preset.name,
          checkpointRoot: roots.checkpointRoot.toLowerCase(),
          ...(roots.devnetChain === undefined ? {} : { devnet: roots.devnetChain }),
        },
        'The light client\'s trust root: a finalized beacon block root the image builder checked against several sources\n(for example two beacon nodes\' /eth/v1/beacon/headers/finalized and a block explorer). It follows the chain from there.',
      ),
      freshness: v({ timeoutSeconds: 1800 }, 'Longest wait for a decision\'s own freshness mark to be proven (finality: about 13 minutes on Ethereum).'),
    },
  }
}

export function hostTree(preset: NetworkPreset, options: { rpc: string; beacon: string; fromBlock: number }): Tree {
  const devnet = preset.name === 'devnet'
  return {
    dataDir: v('data', 'Host settings (docs/protocol.md#measured-settings): operations only. Relative paths are relative to this file.'),
    chain: {
      rpcUrl: v(options.rpc, 'An execution RPC the host trusts for liveness only; chain state is checked by the node.'),
      fromBlock: v(options.fromBlock, 'The registry\'s deployment block: where the chain watcher starts.'),
      rpcTimeoutMs: v(30_000),
      maxLogRange: v(1000, 'Widest eth_getLogs range asked for, in blocks (docs/protocol.md#limits): public RPCs refuse wider ones.'),
    },
    blobs: {
      kind: v(devnet ? 'anvil' : 'beacon', devnet ? 'The devnet\'s anvil serves blobs itself.' : 'A beacon node that serves blobs (a supernode or semi-supernode since Fulu: docs/protocol.md#limits).\nIts DEPOSIT_CHAIN_ID and genesis time are checked against the preset.'),
      url: v(devnet ? options.rpc : options.beacon),
      peers: v([], 'Other nodes\' host listeners (their public GET /blobs), tried when the beacon node has pruned a blob.'),
    },
    pod: v({ host: '0.0.0.0', port: 80 }, 'The pod listener: /sealkey, /attest, the dstack API.'),
    host: v({ host: '127.0.0.1', port: 8081, tokenFile: 'host.token' }, 'The host listener (bearer token): /bootstrap, /register, /helper, /status, /metrics.'),
    gasKeyFile: v('gas.key', 'The key that pays this node\'s transactions (0x + 64 hex). Fund it; without the file, txs are handed to the host.'),
    collateral: v({}, 'DCAP collateral: {"pccsUrl": URL} or {"file": PATH}; empty: Intel PCS.'),
    fees: v({}, 'Fee caps in wei, e.g. {"maxFeePerGasWei": "50000000000", "maxFeePerBlobGasWei": "10000000000"}:\nno tx is signed or bumped above them (docs/protocol.md#blob-transactions).'),
    auto: v(false, 'true: register, complete and help by itself (no host calls).'),
    logLevel: v('info'),
  }
}

export async function runInit(argv: string[], out: (line: string) => void): Promise<number> {
  const { values } = parseFlags(argv, {
    network: { type: 'string' },
    registry: { type: 'string' },
    'from-block': { type: 'string', default: '0' },
    rpc: { type: 'string', default: 'http://127.0.0.1:8545' },
    beacon: { type: 'string', default: 'http://127.0.0.1:5052' },
    quote: { type: 'string', default: 'dstack' },
    seal: { type: 'string' },
    'registry-code-hash': { type: 'string' },
    checkpoint: { type: 'string' },
    'devnet-chain': { type: 'string' },
    dir: { type: 'string', default: '.' },
    force: { type: 'boolean', default: false },
  })
  if (!values.network || !isNetworkName(values.network)) throw new UsageError(`--network must be one of ${NETWORK_NAMES.join(', ')}\n${INIT_USAGE}`)
  if (!values.registry || !isAddress(values.registry, { strict: false })) throw new UsageError(`--registry must be a 0x address\n${INIT_USAGE}`)
  if (!/^\d{1,15}$/.test(values['from-block']!)) throw new UsageError('--from-block must be a block number')
  for (const [flag, value] of [['--rpc', values.rpc!], ['--beacon', values.beacon!]] as const) {
    try {
      if (!/^https?:$/.test(new URL(value).protocol)) throw new Error()
    } catch {
      throw new UsageError(`${flag} must be an http(s) URL`)
    }
  }
  const quotes = { dstack: 'dstack', tdx: 'none', 'sgx-gramine': 'gramine' } as const
  if (!Object.hasOwn(quotes, values.quote!)) throw new UsageError('--quote must be dstack, tdx or sgx-gramine')
  const seal = values.seal ?? quotes[values.quote as keyof typeof quotes]
  if (!['dstack', 'gramine', 'none'].includes(seal)) throw new UsageError('--seal must be dstack, gramine or none')
  const preset = NETWORKS[values.network]
  // The chain view's trust roots are the image builder's choice, never a default: init cannot know them.
  for (const flag of ['registry-code-hash', 'checkpoint'] as const)
    if (!/^0x[0-9a-fA-F]{64}$/.test(values[flag] ?? '')) throw new UsageError(`--${flag} must be 32 bytes of 0x-hex\n${INIT_USAGE}`)
  let devnetChain: unknown
  if (preset.name === 'devnet') {
    if (!values['devnet-chain']) throw new UsageError('--devnet-chain FILE is needed with --network devnet (the devnet beacon chain spec: genesisTime, genesisValidatorsRoot, electraForkEpoch, fuluForkEpoch)')
    try {
      devnetChain = JSON.parse(readFileSync(values['devnet-chain'], 'utf8'))
    } catch (error) {
      throw new UsageError(`--devnet-chain: ${(error as Error).message.split('\n')[0]}`)
    }
  } else if (values['devnet-chain']) throw new UsageError('--devnet-chain is only for --network devnet')
  const roots: ChainViewRoots = { registryCodeHash: values['registry-code-hash']!, checkpointRoot: values.checkpoint!, ...(devnetChain === undefined ? {} : { devnetChain }) }

  const measuredText = render(measuredTree(preset, getAddress(values.registry.toLowerCase()), values.quote!, seal, roots)) + '\n'
  const hostText = render(hostTree(preset, { rpc: values.rpc!, beacon: values.beacon!, fromBlock: Number(values['from-block']) })) + '\n'
  // Read back with the loaders `serve` uses: a combination they refuse (a seal the quote provider cannot give) fails here.
  try {
    parseMeasuredSettings(parseSettingsJson(measuredText), 'measured.json')
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const host = parseSettingsJson(hostText)
  refuseMeasuredKeys(host, 'host.json')
  const parsed = hostSettingsSchema.safeParse(host)
  if (!parsed.success) throw new Error(`host.json: ${describeZodError(parsed.error)}`)

  const dir = values.dir!
  const files = { measured: join(dir, 'measured.json'), host: join(dir, 'host.json'), token: join(dir, 'host.token') }
  for (const path of [files.measured, files.host])
    if (existsSync(path) && !values.force) throw new UsageError(`${path} exists; give --force to overwrite it`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(files.measured, measuredText)
  writeFileSync(files.host, hostText)
  const newToken = !existsSync(files.token)
  if (newToken) writeFileSync(files.token, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  out(`✓ wrote ${files.measured} (measured settings for ${preset.name}, chain ${preset.chainId}: bake it into the image)`)
  out(`✓ wrote ${files.host} (host settings)`)
  if (newToken) out(`✓ wrote ${files.token} (host API bearer token, mode 600)`)
  out(`next: put the gas key in ${join(dir, 'gas.key')} and fund it; check rpcUrl and the beacon URL in ${files.host}`)
  return 0
}
