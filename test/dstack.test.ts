// The dstack guest-agent API end to end: @phala/dstack-sdk 0.5.8, unchanged and in its own package (test/dstack-sdk:
// it needs noble 1.x), talks to createDstackApp over a unix socket and over HTTP, on a registry deployed to anvil
// and bootstrapped with a master key this test controls. The derived key signs a price report that the example
// PriceOracle accepts, and forged chains (another key, purpose, app or root) are refused on chain
// (KeyManager.verifySignatureChain, PriceOracle.submit) and off chain (verifyGetKeyChain, `keymanager verify-chain`).
// The public dstack simulator vectors reproduce byte for byte through the SDK.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import pino from 'pino'
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  encodeAbiParameters,
  http,
  keccak256,
  stringToHex,
  toBlobs,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { createDstackApp, fixedPodResolver, podResolverFromMiddleware, type DstackAppDeps, type DstackKeySource } from '../src/app/dstack.ts'
import { podIdentity } from '../src/app/podIdentity.ts'
import { serveUnixSocket, type UnixSocketServer } from '../src/app/socket.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { keyManagerAbi, priceOracleAbi, priceOracleBytecode } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient, type RegistryClient } from '../src/chain/registry.ts'
import { runVerifyChain } from '../src/cli/verifyChain.ts'
import { toHex0x } from '../src/keys/bytes.ts'
import { appIdForPod, getKeyResponse } from '../src/keys/derive.ts'
import { publicKey33, signDigest, uncompressPublicKey } from '../src/keys/signature.ts'
import { verifyGetKeyChain } from '../src/keys/verifyChain.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../src/secret/masterSecret.ts'
import { generateSimulatedAttestationKey, simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { POD_REPORT_DATA_REFUSED, podQuoteSource } from '../src/tee/podQuote.ts'

const SDK_DIR = join(dirname(fileURLToPath(import.meta.url)), 'dstack-sdk')
const SDK_VERSION = '0.5.8'
// anvil's first development account: deploys the registry and owns it.
const OWNER_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const PURPOSE = 'price-oracle'
const PATH = 'oracle/reports'
const ETH_USD = keccak256(stringToHex('ETH/USD'))

type Vectors = {
  app_id: string
  app_key: string
  kms_signature: string
  kms_root_pub_compressed: string
  kms_root_address: string
  getKey: { path: string; purpose: string; key: string; signature_chain_0: string }[]
}
type SdkKey = { key: string; signature_chain: string[] }

/** Installs test/dstack-sdk from its lockfile when it is missing (npm's cache makes this work offline). */
function ensureSdkInstalled(): void {
  const installed = join(SDK_DIR, 'node_modules', '@phala', 'dstack-sdk', 'package.json')
  if (existsSync(installed) && (JSON.parse(readFileSync(installed, 'utf8')) as { version: string }).version === SDK_VERSION) return
  const npm = spawnSync('npm', ['ci', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: SDK_DIR, encoding: 'utf8' })
  if (npm.status !== 0) throw new Error(`npm ci in test/dstack-sdk failed (${npm.status}): ${npm.stderr.trim().split('\n').at(-1)}`)
}

/** Runs the SDK in a child process against `endpoint` (socket path or http URL); one result per request. */
function runSdk(endpoint: string, requests: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(SDK_DIR, 'run.mjs'), JSON.stringify(requests)], {
      cwd: SDK_DIR,
      env: { ...process.env, DSTACK_SIMULATOR_ENDPOINT: endpoint },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`dstack SDK script exited ${code}: ${stderr.trim()}`))
      resolve(JSON.parse(stdout) as Record<string, unknown>[])
    })
  })
}

function revertName(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null
  return reverted?.data?.errorName
}

describe('dstack SDK against the keymanager dstack API, on a bootstrapped registry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-dstack-'))
  const logger = pino({ level: 'silent' })
  const attestation = generateSimulatedAttestationKey()
  const quoteProvider = simulatedQuoteProvider({ attestationSecretKey: attestation.secretKey, measurement: simulatedMeasurement('dstack-e2e') })
  const vectors = JSON.parse(readFileSync(new URL('./vectors/dstack-simulator.json', import.meta.url), 'utf8')) as Vectors
  const owner = privateKeyToAccount(OWNER_KEY)
  const sockets: UnixSocketServer[] = []
  let anvil: Anvil
  let master: MasterSecret
  let registry: RegistryClient
  let oracle: Address
  let httpServer: Server
  let httpUrl: string
  let chainId: number
  const socketPath = (name: string) => join(dir, `${name}.sock`)
  let publicClient: PublicClient
  const wallet = () => createWalletClient({ account: owner, chain: foundry, transport: http(anvil.rpcUrl) })
  let walletClient: ReturnType<typeof wallet>

  function deps(resolvePodAppId: DstackAppDeps['resolvePodAppId'], source: () => DstackKeySource = () => master): DstackAppDeps {
    return {
      resolvePodAppId,
      master: source,
      getQuote: podQuoteSource(quoteProvider),
      info: () => ({ chainId, registry: registry.address, settingsDigest: `0x${'d1'.repeat(32)}`, generation: 1, version: '0.1.0-test', rev: '' }),
      logger,
    }
  }

  async function socketApp(name: string, appDeps: DstackAppDeps): Promise<string> {
    const server = await serveUnixSocket(createDstackApp(appDeps), { path: socketPath(name) })
    sockets.push(server)
    return server.path
  }

  before(async () => {
    ensureSdkInstalled()
    anvil = await startAnvil()
    const transport = http(anvil.rpcUrl)
    publicClient = createPublicClient({ chain: foundry, transport, pollingInterval: 50 })
    walletClient = wallet()
    chainId = await publicClient.getChainId()
    const address = await deployKeyManager({ walletClient, publicClient, owner: owner.address, measurementDelay: 0 })
    registry = createRegistryClient({ publicClient, address })

    // Bootstrap with a master key this test holds; the blob's content does not matter to the registry.
    master = generateMasterSecret()
    await sendBlobTransaction({
      walletClient,
      publicClient,
      to: registry.address,
      data: registry.calldata.bootstrap(toHex0x(master.publicKey64)),
      blobs: toBlobs({ data: stringToHex('keymanager dstack test: any blob content will do') }),
      abi: keyManagerAbi,
    })
    assert.equal(await registry.xPub(), master.address)

    const deployHash = await walletClient.deployContract({
      abi: priceOracleAbi,
      bytecode: priceOracleBytecode,
      args: [registry.address, toHex0x(appIdForPod('oracle'))],
    })
    oracle = (await publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress!

    // The oracle pod: one socket bound to it, and the pod listener where 127.0.0.1 is statically named "oracle".
    await socketApp('oracle', deps(fixedPodResolver('oracle', appIdForPod('oracle'))))
    await socketApp('wallet', deps(fixedPodResolver('wallet', appIdForPod('wallet'))))
    const identity = podIdentity({ devnet: false, staticNames: { '127.0.0.1': 'oracle' }, reverseLookup: async () => [] })
    const httpApp = createDstackApp(deps(podResolverFromMiddleware(identity, appIdForPod)))
    await new Promise<void>((resolve) => {
      httpServer = serve({ fetch: httpApp.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
        httpUrl = `http://127.0.0.1:${info.port}`
        resolve()
      }) as Server
    })

    // A node whose keys come from the dstack simulator's app key (the vector), pinned to the vector's app_id. Its
    // GetQuote refuses everything, to show how the SDK surfaces an error of this API.
    const appKey = hexToBytes(vectors.app_key)
    const kmsSignature = hexToBytes(vectors.kms_signature)
    const simulator: DstackKeySource = {
      address: vectors.kms_root_address as Address,
      publicKey33: hexToBytes(vectors.kms_root_pub_compressed),
      getKey: ({ path, purpose, algorithm }) => getKeyResponse({ appKey, kmsSignature, path, purpose, algorithm }),
    }
    await socketApp('simulator', {
      ...deps(fixedPodResolver('simulator', hexToBytes(vectors.app_id)), () => simulator),
    })
  })

  after(async () => {
    await Promise.all(sockets.map((s) => s.close()))
    if (httpServer) {
      httpServer.closeAllConnections()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
    }
    await anvil?.stop()
    master?.expire()
    rmSync(dir, { recursive: true, force: true })
  })

  const calls = [
    { op: 'getKey', path: PATH, purpose: PURPOSE },
    { op: 'getKey', path: 'ssh/host', purpose: 'login', algorithm: 'ed25519' },
    { op: 'getQuote', reportData: 'c0ffee' + '00'.repeat(60) + '01' },
    { op: 'info' },
    { op: 'version' },
    { op: 'isReachable' },
  ]

  test('default: getKey, getQuote, info, version answer the unchanged SDK alike over the socket and over HTTP', async () => {
    const viaSocket = await runSdk(socketPath('oracle'), calls)
    const viaHttp = await runSdk(httpUrl, calls)
    for (const results of [viaSocket, viaHttp]) {
      const [key, edKey, quote, info, version, reachable] = results as [SdkKey, SdkKey, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>]
      const expected = master.getKey({ appId: appIdForPod('oracle'), path: PATH, purpose: PURPOSE })
      assert.equal(key.key, bytesToHex(expected.key))
      assert.deepEqual(key.signature_chain, expected.signatureChain.map((s) => bytesToHex(s)))
      const expectedEd = master.getKey({ appId: appIdForPod('oracle'), path: 'ssh/host', purpose: 'login', algorithm: 'ed25519' })
      assert.equal(edKey.key, bytesToHex(expectedEd.key))

      const padded = 'c0ffee' + '00'.repeat(60) + '01'
      assert.equal(quote.report_data, padded)
      assert.equal((quote.quote as string).slice(568 * 2, 632 * 2), padded, 'the quote binds the padded report data')
      assert.deepEqual(quote.rtmrs, Array(4).fill('00'.repeat(48)), 'replayRtmrs over an empty event log')

      assert.equal(info.app_id, bytesToHex(appIdForPod('oracle')))
      assert.equal(info.app_name, 'oracle')
      assert.equal(typeof info.tcb_info, 'object', 'the SDK parsed tcb_info')
      assert.equal((info.tcb_info as { mrtd: string }).mrtd, bytesToHex(simulatedMeasurement('dstack-e2e').mrTd))
      const provider = JSON.parse(info.key_provider_info as string) as { name: string; id: string; registry: string; xpub: string; chain_id: number }
      assert.deepEqual(
        { name: provider.name, id: provider.id, registry: provider.registry, xpub: provider.xpub, chainId: provider.chain_id },
        { name: 'keymanager', id: bytesToHex(master.publicKey33), registry: registry.address, xpub: master.address, chainId },
      )
      assert.deepEqual(version, { version: '0.1.0-test', rev: '', __name__: 'VersionResponse' })
      assert.deepEqual(reachable, { reachable: true })
    }
    assert.deepEqual(viaSocket, viaHttp)
  })

  test('security: GetQuote refuses protocol-shaped report data, and the SDK surfaces the error', async () => {
    const [quote] = await runSdk(socketPath('simulator'), [{ op: 'getQuote', reportData: '00' }])
    assert.deepEqual(quote, { error: POD_REPORT_DATA_REFUSED })
  })

  test('vectors: the dstack simulator GetKey vectors reproduce byte for byte through the SDK', async () => {
    const results = (await runSdk(socketPath('simulator'), [
      ...vectors.getKey.map((v) => ({ op: 'getKey', path: v.path, purpose: v.purpose })),
      { op: 'info' },
    ])) as (SdkKey & { app_id?: string })[]
    vectors.getKey.forEach((v, i) => {
      assert.equal(results[i]!.key, v.key, v.path)
      assert.deepEqual(results[i]!.signature_chain, [v.signature_chain_0, vectors.kms_signature], v.path)
    })
    assert.equal(results.at(-1)!.app_id, vectors.app_id)
  })

  describe('the derived key reports a price to the example oracle', () => {
    let report: { pair: Hex; price: bigint; timestamp: bigint }
    let oracleKey: SdkKey
    const oracleAppId = appIdForPod('oracle')

    function reportMessage(r: typeof report): Uint8Array {
      const encoded = encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'uint64' }],
        [keccak256(stringToHex('keymanager.example.PriceReport.v1')), BigInt(chainId), oracle, r.pair, r.price, r.timestamp],
      )
      return hexToBytes(encoded.slice(2))
    }

    /** The oracle's KeyChain argument from a GetKey answer (the app key recovered off chain). */
    function keyChain(sdkKey: SdkKey, purpose: string, appId: Uint8Array, publicKey?: Uint8Array) {
      const chain = sdkKey.signature_chain.map((s) => hexToBytes(s))
      const derived = publicKey ?? publicKey33(hexToBytes(sdkKey.key))
      const verified = verifyGetKeyChain({ appId, publicKey: derived, signatureChain: chain, purpose, masterAddress: master.address })
      return {
        verified,
        arg: {
          derivedPubkey64: toHex0x(uncompressPublicKey(derived)),
          appPubkey33: toHex0x(verified.appPublicKey33!),
          appSignature: toHex0x(chain[0]!),
          kmsSignature: toHex0x(chain[1]!),
        },
      }
    }

    async function onChain(arg: ReturnType<typeof keyChain>['arg'], purpose: string, appId: Uint8Array, derived: Uint8Array) {
      return publicClient.readContract({
        address: registry.address,
        abi: keyManagerAbi,
        functionName: 'verifySignatureChain',
        args: [toHex0x(appId), toHex0x(derived), arg.appPubkey33, arg.appSignature, arg.kmsSignature, purpose],
      })
    }

    async function submitRevert(signature: Uint8Array, arg: ReturnType<typeof keyChain>['arg']): Promise<string | undefined> {
      try {
        await publicClient.simulateContract({ account: owner, address: oracle, abi: priceOracleAbi, functionName: 'submit', args: [report, toHex0x(signature), arg] })
      } catch (error) {
        return revertName(error)
      }
      return 'accepted'
    }

    before(async () => {
      ;[oracleKey] = (await runSdk(socketPath('oracle'), [{ op: 'getKey', path: PATH, purpose: PURPOSE }])) as [SdkKey]
      const block = await publicClient.getBlock()
      report = { pair: ETH_USD, price: 3_000_12345678n, timestamp: block.timestamp }
    })

    test('default: accepted on chain, and its chain and signature verify off chain', async () => {
      const key = hexToBytes(oracleKey.key)
      const message = reportMessage(report)
      assert.equal(
        await publicClient.readContract({ address: oracle, abi: priceOracleAbi, functionName: 'reportDigest', args: [report] }),
        keccak256(message),
      )
      const signature = signDigest(hexToBytes(keccak256(message).slice(2)), key)
      const { verified, arg } = keyChain(oracleKey, PURPOSE, oracleAppId)
      const offChain = verifyGetKeyChain({
        appId: oracleAppId,
        key,
        signatureChain: oracleKey.signature_chain.map((s) => hexToBytes(s)),
        purpose: PURPOSE,
        masterAddress: master.address,
        message,
        messageSignature: signature,
      })
      assert.deepEqual(offChain.steps.map((s) => s.ok), [true, true, true])
      assert.equal(verified.ok, true)
      assert.equal(await onChain(arg, PURPOSE, oracleAppId, publicKey33(key)), true)

      const hash = await walletClient.writeContract({ address: oracle, abi: priceOracleAbi, functionName: 'submit', args: [report, toHex0x(signature), arg] })
      assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success')
      const [price, timestamp] = await publicClient.readContract({ address: oracle, abi: priceOracleAbi, functionName: 'latestPrice', args: [ETH_USD] })
      assert.equal(price, report.price)
      assert.equal(timestamp, report.timestamp)
      // The forgeries below use a newer report (the stored one would be refused as stale before any key check), in
      // a chain whose latest block is later still (or it would be refused as from the future).
      const testClient = createTestClient({ mode: 'anvil', chain: foundry, transport: http(anvil.rpcUrl) })
      await testClient.setNextBlockTimestamp({ timestamp: report.timestamp + 10n })
      await testClient.mine({ blocks: 1 })
      report = { ...report, timestamp: report.timestamp + 1n, price: report.price + 1n }
    })

    test('security: a report signed by another key with the real chain is refused', async () => {
      const intruder = generateMasterSecret()
      const signature = intruder.signDigest(hexToBytes(keccak256(reportMessage(report)).slice(2)))
      assert.equal(await submitRevert(signature, keyChain(oracleKey, PURPOSE, oracleAppId).arg), 'PriceOracleInvalidSignature')
      // Claiming the chain covers the intruder's key: neither verifier agrees.
      const claimed = keyChain(oracleKey, PURPOSE, oracleAppId, intruder.publicKey33)
      assert.equal(claimed.verified.ok, false)
      assert.equal(await onChain(claimed.arg, PURPOSE, oracleAppId, intruder.publicKey33), false)
      assert.equal(await submitRevert(signature, claimed.arg), 'PriceOracleUntrustedKey')
      intruder.expire()
    })

    test('security: a key issued for another purpose, another app or under another root is refused', async () => {
      const [otherPurpose] = (await runSdk(socketPath('oracle'), [{ op: 'getKey', path: PATH, purpose: 'ethereum' }])) as [SdkKey]
      const [otherApp] = (await runSdk(socketPath('wallet'), [{ op: 'getKey', path: PATH, purpose: PURPOSE }])) as [SdkKey]
      const otherRoot = createMasterSecret(hexToBytes('0e'.repeat(32)))
      const rogue = otherRoot.getKey({ appId: oracleAppId, path: PATH, purpose: PURPOSE })
      const otherRootKey: SdkKey = { key: bytesToHex(rogue.key), signature_chain: rogue.signatureChain.map((s) => bytesToHex(s)) }
      assert.equal(otherPurpose.key, oracleKey.key, 'purpose does not change the key, only the chain')

      for (const [name, forged, issuedFor] of [
        ['another purpose', otherPurpose, { purpose: 'ethereum', appId: oracleAppId }],
        ['another app', otherApp, { purpose: PURPOSE, appId: appIdForPod('wallet') }],
        ['another root', otherRootKey, { purpose: PURPOSE, appId: oracleAppId }],
      ] as const) {
        const key = hexToBytes(forged.key)
        const derived = publicKey33(key)
        const signature = signDigest(hexToBytes(keccak256(reportMessage(report)).slice(2)), key)
        const asOracle = keyChain(forged, PURPOSE, oracleAppId)
        assert.equal(asOracle.verified.ok, false, `${name}: off chain`)
        assert.equal(await onChain(asOracle.arg, PURPOSE, oracleAppId, derived), false, `${name}: verifySignatureChain`)
        assert.equal(await submitRevert(signature, asOracle.arg), 'PriceOracleUntrustedKey', `${name}: oracle`)
        if (name !== 'another root') {
          // What it was issued for does verify: the refusal is about the oracle's pin, not a broken chain.
          assert.equal(keyChain(forged, issuedFor.purpose, issuedFor.appId).verified.ok, true, `${name}: valid for what it was issued for`)
        }
      }
      otherRoot.expire()
    })

    test('default: keymanager verify-chain reads the root from the registry and checks on chain too', async () => {
      const file = join(dir, 'getkey.json')
      const run = async (content: Record<string, unknown>) => {
        writeFileSync(file, JSON.stringify(content))
        const out: string[] = []
        const err: string[] = []
        const code = await runVerifyChain([file, '--rpc', anvil.rpcUrl, '--registry', registry.address], (l) => out.push(l), (l) => err.push(l))
        return { code, out: out.join('\n'), err }
      }
      const good = await run({ ...oracleKey, purpose: PURPOSE, app_id: bytesToHex(oracleAppId) })
      assert.equal(good.code, 0, good.out + good.err.join('\n'))
      assert.match(good.out, /^\[ok\]   on-chain: registry 0x\w+ verifySignatureChain returned true$/m)
      assert.match(good.out, /^verified: all 3 steps hold$/m)
      assert.doesNotMatch(good.out, new RegExp(oracleKey.key))

      const forged = await run({ ...oracleKey, purpose: 'ethereum', app_id: bytesToHex(oracleAppId) })
      assert.equal(forged.code, 1)
      assert.match(forged.out, /^\[FAIL\] kms-signature/m)
      assert.match(forged.out, /^\[FAIL\] on-chain: registry 0x\w+ verifySignatureChain returned false$/m)
    })
  })
})
