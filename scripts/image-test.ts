// The repository side of scripts/image-test.sh (`npm run image-test`). The sidecar image holds the production entry
// only, so everything devnet runs here, on the host, from the repository:
//
//   devnet --dir DIR --listen IP   a one-node devnet (anvil, registry, devnet PKI and PCCS, node 1 in auto mode, so it
//                                  answers the image's onboarding request by itself); the image's build measurement
//                                  allowed on chain; a simulated dstack guest agent (src/devnet/dstackAgent.ts) on
//                                  DIR/agent/dstack.sock for the image's `dstack` quote and seal providers; anvil and
//                                  the PCCS forwarded to IP (the docker bridge's address, which containers reach
//                                  through `host-gateway`). Writes DIR/image-test.json, runs until SIGTERM.
//   check --dir DIR --app-log F    checks what the example app (deploy/example-app) printed against the devnet:
//                                  /sealkey is the key the devnet node gives pod `app`, the /attest signature verifies
//                                  on chain, the GetKey signature chain verifies up to the registry's master key.
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, connect, type Server } from 'node:net'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { createHash } from 'node:crypto'
import { hexToBytes } from '@noble/hashes/utils.js'
import type { Address, Hex } from 'viem'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { serveSimulatedDstackAgent } from '../src/devnet/dstackAgent.ts'
import { devAccount, runDevnet, type DevnetNodeInfo } from '../src/devnet/network.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { toHex0x } from '../src/keys/bytes.ts'
import { appIdForPod } from '../src/keys/derive.ts'
import { verifyGetKeyChain } from '../src/keys/verifyChain.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { createPublicClient, http } from 'viem'
import { foundry } from 'viem/chains'

/** The image is its own build: its simulated measurement differs from the devnet nodes', and the owner allows it. */
const IMAGE_MEASUREMENT_LABEL = 'image-test'
/** Funded anvil account that pays the image's gas (the devnet's nodes use 1..N). */
const IMAGE_GAS_ACCOUNT = 9

export type ImageTestInfo = {
  chainId: number
  registry: Address
  /** As the containers reach them (through the bridge address). */
  rpcUrl: string
  pccsUrl: string
  /** The devnet beacon server (light-client data), as the containers reach it. */
  beaconUrl: string
  /** The verified chain view's measured settings for this devnet (docs/protocol.md#verified-chain-view). */
  chainView: { registryCodeHash: Hex; lightClient: { network: 'devnet'; checkpointRoot: Hex; devnet: unknown } }
  gasKey: Hex
  agentSocket: string
  /** The devnet's own node, on loopback: the reference the image's answers are compared with. */
  node: DevnetNodeInfo
  /** anvil on loopback, for the checks. */
  localRpcUrl: string
}

const log = (line: string) => process.stderr.write(`image-test: ${line}\n`)

/** Forwards `listenHost:port` to `127.0.0.1:targetPort`: the containers' way to the devnet, which listens on loopback. */
async function forward(listenHost: string, targetPort: number): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    const upstream = connect(targetPort, '127.0.0.1')
    socket.pipe(upstream).pipe(socket)
    const end = () => {
      socket.destroy()
      upstream.destroy()
    }
    socket.on('error', end)
    upstream.on('error', end)
    socket.on('close', end)
    upstream.on('close', end)
  })
  await new Promise<void>((done, fail) => {
    server.once('error', fail)
    server.listen(0, listenHost, () => done())
  })
  return { server, port: (server.address() as { port: number }).port }
}

async function runImageDevnet(dir: string, listen: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  const devnet = await runDevnet({ nodes: 1, dir: join(dir, 'devnet'), auto: true, print: log })
  const closers: (() => Promise<unknown>)[] = [() => devnet.stop()]
  const stop = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined)
  }
  try {
    const measurement = simulatedMeasurement(IMAGE_MEASUREMENT_LABEL)
    const quoteProvider = simulatedQuoteProvider({ platform: devnet.pki.mintPlatform(), measurement })
    const { measurementId, measurementRaw } = measurementOf(await quoteProvider.getQuote(new Uint8Array(64)))
    const hash = await devnet.owner.writeContract({
      address: devnet.registry,
      abi: keyManagerAbi,
      functionName: 'addMeasurement',
      args: [measurementId, measurementRaw],
    } as never)
    await devnet.publicClient.waitForTransactionReceipt({ hash })
    log(`image measurement ${measurementId} allowed`)

    mkdirSync(join(dir, 'agent'), { recursive: true, mode: 0o755 })
    const agent = await serveSimulatedDstackAgent({ socketPath: join(dir, 'agent', 'dstack.sock'), quoteProvider, seed: randomBytes(32) })
    closers.push(() => agent.close())
    const rpc = await forward(listen, devnet.anvil.port)
    closers.push(() => new Promise((done) => rpc.server.close(done)))
    const pccs = await forward(listen, Number(new URL(devnet.pccsUrl).port))
    closers.push(() => new Promise((done) => pccs.server.close(done)))
    const beacon = await forward(listen, Number(new URL(devnet.beacon!.url).port))
    closers.push(() => new Promise((done) => beacon.server.close(done)))

    const info: ImageTestInfo = {
      chainId: devnet.info.chainId,
      registry: devnet.registry,
      rpcUrl: `http://${listen}:${rpc.port}`,
      pccsUrl: `http://${listen}:${pccs.port}`,
      beaconUrl: `http://${listen}:${beacon.port}`,
      chainView: {
        registryCodeHash: devnet.registryCodeHash,
        lightClient: { network: 'devnet', checkpointRoot: devnet.beacon!.checkpointRoot, devnet: devnet.beacon!.chainSpec },
      },
      gasKey: toHex0x(devAccount(IMAGE_GAS_ACCOUNT).getHdKey().privateKey!),
      agentSocket: agent.socketPath,
      node: devnet.info.nodes[0]!,
      localRpcUrl: devnet.anvil.rpcUrl,
    }
    writeFileSync(join(dir, 'image-test.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
    log(`devnet ready: ${join(dir, 'image-test.json')}`)
  } catch (error) {
    await stop()
    throw error
  }
  await new Promise<void>((done) => {
    process.once('SIGTERM', done)
    process.once('SIGINT', done)
  })
  await stop()
}

/** The example app's output lines (JSON, one per check), by key. */
function readAppLog(path: string): Record<string, Record<string, unknown>> {
  const lines: Record<string, Record<string, unknown>> = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const start = line.indexOf('{')
    if (start < 0) continue
    try {
      Object.assign(lines, JSON.parse(line.slice(start)))
    } catch {
      // docker's own lines
    }
  }
  return lines
}

async function check(dir: string, appLog: string): Promise<number> {
  const info = JSON.parse(readFileSync(join(dir, 'image-test.json'), 'utf8')) as ImageTestInfo
  const out = readAppLog(appLog)
  let ok = true
  const report = (what: string, passed: boolean, detail = '') => {
    process.stdout.write(`${passed ? '✓' : '✗'} ${what}${detail ? `: ${detail}` : ''}\n`)
    ok &&= passed
  }
  const publicClient = createPublicClient({ chain: foundry, transport: http(info.localRpcUrl) })
  const registry = createRegistryClient({ publicClient, address: info.registry })
  const fingerprint = (hex: string) => createHash('sha256').update(hex).digest('hex').slice(0, 16)

  const sealkey = out.sealkey
  const reference = (await (await fetch(`${info.node.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })).json()) as { key: string; appId: string }
  report(
    'app: GET http://dstack-keymanager/sealkey is the key the devnet node gives pod `app`',
    sealkey !== undefined && sealkey.fingerprint === fingerprint(reference.key) && sealkey.appId === reference.appId,
    sealkey ? `appId ${String(sealkey.appId)}` : 'no sealkey line',
  )

  const attest = out.attest
  const attestValid =
    attest !== undefined &&
    attest.hostname === 'app' &&
    (await registry.verifyAttestation(attest.hostname as string, attest.appData as Hex, attest.signature as Hex))
  report('app: GET http://dstack-keymanager/attest/<appdata> verifies on chain (verifyAttestation) for hostname `app`', attestValid)

  const getKey = out.getKey
  let chainOk = false
  if (getKey !== undefined) {
    const verification = verifyGetKeyChain({
      appId: appIdForPod('app'),
      publicKey: hexToBytes((getKey.publicKey as string).replace(/^0x/, '')),
      signatureChain: (getKey.signatureChain as string[]).map((s) => hexToBytes(s.replace(/^0x/, ''))),
      purpose: getKey.purpose as string,
      masterAddress: await registry.xPub(),
    })
    chainOk = verification.ok
  }
  report('app: GetKey through @phala/dstack-sdk over its socket: the signature chain verifies up to the registry master key', chainOk)
  return ok ? 0 : 1
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const { values } = parseArgs({ args: rest, options: { dir: { type: 'string' }, listen: { type: 'string' }, 'app-log': { type: 'string' } } })
  if (!values.dir) throw new Error('--dir is required')
  const dir = resolve(values.dir)
  if (command === 'devnet') {
    if (!values.listen) throw new Error('devnet needs --listen IP')
    await runImageDevnet(dir, values.listen)
    return 0
  }
  if (command === 'check') {
    if (!values['app-log']) throw new Error('check needs --app-log FILE')
    return check(dir, values['app-log'])
  }
  throw new Error(`unknown command '${command}' (devnet | check)`)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    log(error.message)
    process.exit(1)
  },
)
