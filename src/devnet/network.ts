// The devnet network (docs/protocol.md#command-line `keymanager devnet`): an embedded anvil, the registry, N sidecars as separate processes, and the
// whole onboarding walk-through driven through the host API as an operator would drive it.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createPublicClient, createWalletClient, http, keccak256, type Address, type Hex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from './anvil.ts'
import { sendBlobTransaction } from '../chain/blobs.ts'
import { deployKeyManager } from '../chain/deploy.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../chain/registry.ts'
import type { HostSettingsInput } from '../config.ts'
import { toHex0x } from '../keys/bytes.ts'
import { measurementOf } from '../tee/measurement.ts'
import { alignAnvilToSlots, startLiveBeacon, startStrictRpc, type LiveBeacon, type LiveBeaconOptions, type StrictRpc, type StrictRpcOptions } from './liveLike.ts'
import { startDevnetBeacon, type DevnetBeacon } from './beaconServer.ts'
import { serveDevnetPccs, type DevnetPccs } from './pccs.ts'
import { createDevnetPki, saveDevnetPlatform, type DevnetPki } from './pki.ts'
import type { DevnetMeasuredInput } from './settings.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from './simulated.ts'

/** anvil's well-known development mnemonic: account 0 owns the registry, account i pays node i's gas. */
const DEV_MNEMONIC = 'test test test test test test test test test test test junk'
export const DEVNET_MEASUREMENT_LABEL = 'devnet'
/** Devnet nodes run the devnet entry: the only one that takes measured settings from a file the host names. */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/keymanager-devnet.js')

export type DevnetNodeInfo = { podUrl: string; hostUrl: string; hostToken: string }
export type DevnetInfo = { rpcUrl: string; chainId: number; registry: Address; nodes: DevnetNodeInfo[] }

export function devAccount(index: number) {
  return mnemonicToAccount(DEV_MNEMONIC, { addressIndex: index })
}

function devPrivateKey(index: number): Hex {
  return toHex0x(devAccount(index).getHdKey().privateKey!)
}

/** What a `configure` hook of `addNode` may use: the node's directory and the devnet's PKI. */
export type DevnetNodeSetup = { dir: string; pki: DevnetPki; pkiDir: string; pccsUrl: string }

/** A devnet node's two files (docs/protocol.md#measured-settings), as `addNode` writes them. */
export type DevnetNodeSettings = { measured: DevnetMeasuredInput; host: HostSettingsInput }

export type NodeProcess = DevnetNodeInfo & { child: ChildProcess; dir: string; configPath: string; measuredPath: string }

/**
 * Starts `keymanager-devnet serve` as its own process and waits for its `listening` log line. `entry` replaces
 * bin/keymanager-devnet.js (the footprint bench runs the devnet entry bundled, scripts/bench/bundle.ts).
 */
export async function spawnNode(
  files: { measuredPath: string; configPath: string },
  logPath: string,
  env: Record<string, string> = {},
  entry = BIN,
): Promise<{ child: ChildProcess; podUrl: string; hostUrl: string }> {
  const child = spawn(process.execPath, [entry, 'serve', '--measured', files.measuredPath, '--config', files.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const log = createWriteStream(logPath, { flags: 'a' })
  child.stderr!.pipe(log)
  let lastLine = ''
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      log.write(line + '\n')
      lastLine = line
      try {
        const entry = JSON.parse(line) as { msg?: string; podUrl?: string; hostUrl?: string }
        if (entry.msg === 'listening' && entry.podUrl && entry.hostUrl) resolvePromise({ child, podUrl: entry.podUrl, hostUrl: entry.hostUrl })
      } catch {
        // not a log line of ours; kept in the log file
      }
    })
    child.once('exit', (code) => reject(new Error(`node exited with code ${code} during start-up (see ${logPath}): ${lastLine}`)))
  })
}

/** Calls a node's host API as the operator; a non-2xx answer becomes an error carrying the node's message. */
export async function hostCall<T = Record<string, unknown>>(node: DevnetNodeInfo, method: 'GET' | 'POST', path: string): Promise<T> {
  const res = await fetch(node.hostUrl + path, { method, headers: { authorization: `Bearer ${node.hostToken}` } })
  const body = (await res.json()) as T & { error?: { code: string; message: string } }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim())
  return body
}

/** Settings of auto-mode devnet nodes: a wider jitter than the default lets requests sent together share one blob. */
export const DEVNET_AUTO: HostSettingsInput['auto'] = {
  register: true,
  help: true,
  confirmations: 0,
  pollIntervalMs: 250,
  jitterMs: [1500, 2500],
  // One helper's turn on a batch (docs/protocol.md#help-schedule): it must outlast a helper's whole round (freshness
  // mark, the view's finality, proofs, judging, blob, mined answer), else the next helper answers too and one
  // fulfillOnboard reverts. Measured on a loaded 2-core machine (load 14): rounds up to 20 s; 4 s turns drew a
  // second answer for 10 newcomers. Only a dead or slow designated helper costs a turn.
  slotMs: 25_000,
  maxBatch: 50,
  bumpAfterBlocks: 3,
  // Rotation is driven through the host API on the default devnet (the walk-through's request ids and fulfil counts
  // stay as they were); DEVNET_AUTO_ROTATE lets the nodes take part by themselves.
  rotate: false,
  // A check of the guardian set (one proof) every few seconds: escrow follows a set change or a rotation quickly.
  escrowCheckMs: 3000,
}

/** DEVNET_AUTO with rotation by the nodes themselves: members join, propose, acknowledge and commit. */
export const DEVNET_AUTO_ROTATE: HostSettingsInput['auto'] = {
  ...(DEVNET_AUTO as object),
  rotate: true,
  proposerSlotMs: 4000,
  supersedeAfterMs: 60_000,
}

/** Polls a node's pod `/healthz` (no host call) until it reports `ready`. */
export async function waitUntilReady(node: DevnetNodeInfo, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const state = await fetch(`${node.podUrl}/healthz`).then(
      async (res) => ((await res.json()) as { state: string }).state,
      () => 'unreachable',
    )
    if (state === 'ready') return
    if (Date.now() > deadline) throw new Error(`node ${node.podUrl} is still ${state} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

export async function runDevnet({
  nodes: count,
  dir,
  print,
  auto = false,
  autoSettings,
  nodeEnv,
  anvilStateFile,
  logLevel = 'info',
  liveLike,
  hardfork,
  verification: verificationOption,
  finalityDepth,
  blockTime,
}: {
  nodes: number
  dir: string
  print: (line: string) => void
  /** Nodes after the first join by themselves (auto mode); node 1 is bootstrapped through the host API and helps by itself. */
  auto?: boolean
  /** The auto settings of every node when `auto` is on (default DEVNET_AUTO). */
  autoSettings?: HostSettingsInput['auto']
  /** Extra environment of node i (1-based), e.g. test hooks. */
  nodeEnv?: (index: number) => Record<string, string> | undefined
  /** anvil `--state FILE` (outage tests stop anvil and start it again from this file on the same port). */
  anvilStateFile?: string
  /** The nodes' log level (the secret scan runs at debug). */
  logLevel?: NonNullable<HostSettingsInput['logLevel']>
  /**
   * Live-like mode (src/devnet/liveLike.ts): every node and the owner reach anvil only through a strict RPC proxy
   * that refuses what post-Osaka providers refuse, and read blobs from a beacon node simulator by slot.
   */
  liveLike?: { rpc?: Omit<StrictRpcOptions, 'upstream'>; beacon?: Omit<LiveBeaconOptions, 'anvilRpcUrl' | 'chainId'> }
  /** anvil's hardfork (default Osaka, as startAnvil); the footprint bench runs Prague for cheaper blob proofs. */
  hardfork?: 'cancun' | 'prague' | 'osaka'
  /** The beacon simulator's finality depth (src/devnet/beaconServer.ts; default 2): blocks from a block to its finality. */
  finalityDepth?: number
  /**
   * Seconds between anvil's blocks (interval mining, as every real chain has a slot time); default: automine, a block
   * per transaction. With it the beacon simulator mines nothing itself: blocks come at the slot rate whoever asks, so
   * "blocks from a request to its answer" measures the nodes' delay, not how many transactions and light-client
   * requests happened in between (scripts/bench-scale.ts `BENCH_BLOCK_TIME`).
   */
  blockTime?: number
  /**
   * How the nodes read the chain (docs/protocol.md#verified-chain-view). Default `light-client`: the devnet beacon
   * server signs light-client data for anvil's blocks and every node verifies it, as on mainnet. `trusted-rpc` only
   * for tests of something else that rewind the chain below finality (evm_revert).
   */
  verification?: 'light-client' | 'trusted-rpc'
}) {
  const root = resolve(dir)
  const devnetDir = join(root, 'devnet')
  rmSync(devnetDir, { recursive: true, force: true })
  mkdirSync(devnetDir, { recursive: true, mode: 0o700 })
  const started: { anvil?: Anvil; pccs?: DevnetPccs; strictRpc?: StrictRpc; liveBeacon?: LiveBeacon; beacon?: DevnetBeacon; nodes: NodeProcess[] } = { nodes: [] }
  let allocated = 0
  let info: DevnetInfo | undefined

  async function stop() {
    await Promise.all(
      started.nodes.map(
        ({ child }) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done()
            child.once('exit', () => done())
            child.kill('SIGTERM')
          }),
      ),
    )
    await started.strictRpc?.close()
    await started.liveBeacon?.close()
    await started.beacon?.stop()
    await started.anvil?.stop()
    await started.pccs?.close()
  }

  try {
    // Spare funded accounts for nodes added later (tests add rogue nodes).
    const anvil = await startAnvil({ chainId: foundry.id, extraArgs: ['--accounts', String(count + 11)], stateFile: anvilStateFile, ...(hardfork ? { hardfork } : {}), ...(blockTime === undefined ? {} : { blockTime }) })
    started.anvil = anvil
    print(`✓ anvil listening on ${anvil.rpcUrl} (chain ${foundry.id})`)
    // What nodes and the owner call: anvil itself, or in live-like mode the strict proxy in front of it.
    let rpcUrl = anvil.rpcUrl
    let blobs: HostSettingsInput['blobs'] = { kind: 'anvil', url: anvil.rpcUrl, peers: [] }
    if (liveLike) {
      const secondsPerSlot = liveLike.beacon?.secondsPerSlot ?? 12
      await alignAnvilToSlots(anvil.rpcUrl, secondsPerSlot)
      started.strictRpc = await startStrictRpc({ upstream: anvil.rpcUrl, ...liveLike.rpc })
      started.liveBeacon = await startLiveBeacon({ anvilRpcUrl: anvil.rpcUrl, chainId: foundry.id, ...liveLike.beacon, secondsPerSlot })
      rpcUrl = started.strictRpc.url
      blobs = { kind: 'beacon', url: started.liveBeacon.url, peers: [] }
      print(`✓ live-like: strict RPC proxy on ${rpcUrl}, beacon node simulator on ${started.liveBeacon.url} (${started.liveBeacon.mode})`)
    }
    const chain = { ...foundry, rpcUrls: { default: { http: [rpcUrl] } } }
    // A long timeout: anvil loads its KZG setup on the first blob tx (the bootstrap), seconds on a busy machine.
    const transport = http(rpcUrl, { timeout: 60_000 })
    const publicClient = createPublicClient({ chain, transport, pollingInterval: 100 })
    const owner = createWalletClient({ account: devAccount(0), chain, transport })

    const registry = await deployKeyManager({ walletClient: owner, publicClient, owner: owner.account.address, measurementDelay: 0n })
    print(`✓ KeyManager registry deployed at ${registry} (owner ${owner.account.address})`)

    // The devnet's simulated TEE (docs/protocol.md#tee-providers): a DCAP PKI of its own in pki/ (collateral.json there is for
    // `keymanager quote verify`), a PCCS serving its collateral, and its root, which the nodes of this devnet and no
    // other trust explicitly (`quote.trustedRootCaFiles`). Each node gets its own platform (PCK key and certificate).
    const pki = createDevnetPki()
    const pkiDir = join(devnetDir, 'pki')
    pki.save(pkiDir)
    writeFileSync(join(pkiDir, 'collateral.json'), JSON.stringify(pki.collateral(), null, 2) + '\n')
    const pccs = await serveDevnetPccs(pki)
    started.pccs = pccs
    print(`✓ devnet PKI in ${pkiDir}, its PCCS on ${pccs.url}`)
    const probe = simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement(DEVNET_MEASUREMENT_LABEL) })
    const measured = measurementOf(await probe.getQuote(new Uint8Array(64)))
    const addHash = await owner.writeContract({
      address: registry,
      abi: keyManagerAbi,
      functionName: 'addMeasurement',
      args: [measured.measurementId, measured.measurementRaw],
    } as never)
    await publicClient.waitForTransactionReceipt({ hash: addHash })
    print(`✓ simulated measurement ${measured.measurementId} allowed`)

    // docs/protocol.md#verified-chain-view: nodes believe the chain through a light client and storage proofs. anvil
    // has no beacon chain, so the devnet beacon server (a simulator with its own sync committee) signs light-client
    // data for anvil's blocks, and mines the few empty blocks that finalize a block someone waits for. Its
    // checkpoint is this devnet's trust root, as the devnet PKI root is for quotes: said out loud, never Ethereum's.
    const registryCodeHash = keccak256((await publicClient.getCode({ address: registry }))!)
    const verification = verificationOption ?? 'light-client'
    let beacon: DevnetBeacon | undefined
    if (verification === 'light-client') {
      beacon = await startDevnetBeacon({
        rpcUrl: anvil.rpcUrl,
        ...(finalityDepth === undefined ? {} : { finalityDepth }),
        ...(blockTime === undefined ? {} : { mineToFinalize: false }),
      })
      started.beacon = beacon
      print(`✓ devnet beacon server on ${beacon.url}: light-client data for anvil, signed by a DEVNET sync committee`)
      print(`  ⚠ DEVNET TRUST ROOT: nodes bootstrap from checkpoint ${beacon.checkpointRoot} (validators root ${beacon.chainSpec.genesisValidatorsRoot}), not Ethereum`)
    } else {
      print(`  ⚠ INSECURE: nodes read the chain with trusted-rpc (they believe the RPC); devnet tests only`)
    }
    print(`  registry runtime code hash ${registryCodeHash} (pinned in every node's settings)`)

    /**
     * Starts one more sidecar on this devnet. `configure` may change the node's config before it starts (tests use it
     * for rogue or misconfigured nodes: test/devnetNodes.ts).
     */
    async function addNode(
      options: {
        auto?: HostSettingsInput['auto']
        seal?: DevnetMeasuredInput['seal']
        env?: Record<string, string>
        configure?: (settings: DevnetNodeSettings, node: DevnetNodeSetup) => void
      } = {},
    ): Promise<NodeProcess> {
      // Node i pays gas with dev account i and sits at nodes[i - 1]; indices are taken before the (slow) start, so that
      // nodes started together get distinct ones. A start that fails gives its index back when it is the last one.
      const i = ++allocated
      const nodeDir = join(devnetDir, `node${i}`)
      mkdirSync(nodeDir, { recursive: true, mode: 0o700 })
      const hostToken = randomBytes(24).toString('hex')
      writeFileSync(join(nodeDir, 'host.token'), hostToken, { mode: 0o600 })
      writeFileSync(join(nodeDir, 'gas.key'), devPrivateKey(i), { mode: 0o600 })
      // The devnet's measured settings: what a production image would bake in, plus the devnet-only simulated TEE,
      // its root and the dev-file seal (src/devnet/settings.ts).
      const settings: DevnetNodeSettings = {
        measured: {
          version: 1,
          devnet: true,
          chain: { chainId: foundry.id, registry, verification },
          quote: {
            provider: 'simulated',
            ...saveDevnetPlatform(pki.mintPlatform(), join(nodeDir, 'platform')),
            measurementLabel: DEVNET_MEASUREMENT_LABEL,
            trustedRootCaFiles: [join(pkiDir, 'root.pem')],
          },
          seal: options.seal ?? 'dev-file',
          pods: { sockets: [], names: {}, appIds: {} },
          maxReferenceAge: 64,
          chainView:
            verification === 'light-client'
              ? {
                  registryCodeHash,
                  lightClient: { network: 'devnet', checkpointRoot: beacon!.checkpointRoot, devnet: beacon!.chainSpec },
                  // A devnet finalizes in a few blocks: a decision waits seconds for its mark, not Ethereum's minutes.
                  freshness: { timeoutSeconds: 60 },
                }
              : { registryCodeHash, freshness: { timeoutSeconds: 60 } },
        },
        host: {
          dataDir: '.',
          chain: {
            rpcUrl,
            fromBlock: 0,
            rpcTimeoutMs: 60_000,
            ...(beacon ? { beaconUrl: beacon.url } : {}),
            viewPollIntervalMs: 200,
            viewRefreshIntervalMs: 1000,
          },
          // A copy per node: `configure` may change one node's blob sources (test/devnetNodes.ts `blobSources`).
          blobs: { ...blobs, peers: [...(blobs.peers ?? [])] },
          pod: { host: '127.0.0.1', port: 0 },
          host: { host: '127.0.0.1', port: 0, tokenFile: 'host.token' },
          gasKeyFile: 'gas.key',
          collateral: { pccsUrl: pccs.url },
          auto: options.auto ?? false,
          logLevel,
        },
      }
      options.configure?.(settings, { dir: nodeDir, pki, pkiDir, pccsUrl: pccs.url })
      const measuredPath = join(nodeDir, 'measured.json')
      const configPath = join(nodeDir, 'host.json')
      writeFileSync(measuredPath, JSON.stringify(settings.measured, null, 2))
      writeFileSync(configPath, JSON.stringify(settings.host, null, 2))
      let spawned: Awaited<ReturnType<typeof spawnNode>>
      try {
        spawned = await spawnNode({ measuredPath, configPath }, join(nodeDir, 'node.log'), options.env ?? nodeEnv?.(i))
      } catch (error) {
        if (allocated === i) allocated--
        throw error
      }
      const { child, podUrl, hostUrl } = spawned
      const node = { child, podUrl, hostUrl, hostToken, dir: nodeDir, configPath, measuredPath }
      started.nodes[i - 1] = node
      print(`✓ node ${i} up: pod ${podUrl}, host ${hostUrl}`)
      return node
    }

    /** Register, help, complete (docs/protocol.md#flows): `helper` verifies and answers `node`'s request. */
    async function onboard(node: NodeProcess, helper: DevnetNodeInfo) {
      const name = `node ${started.nodes.indexOf(node) + 1}`
      const reg = await hostCall<{ enckey: Address; requestId: string }>(node, 'POST', '/register')
      print(`  ${name} requested onboarding: request ${reg.requestId}, key ${reg.enckey}`)
      const help = await hostCall<{ decision: string; txHash?: Hex }>(helper, 'POST', `/helper/${reg.enckey}`)
      print(`  the helper verified its quote and sent the encrypted master secret: ${help.txHash}`)
      const done = await hostCall<{ state: string; xPub: Address }>(node, 'POST', `/register/${reg.enckey}`)
      if (done.state !== 'ready') throw new Error(`${name} did not complete onboarding (${done.state})`)
      print(`✓ ${name} onboarded and ready`)
      return done
    }

    /** Starts a stopped node again on its data dir (crash tests); its URLs change (ports are picked anew). */
    async function restartNode(
      node: NodeProcess,
      options: { env?: Record<string, string>; configure?: (settings: DevnetNodeSettings) => void; entry?: string } = {},
    ) {
      if (node.child.exitCode === null && node.child.signalCode === null) throw new Error('node is still running')
      if (options.configure) {
        const settings = {
          measured: JSON.parse(readFileSync(node.measuredPath, 'utf8')) as DevnetNodeSettings['measured'],
          host: JSON.parse(readFileSync(node.configPath, 'utf8')) as DevnetNodeSettings['host'],
        }
        options.configure(settings)
        writeFileSync(node.measuredPath, JSON.stringify(settings.measured, null, 2))
        writeFileSync(node.configPath, JSON.stringify(settings.host, null, 2))
      }
      const { child, podUrl, hostUrl } = await spawnNode(node, join(node.dir, 'node.log'), options.env, options.entry)
      Object.assign(node, { child, podUrl, hostUrl })
      const index = started.nodes.indexOf(node)
      if (info) info.nodes[index] = { podUrl, hostUrl, hostToken: node.hostToken }
      return node
    }

    const nodeAuto = auto ? (autoSettings ?? DEVNET_AUTO) : false
    if (count === 0) {
      // An empty network (crash tests start and bootstrap their nodes themselves): registry, PKI and PCCS only.
      info = { rpcUrl: anvil.rpcUrl, chainId: foundry.id, registry, nodes: [] }
      const empty = async () => false
      const live = started.strictRpc && started.liveBeacon ? { rpc: started.strictRpc, beacon: started.liveBeacon } : undefined
      return { info, verify: empty, stop, addNode, restartNode, onboard, registry, registryCodeHash, owner, publicClient, anvil, beacon, pki, pccsUrl: pccs.url, devnetDir, nodes: started.nodes, chain, liveLike: live }
    }
    await addNode({ auto: nodeAuto })

    // Bootstrap (docs/protocol.md#bootstrap): node 1 makes M; the owner sends bootstrap() with the node's blob.
    const first = started.nodes[0]!
    const prepared = await hostCall<{ xPub: Address; tx?: { to: Address; data: Hex; blobs: Hex[] } }>(first, 'POST', '/bootstrap')
    if (prepared.tx) {
      const sent = await sendBlobTransaction({ walletClient: owner, publicClient, to: prepared.tx.to, data: prepared.tx.data, blobs: prepared.tx.blobs })
      print(`  owner sent bootstrap() with node 1's blob: ${sent.hash}`)
      // The node is ready once its verified view shows the bootstrap: at once where the beacon simulator mines the
      // blocks that finalize it (automine), after `finalityDepth` more blocks with interval mining (waited for first:
      // each early call makes the quote and blob again). Asked again until then.
      if (blockTime !== undefined) {
        const { blockNumber } = await publicClient.waitForTransactionReceipt({ hash: sent.hash })
        const final = blockNumber + BigInt(finalityDepth ?? 2) + 1n
        while ((await publicClient.getBlockNumber({ cacheTime: 0 })) < final) await new Promise((r) => setTimeout(r, blockTime * 250))
      }
      const deadline = Date.now() + 120_000
      while ((await hostCall<{ state: string }>(first, 'POST', '/bootstrap')).state !== 'ready') {
        if (Date.now() > deadline) throw new Error('node 1 did not see its bootstrap in its verified view within 120 s')
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    print(`✓ node 1 bootstrapped the network: master key ${prepared.xPub}`)

    // The other nodes start once the network exists: in auto mode they register as soon as they are up.
    const t0 = Date.now()
    // In auto mode they start together (their requests overlap and share answers, as a fleet rolled out at once).
    if (auto) await Promise.all(Array.from({ length: count - 1 }, () => addNode({ auto: nodeAuto })))
    else for (let i = 2; i <= count; i++) await addNode({ auto: nodeAuto })

    if (auto) {
      // docs/protocol.md#flows without a host: each node registers, is answered by a ready node, completes and confirms.
      await Promise.all(started.nodes.slice(1).map((node) => waitUntilReady(node)))
      print(`✓ nodes 2-${count} started and joined by themselves in ${((Date.now() - t0) / 1000).toFixed(1)} s (no host calls)`)
    } else {
      for (const node of started.nodes.slice(1)) {
        const done = await onboard(node, first)
        if (done.xPub.toLowerCase() !== prepared.xPub.toLowerCase()) throw new Error('a node holds another master key')
      }
    }

    const devnetInfo: DevnetInfo = {
      rpcUrl,
      chainId: foundry.id,
      registry,
      nodes: started.nodes.map(({ podUrl, hostUrl, hostToken }) => ({ podUrl, hostUrl, hostToken })),
    }
    info = devnetInfo
    writeFileSync(join(root, 'devnet.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
    print(`✓ wrote ${join(dir, 'devnet.json')}`)
    print(`  try: curl -H 'x-keymanager-pod: app' ${first.podUrl}/sealkey`)

    const registryClient = createRegistryClient({ publicClient, address: registry })
    async function verify(): Promise<boolean> {
      let ok = true
      const check = (what: string, passed: boolean) => {
        print(`${passed ? '✓' : '✗'} ${what}`)
        ok &&= passed
      }
      const sealkey = async (node: DevnetNodeInfo, pod: string) => {
        const res = await fetch(`${node.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': pod } })
        return ((await res.json()) as { key: Hex }).key
      }
      const keys = await Promise.all(devnetInfo.nodes.map((n) => sealkey(n, 'app')))
      check(`/sealkey for pod 'app' is the same on all ${keys.length} nodes`, keys.every((k) => k === keys[0]))
      check(`/sealkey for pod 'other' differs from pod 'app'`, (await sealkey(devnetInfo.nodes[0]!, 'other')) !== keys[0])
      const appData = toHex0x(randomBytes(32))
      for (const [i, node] of devnetInfo.nodes.entries()) {
        const res = await fetch(`${node.podUrl}/attest/${appData}`, { headers: { 'x-keymanager-pod': 'app' } })
        const body = (await res.json()) as { signature: Hex; hostname: string }
        const valid = await registryClient.verifyAttestation(body.hostname, appData, body.signature)
        check(`node ${i + 1}: /attest signature verifies on chain with verifyAttestation`, valid)
      }
      return ok
    }
    const live = started.strictRpc && started.liveBeacon ? { rpc: started.strictRpc, beacon: started.liveBeacon } : undefined
    return {
      info: devnetInfo,
      verify,
      stop,
      addNode,
      restartNode,
      onboard,
      registry,
      registryCodeHash,
      owner,
      publicClient,
      anvil,
      beacon,
      pki,
      pccsUrl: pccs.url,
      devnetDir,
      nodes: started.nodes,
      chain,
      liveLike: live,
    }
  } catch (error) {
    await stop()
    throw error
  }
}
