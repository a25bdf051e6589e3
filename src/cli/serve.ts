import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import pino, { type Logger } from 'pino'
import { createPublicClient, createWalletClient, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainFor, rpcTransport } from '../chain/chain.ts'
import { createHostApp } from '../app/host.ts'
import { createDstackApp, fixedPodResolver } from '../app/dstack.ts'
import { createPodApp, dstackDeps, podKeySource } from '../app/pod.ts'
import { parsePodName } from '../app/podIdentity.ts'
import { serveUnixSocket } from '../app/socket.ts'
import { appIdForPod } from '../keys/derive.ts'
import { anvilBlobSource, beaconBlobSource } from '../chain/beacon.ts'
import { sidecarVersionSource } from '../chain/hardfork.ts'
import { createOutbox } from '../chain/outbox.ts'
import { createChainWatcher, type ChainWatcher } from '../chain/watcher.ts'
import { peerArchiveBlobSource } from '../chain/peerBlobs.ts'
import { isKzgLoaded } from '../chain/kzg.ts'
import { createRegistryClient } from '../chain/registry.ts'
import { networkOfChainId } from '../chain/networks.ts'
import {
  chainViewCore,
  loadHostSettings,
  PACKAGE_ROOT,
  registryOf,
  resolveAlerts,
  resolveAuto,
  type ChainViewCore,
  type HostSettings,
  type MeasuredCore,
  type MeasuredSettings,
} from '../config.ts'
import { settingsDigest } from '../keys/settingsDigest.ts'
import { createAlerts } from '../monitor/alerts.ts'
import {
  blobFetchObserver,
  instrumentBlobArchive,
  instrumentOutbox,
  instrumentQuoteVerifier,
  instrumentRequestStore,
  withPodMetrics,
} from '../monitor/instrument.ts'
import { createMetrics } from '../monitor/metrics.ts'
import { createMonitor } from '../monitor/monitor.ts'
import { collateralRecorder, createPlatformCheck } from '../monitor/platform.ts'
import { KeymanagerError } from '../errors.ts'
import { createLightClientHeaderSource } from '../chain/lightClient/lightClient.ts'
import { chainOfSettings } from '../chain/lightClient/chains.ts'
import { createChainView, type ChainView, type Rpc } from '../chain/view/chainView.ts'
import { createFreshness } from '../chain/view/freshness.ts'
import { createLightClientStoreTable } from '../store/lightClientStore.ts'
import type { Db } from '../store/database.ts'
import { parseHex } from '../keys/bytes.ts'
import { createAutoRunner } from '../node/auto.ts'
import { createNode } from '../node/node.ts'
import { killHookFromSpec } from '../node/killPoints.ts'
import { loadProductionSettings } from '../tee/launchSettings.ts'
import { dstackSealProvider } from '../secret/dstackSeal.ts'
import { gramineSealProvider } from '../secret/gramineSeal.ts'
import { noneSealProvider, type SealProvider } from '../secret/seal.ts'
import { createKeptCollateralStore } from '../store/keptCollateral.ts'
import { createBlobArchive } from '../store/blobArchive.ts'
import { createCursorStore } from '../store/cursor.ts'
import { openDatabase } from '../store/database.ts'
import { createMetaStore } from '../store/meta.ts'
import { createOutboxStore } from '../store/outbox.ts'
import { createRegistrationStore } from '../store/registrations.ts'
import { createRequestStore } from '../store/requests.ts'
import { createSealedSecretStore } from '../store/sealedSecrets.ts'
import { createCollateralCache } from '../store/collateralCache.ts'
import { dstackQuoteProvider, sgxGramineQuoteProvider, tdxQuoteProvider } from '../tee/hardwareQuotes.ts'
import type { QuoteProvider } from '../tee/types.ts'
import { quoteVerifierFromOptions } from './quote.ts'

/**
 * Everything `startNode` needs, built by an entry from its measured settings and the host file. The production entry
 * (`serveProduction`) builds it from the baked measured settings with hardware providers only; the devnet entry
 * (src/devnet/main.ts) may add the simulated TEE, its root CA, the dev-file seal and test hooks. Production code never
 * imports src/devnet, which the production image leaves out.
 */
export type NodeSetup = {
  measured: MeasuredCore
  /** settingsDigest of the entry's whole measured settings (docs/protocol.md#measured-settings). */
  settingsDigest: Hex
  /** Where the measured settings came from (logged at start): `image`, `dstack-app-compose`, `gramine-manifest`, `devnet`. */
  settingsSource?: string
  host: HostSettings
  quoteProvider: QuoteProvider
  /** Opens the seal provider once the data dir exists. */
  openSeal(dataDir: string): Promise<SealProvider>
  /** Root CA files trusted instead of Intel's SGX Root CA: the devnet entry only. */
  trustedRootCaFiles?: string[]
  /** Devnet mode: the `x-keymanager-pod` header names the pod; test hooks. The devnet entry only. */
  devnet?: {
    /**
     * Crash tests: `<point>` or `<point>#<n>` of src/node/killPoints.ts; the process kills itself with SIGKILL right
     * after that durable step (KEYMANAGER_KILL_AT of the devnet entry).
     */
    killAt?: string
  }
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** The hardware quote provider the measured settings name (docs/protocol.md#tee-providers). */
export function hardwareQuoteProvider(q: MeasuredSettings['quote']): QuoteProvider {
  switch (q.provider) {
    case 'tdx':
      return tdxQuoteProvider(q.tsmDir ? { tsmDir: q.tsmDir } : {})
    case 'dstack':
      return dstackQuoteProvider(q.socket ? { socketPath: q.socket } : {})
    case 'sgx-gramine':
      return sgxGramineQuoteProvider(q.attestationDir ? { attestationDir: q.attestationDir } : {})
  }
}

/** The hardware seal provider the measured settings name (docs/protocol.md#node-state). */
export async function openHardwareSeal(seal: MeasuredSettings['seal'], dataDir: string): Promise<SealProvider> {
  switch (seal.provider) {
    case 'dstack':
      return dstackSealProvider({ socketPath: seal.socket, dataDir })
    case 'gramine':
      return gramineSealProvider({ attestationDir: seal.attestationDir })
    case 'none':
      return noneSealProvider()
  }
}

/**
 * `keymanager serve --config FILE` in the production entry: the measured settings baked into this build, the host
 * file for everything else, hardware providers only.
 */
export async function serveProduction(configPath: string, env: Record<string, string | undefined> = {}): Promise<RunningNode> {
  // The host file first: its refusals name the key the operator set, wherever the build stands.
  const host = loadHostSettings(configPath)
  // The baked file, or the measured launch config it names (dstack app-compose, Gramine manifest).
  const { measured, source } = await loadProductionSettings({ dataDir: host.dataDir, env })
  return startNode({
    settingsSource: source,
    measured,
    settingsDigest: settingsDigest(measured),
    host,
    quoteProvider: hardwareQuoteProvider(measured.quote),
    openSeal: (dataDir) => openHardwareSeal(measured.seal, dataDir),
  })
}

/**
 * The verified chain view the measured settings name (docs/protocol.md#verified-chain-view): a light client bootstrapped
 * from the measured checkpoint, its store sealed in the node database, following the host's (untrusted) beacon node;
 * or, in the devnet entry only, `trusted-rpc`: the RPC believed as is, said loudly at start.
 */
export function chainViewFromSettings(
  settings: ChainViewCore,
  deps: { rpc: Rpc; registry: Hex; beaconUrl: string | undefined; rpcUrl: string; db: Db; seal: SealProvider; logger: Logger },
): ChainView {
  if (settings.verification === 'trusted-rpc') {
    deps.logger.warn(
      { rpc: new URL(deps.rpcUrl).host },
      'INSECURE chain view: trusted-rpc mode believes every answer of the RPC (devnet only); the host can make this node release the master secret',
    )
    return createChainView({ mode: 'trusted-rpc', rpc: deps.rpc, registry: deps.registry, registryCodeHash: settings.registryCodeHash, logger: deps.logger })
  }
  if (!deps.beaconUrl) throw new Error('chain.beaconUrl is missing from the host settings: the light client needs a beacon node (docs/protocol.md#verified-chain-view)')
  const lc = settings.lightClient
  const headers = createLightClientHeaderSource({
    chain: chainOfSettings(lc),
    checkpointRoot: lc.checkpointRoot,
    beaconUrl: deps.beaconUrl,
    ...(lc.optimisticConfirmations === undefined ? {} : { optimisticConfirmations: lc.optimisticConfirmations }),
    persistence: { table: createLightClientStoreTable(deps.db), seal: deps.seal },
    logger: deps.logger,
  })
  deps.logger.info(
    { network: lc.network, checkpointRoot: lc.checkpointRoot, registryCodeHash: settings.registryCodeHash, beacon: new URL(deps.beaconUrl).host },
    'chain view: light-client verification (decisions read finalized headers and storage proofs)',
  )
  return createChainView({
    mode: 'light-client',
    headers,
    rpc: deps.rpc,
    registry: deps.registry,
    registryCodeHash: settings.registryCodeHash,
    logger: deps.logger,
    headerStatus: () => headers.status(),
  })
}

export type RunningNode = {
  podUrl: string
  hostUrl: string
  close(): Promise<void>
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (error) {
    throw new Error(`${what} file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
  }
}

function listen(app: { fetch: (req: Request) => Response | Promise<Response> }, hostname: string, port: number) {
  return new Promise<{ server: ServerType; url: string }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, (info) => resolve({ server, url: `http://${hostname}:${info.port}` }))
    server.once('error', reject)
  })
}

/** `keymanager serve`: one sidecar, pod and host listeners, state in the data dir. */
export async function startNode(setup: NodeSetup, logger: Logger = pino({ level: setup.host.logLevel })): Promise<RunningNode> {
  const { measured, host: config } = setup
  const chainId = measured.chain.chainId
  const preset = networkOfChainId(chainId)
  const osakaTime = config.chain.osakaTime ?? preset?.osakaTime
  const chain = chainFor(chainId, config.chain.rpcUrl)
  const rpc = () => rpcTransport(config.chain.rpcUrl, config.chain.rpcTimeoutMs)
  const publicClient = createPublicClient({ chain, transport: rpc(), pollingInterval: 250 })
  const rpcChainId = await publicClient.getChainId()
  if (rpcChainId !== chainId)
    throw new Error(`RPC ${new URL(config.chain.rpcUrl).host} serves chain ${rpcChainId}, the measured settings say ${chainId}`)

  const gasKey = config.gasKeyFile ? parseHex(readSecretFile(config.gasKeyFile, 'gas key'), { name: 'gas key', length: 32, prefix: 'required' }) : undefined
  const walletClient = gasKey
    ? createWalletClient({ account: privateKeyToAccount(`0x${Buffer.from(gasKey).toString('hex')}` as Hex), chain, transport: rpc() })
    : undefined
  gasKey?.fill(0)

  const token = readSecretFile(config.host.tokenFile, 'host token')
  const db = openDatabase(`${config.dataDir}/keymanager.sqlite`)
  const seal = await setup.openSeal(config.dataDir)
  if (seal.insecure) logger.warn({ seal: seal.name }, 'INSECURE seal provider: secrets at rest are readable from the data dir (devnet only)')

  const quoteProvider = setup.quoteProvider
  if (quoteProvider.name === 'simulated') logger.warn({ quoteProvider: 'simulated' }, 'SIMULATED TEE: quotes are signed under a devnet PCK, not by Intel hardware')
  const metrics = createMetrics()
  const collateralSeen = collateralRecorder()
  const { verifier: rawQuoteVerifier } = quoteVerifierFromOptions(
    {
      ...(setup.trustedRootCaFiles ? { trustedRootCaFiles: setup.trustedRootCaFiles } : {}),
      ...(config.collateral.pccsUrl ? { pccsUrl: config.collateral.pccsUrl } : {}),
      ...(config.collateral.file ? { collateralFile: config.collateral.file } : {}),
      cache: createCollateralCache(db),
      onCollateral: (request, collateral) => collateralSeen.record(request, collateral),
    },
    (roots, message) => logger.warn({ roots }, message),
  )
  const quoteVerifier = instrumentQuoteVerifier(rawQuoteVerifier, metrics)

  const stores = {
    meta: createMetaStore(db),
    sealedSecrets: createSealedSecretStore(db),
    registrations: createRegistrationStore(db),
    requests: instrumentRequestStore(createRequestStore(db), metrics),
    blobs: createBlobArchive(db, { maxBytes: config.blobs.archiveMaxBytes }),
    keptCollateral: createKeptCollateralStore(db),
    cursor: createCursorStore(db, config.watcher),
  }
  const now = () => Math.floor(Date.now() / 1000)
  const chainView = chainViewFromSettings(chainViewCore(measured), {
    rpc: publicClient,
    registry: registryOf(measured),
    beaconUrl: config.chain.beaconUrl,
    rpcUrl: config.chain.rpcUrl,
    db,
    seal,
    logger,
  })
  const freshnessTimeoutMs = measured.chainView.freshness.timeoutSeconds * 1000
  const freshness = createFreshness({ view: chainView, timeoutMs: freshnessTimeoutMs, pollMs: config.chain.viewPollIntervalMs })
  const auto = resolveAuto(config.auto)
  const killPoint = setup.devnet?.killAt
    ? killHookFromSpec(setup.devnet.killAt, (point, detail) => {
        logger.warn({ point, ...detail }, 'test hook: kill point reached; the process kills itself (SIGKILL)')
        logger.flush?.()
        process.kill(process.pid, 'SIGKILL')
      })
    : undefined
  const outboxStore = createOutboxStore(db)
  const rawOutbox = walletClient
    ? createOutbox({
        walletClient,
        publicClient,
        store: outboxStore,
        logger,
        now,
        bumpAfterBlocks: auto.bumpAfterBlocks,
        feeCaps: {
          maxFeePerGas: config.fees.maxFeePerGasWei === undefined ? undefined : BigInt(config.fees.maxFeePerGasWei),
          maxFeePerBlobGas: config.fees.maxFeePerBlobGasWei === undefined ? undefined : BigInt(config.fees.maxFeePerBlobGasWei),
        },
        sidecarVersion: sidecarVersionSource(publicClient, {
          // The host's setting, else the network preset's (src/chain/networks.ts).
          osakaTime: osakaTime === undefined ? undefined : BigInt(osakaTime),
        }),
        killPoint,
      })
    : undefined
  const outbox = rawOutbox && instrumentOutbox(rawOutbox, { publicClient, metrics, logger })
  const registry = createRegistryClient({ publicClient, address: registryOf(measured) })
  let watcher: ChainWatcher | undefined
  const node = createNode({
    chainId,
    settingsDigest: setup.settingsDigest,
    registryAddress: registry.address,
    publicClient,
    walletClient,
    outbox,
    registry,
    chainView,
    freshness,
    viewWaitMs: freshnessTimeoutMs,
    viewPollMs: config.chain.viewPollIntervalMs,
    blobSource: config.blobs.kind === 'anvil' ? anvilBlobSource(config.blobs.url) : beaconBlobSource(config.blobs.url, { chainId, ...(preset?.beaconGenesisTime !== undefined ? { genesisTime: preset.beaconGenesisTime } : {}) }),
    peerBlobSources: config.blobs.peers.map((peer) => peerArchiveBlobSource(peer.url)),
    observeBlobFetch: blobFetchObserver([config.blobs.kind, ...config.blobs.peers.map(() => 'peer')], metrics),
    quoteProvider,
    quoteVerifier,
    seal,
    db,
    stores: { ...stores, blobs: instrumentBlobArchive(stores.blobs, metrics) },
    logger,
    now,
    maxReferenceAge: BigInt(measured.maxReferenceAge),
    logScan: { fromBlock: BigInt(config.chain.fromBlock), maxRange: config.chain.maxLogRange },
    killPoint,
    syncChain: () => (watcher ? watcher.sync() : Promise.reject(new KeymanagerError('not_ready', 'the chain watcher is not running'))),
  })
  // Stored txs first: a tx signed before a crash is broadcast before anything new is signed (docs/protocol.md#node-state).
  await outbox?.start()
  await node.start()
  const cursor = stores.cursor
  const alertSettings = resolveAlerts(config.alerts)
  const monitor = createMonitor({
    metrics,
    node,
    cursor,
    blobs: stores.blobs,
    outbox: walletClient ? { store: outboxStore, account: walletClient.account.address, bumpAfterBlocks: auto.bumpAfterBlocks } : undefined,
    getBalance: (address) => publicClient.getBalance({ address }),
    checkPlatform: createPlatformCheck({ quoteProvider, verifier: quoteVerifier, collateral: collateralSeen, now }),
    alerts: createAlerts({
      settings: { ...alertSettings, minGasBalanceWei: BigInt(alertSettings.minGasBalanceWei) },
      logger,
      metrics,
      meta: stores.meta,
      now,
    }),
    peers: config.blobs.peers.map(({ url }) => ({ url })),
    logger,
    now,
    platformIntervalMs: alertSettings.platformCheckIntervalSeconds * 1000,
  })
  const autoRunner = auto.enabled
    ? createAutoRunner({
        node,
        registry,
        chainView,
        cursor,
        stores,
        logger,
        register: auto.register,
        help: auto.help,
        pollIntervalMs: auto.pollIntervalMs,
        jitterMs: auto.jitterMs,
        maxBatch: auto.maxBatch,
        slotMs: auto.slotMs,
        rotate: auto.rotate,
        proposerSlotMs: auto.proposerSlotMs,
        supersedeAfterMs: auto.supersedeAfterMs,
        escrow: auto.escrow,
        escrowCheckMs: auto.escrowCheckMs,
      })
    : undefined
  watcher = createChainWatcher({
    publicClient,
    registry: registry.address,
    fromBlock: BigInt(config.chain.fromBlock),
    store: cursor,
    logger,
    confirmations: auto.confirmations,
    pollIntervalMs: auto.pollIntervalMs,
    maxRange: config.chain.maxLogRange,
    onHead: async (head) => {
      monitor.onHead(head)
      await outbox?.tick(head)
    },
    onEvents: () => autoRunner?.poke(),
  })
  watcher.start()
  autoRunner?.start()
  // The view moves when a decision needs it; between decisions this keeps it (and /status) current.
  const refresher = setInterval(() => void chainView.head().catch(() => {}), config.chain.viewRefreshIntervalMs)
  refresher.unref()

  if (setup.devnet) logger.warn(`INSECURE devnet mode: pods may name themselves with the x-keymanager-pod header`)
  logger.info({ settingsDigest: setup.settingsDigest, source: setup.settingsSource, devnet: setup.devnet !== undefined }, 'measured settings')
  const appIds = Object.fromEntries(
    Object.entries(measured.pods.appIds).map(([pod, id]) => [pod, parseHex(id, { name: `pods.appIds.${pod}`, length: 20, prefix: 'required' })]),
  )
  const podAppDeps = {
    node,
    chainId,
    registry: registry.address,
    settingsDigest: setup.settingsDigest,
    appIds,
    generationPins: measured.pods.generations ?? {},
    identity: {
      devnet: setup.devnet !== undefined,
      staticNames: measured.pods.names,
      ...(measured.pods.dns ? { dns: measured.pods.dns } : {}),
    },
    quoteProvider,
    version: PACKAGE_VERSION,
    logger,
  }
  const podApp = withPodMetrics(createPodApp(podAppDeps), metrics)
  const sockets = await Promise.all(
    measured.pods.sockets.map(({ path, pod: name, mode }) => {
      const podName = parsePodName(name)
      const app = createDstackApp(
        dstackDeps(podAppDeps, fixedPodResolver(podName, appIds[podName] ?? appIdForPod(podName)), podKeySource(podAppDeps)),
      )
      return serveUnixSocket(withPodMetrics(app, metrics), { path, ...(mode === undefined ? {} : { mode }) })
    }),
  )
  const hostApp = createHostApp({ node, blobs: stores.blobs, keptCollateral: stores.keptCollateral, token, logger, monitor, metrics, gasSpent: outbox?.gasSpent })
  const pod = await listen(podApp, config.pod.host, config.pod.port)
  const host = await listen(hostApp, config.host.host, config.host.port)
  monitor.start()
  // kzgLoaded: the KZG setup (~1.4 s) is loaded on the first blob made or checked, not at start (src/chain/kzg.ts).
  logger.info({ podUrl: pod.url, hostUrl: host.url, sockets: sockets.map((s) => s.path), state: node.state, kzgLoaded: isKzgLoaded() }, 'listening')

  const closeServer = (server: ServerType) => new Promise<void>((resolve) => server.close(() => resolve()))
  return {
    podUrl: pod.url,
    hostUrl: host.url,
    async close() {
      ;(pod.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
      ;(host.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
      await Promise.all([closeServer(pod.server), closeServer(host.server), ...sockets.map((socket) => socket.close())])
      // Loops finish their current step; a tx they stored but did not see mined is finished by the next start.
      await Promise.race([
        Promise.all([autoRunner?.stop(), watcher.stop()]),
        new Promise((resolve) => setTimeout(resolve, 10_000).unref()),
      ])
      monitor.stop()
      clearInterval(refresher)
      node.stop()
      db.close()
    },
  }
}
