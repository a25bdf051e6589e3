import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import pino, { type Logger } from 'pino'
import { createPublicClient, createWalletClient, http, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainFor } from '../chain/chain.ts'
import { createHostApp } from '../app/host.ts'
import { createDstackApp, fixedPodResolver } from '../app/dstack.ts'
import { createPodApp, dstackDeps } from '../app/pod.ts'
import { parsePodName } from '../app/podIdentity.ts'
import { serveUnixSocket } from '../app/socket.ts'
import { appIdForPod } from '../keys/derive.ts'
import { anvilBlobSource, beaconBlobSource } from '../chain/beacon.ts'
import { createOutbox } from '../chain/outbox.ts'
import { createChainWatcher } from '../chain/watcher.ts'
import { peerArchiveBlobSource } from '../chain/peerBlobs.ts'
import { createRegistryClient } from '../chain/registry.ts'
import { resolveAuto, type NodeConfig } from '../config.ts'
import { parseHex } from '../keys/bytes.ts'
import { createAutoRunner } from '../node/auto.ts'
import { createNode } from '../node/node.ts'
import { dstackSealProvider } from '../secret/dstackSeal.ts'
import { gramineSealProvider } from '../secret/gramineSeal.ts'
import { devFileSealProvider, noneSealProvider } from '../secret/seal.ts'
import { createBlobArchive } from '../store/blobArchive.ts'
import { createCursorStore } from '../store/cursor.ts'
import { openDatabase } from '../store/database.ts'
import { createMetaStore } from '../store/meta.ts'
import { createOutboxStore } from '../store/outbox.ts'
import { createRegistrationStore } from '../store/registrations.ts'
import { createRequestStore } from '../store/requests.ts'
import { createSealedSecretStore } from '../store/sealedSecrets.ts'
import { createCollateralCache } from '../store/collateralCache.ts'
import { loadSimulatedPlatform, simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { dstackQuoteProvider, sgxGramineQuoteProvider, tdxQuoteProvider } from '../tee/hardwareQuotes.ts'
import type { QuoteProvider } from '../tee/types.ts'
import { quoteVerifierFromOptions } from './quote.ts'

/** Test hooks, honoured only in devnet mode (main.ts reads them from the environment). */
export type NodeHooks = {
  /** Kill the process with SIGKILL right after a signed tx is stored and before it is broadcast (crash tests). */
  crashAfterSign?: boolean
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** The quote provider the config names (docs/protocol.md#tee-providers). */
export function quoteProviderFromConfig(q: NodeConfig['quote']): QuoteProvider {
  switch (q.provider) {
    case 'simulated':
      return simulatedQuoteProvider({ platform: loadSimulatedPlatform(q), measurement: simulatedMeasurement(q.measurementLabel) })
    case 'tdx':
      return tdxQuoteProvider(q.tsmDir ? { tsmDir: q.tsmDir } : {})
    case 'dstack':
      return dstackQuoteProvider(q.socket ? { socketPath: q.socket } : {})
    case 'sgx-gramine':
      return sgxGramineQuoteProvider(q.attestationDir ? { attestationDir: q.attestationDir } : {})
  }
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
export async function startNode(
  config: NodeConfig,
  logger: Logger = pino({ level: config.logLevel }),
  hooks: NodeHooks = {},
): Promise<RunningNode> {
  const chain = chainFor(config.chain.chainId, config.chain.rpcUrl)
  const publicClient = createPublicClient({ chain, transport: http(config.chain.rpcUrl, { retryCount: 2 }), pollingInterval: 250 })
  const rpcChainId = await publicClient.getChainId()
  if (rpcChainId !== config.chain.chainId)
    throw new Error(`RPC ${new URL(config.chain.rpcUrl).host} serves chain ${rpcChainId}, config says ${config.chain.chainId}`)

  const gasKey = config.gasKeyFile ? parseHex(readSecretFile(config.gasKeyFile, 'gas key'), { name: 'gas key', length: 32, prefix: 'required' }) : undefined
  const walletClient = gasKey
    ? createWalletClient({ account: privateKeyToAccount(`0x${Buffer.from(gasKey).toString('hex')}` as Hex), chain, transport: http(config.chain.rpcUrl) })
    : undefined
  gasKey?.fill(0)

  const token = readSecretFile(config.host.tokenFile, 'host token')
  const db = openDatabase(`${config.dataDir}/keymanager.sqlite`)
  const sealChoice = typeof config.seal === 'string' ? { provider: config.seal } : config.seal
  const seal =
    sealChoice.provider === 'dev-file'
      ? devFileSealProvider(config.dataDir)
      : sealChoice.provider === 'dstack'
        ? await dstackSealProvider({ socketPath: 'socket' in sealChoice ? sealChoice.socket : undefined })
        : sealChoice.provider === 'gramine'
          ? gramineSealProvider({ attestationDir: 'attestationDir' in sealChoice ? sealChoice.attestationDir : undefined })
          : noneSealProvider()
  if (seal.insecure) logger.warn({ seal: seal.name }, 'INSECURE seal provider: secrets at rest are readable from the data dir (devnet only)')

  const q = config.quote
  const quoteProvider = quoteProviderFromConfig(q)
  if (q.provider === 'simulated') logger.warn({ quoteProvider: 'simulated' }, 'SIMULATED TEE: quotes are signed under a devnet PCK, not by Intel hardware')
  const { verifier: quoteVerifier } = quoteVerifierFromOptions({ ...q, cache: createCollateralCache(db) }, (roots, message) => logger.warn({ roots }, message))

  const stores = {
    meta: createMetaStore(db),
    sealedSecrets: createSealedSecretStore(db),
    registrations: createRegistrationStore(db),
    requests: createRequestStore(db),
    blobs: createBlobArchive(db),
  }
  const now = () => Math.floor(Date.now() / 1000)
  const auto = resolveAuto(config.auto)
  if (hooks.crashAfterSign && !config.devnet) throw new Error('the crash-after-sign test hook needs devnet mode')
  const outbox = walletClient
    ? createOutbox({
        walletClient,
        publicClient,
        store: createOutboxStore(db),
        logger,
        now,
        bumpAfterBlocks: auto.bumpAfterBlocks,
        afterPersist: hooks.crashAfterSign
          ? (entry) => {
              logger.warn(entry, 'test hook: crashing after a signed tx was stored, before its broadcast')
              process.kill(process.pid, 'SIGKILL')
            }
          : undefined,
      })
    : undefined
  const registry = createRegistryClient({ publicClient, address: config.chain.registry as Hex, fromBlock: BigInt(config.chain.fromBlock) })
  const node = createNode({
    chainId: config.chain.chainId,
    registryAddress: registry.address,
    publicClient,
    walletClient,
    outbox,
    registry,
    blobSource: config.blobs.kind === 'anvil' ? anvilBlobSource(config.blobs.url) : beaconBlobSource(config.blobs.url),
    peerBlobSources: config.blobs.peers.map((peer) => peerArchiveBlobSource(peer.url, readSecretFile(peer.tokenFile, 'peer token'))),
    quoteProvider,
    quoteVerifier,
    seal,
    db,
    stores,
    logger,
    now,
    maxReferenceAge: BigInt(config.maxReferenceAge),
  })
  // Stored txs first: a tx signed before a crash is broadcast before anything new is signed (docs/protocol.md#node-state).
  await outbox?.start()
  await node.start()
  const cursor = createCursorStore(db)
  const autoRunner = auto.enabled
    ? createAutoRunner({
        node,
        registry,
        publicClient,
        cursor,
        stores,
        logger,
        register: auto.register,
        help: auto.help,
        pollIntervalMs: auto.pollIntervalMs,
        jitterMs: auto.jitterMs,
        maxBatch: auto.maxBatch,
        slotMs: auto.slotMs,
        selfId: walletClient?.account.address ?? '',
      })
    : undefined
  const watcher = createChainWatcher({
    publicClient,
    registry: registry.address,
    fromBlock: BigInt(config.chain.fromBlock),
    store: cursor,
    logger,
    confirmations: auto.confirmations,
    pollIntervalMs: auto.pollIntervalMs,
    onHead: outbox ? (head) => outbox.tick(head) : undefined,
    onEvents: () => autoRunner?.poke(),
  })
  watcher.start()
  autoRunner?.start()

  if (config.devnet) logger.warn(`INSECURE devnet mode: pods may name themselves with the x-keymanager-pod header`)
  const appIds = Object.fromEntries(
    Object.entries(config.pods.appIds).map(([pod, id]) => [pod, parseHex(id, { name: `pods.appIds.${pod}`, length: 20, prefix: 'required' })]),
  )
  const podAppDeps = {
    node,
    chainId: config.chain.chainId,
    registry: registry.address,
    appIds,
    identity: { devnet: config.devnet, staticNames: config.pods.names },
    quoteProvider,
    version: PACKAGE_VERSION,
    logger,
  }
  const podApp = createPodApp(podAppDeps)
  const sockets = await Promise.all(
    config.pod.sockets.map(({ path, pod: name, mode }) => {
      const podName = parsePodName(name)
      const app = createDstackApp(
        dstackDeps(podAppDeps, fixedPodResolver(podName, appIds[podName] ?? appIdForPod(podName)), () => node.master()),
      )
      return serveUnixSocket(app, { path: resolve(config.dataDir, path), ...(mode === undefined ? {} : { mode }) })
    }),
  )
  const hostApp = createHostApp({ node, blobs: stores.blobs, token, logger })
  const pod = await listen(podApp, config.pod.host, config.pod.port)
  const host = await listen(hostApp, config.host.host, config.host.port)
  logger.info({ podUrl: pod.url, hostUrl: host.url, sockets: sockets.map((s) => s.path), state: node.state }, 'listening')

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
      node.stop()
      db.close()
    },
  }
}
