// The dstack guest-agent API end to end: @phala/dstack-sdk 0.5.8, unchanged and in its own package (test/dstack-sdk:
// it needs noble 1.x), drives every DstackClient method against createDstackApp over a unix socket and over HTTP, on
// a registry deployed to anvil and bootstrapped with a master key this test controls, and a simulated TD under a
// devnet DCAP PKI. The derived key signs a price report that the example PriceOracle accepts, and forged chains
// (another key, purpose, app or root) are refused on chain (KeyManager.verifySignatureChain, PriceOracle.submit) and
// off chain (verifyGetKeyChain, `keymanager verify-chain`). Sign answers verify off chain and in the example
// SignedDataVerifier; a getTlsKey certificate serves real TLS to clients that pin the app CA (and is refused by
// clients pinning another); replayRtmrs() reproduces every quote's RTMRs, and emitEvent moves RTMR3. The public
// dstack simulator vectors reproduce byte for byte through the SDK.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
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
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { appCaCertificate, certificatePem, extensionOctets, RATLS_OID, raTlsReportData, readCertificateExtensions, verifyAppCaCertificate } from '../src/keys/appCa.ts'
import { dstackVerify } from '../src/keys/dstackSign.ts'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { createDcapVerifier } from '../src/tee/dcap.ts'
import { decodeDstackAttestation } from '../src/tee/dstackAttestation.ts'
import { extendRtmr, replayRtmrs, runtimeEventDigest, type TdxEvent } from '../src/tee/eventLog.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { podTeeFor } from '../src/tee/podTee.ts'
import { simulatorKeySource } from './simulatorKeySource.ts'
import { podIdentity } from '../src/app/podIdentity.ts'
import { serveUnixSocket, type UnixSocketServer } from '../src/app/socket.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { keyManagerAbi, priceOracleAbi, priceOracleBytecode, signedDataVerifierAbi, signedDataVerifierBytecode } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient, type RegistryClient } from '../src/chain/registry.ts'
import { runVerifyChain } from '../src/cli/verifyChain.ts'
import {
  attestationSchema,
  emitEventSchema,
  getKeySchema,
  getQuoteSchema,
  getTlsKeySchema,
  infoSchema,
  signSchema,
  verifySchema,
  versionSchema,
} from '../src/app/openapi.ts'
import type { z } from 'zod'
import { toHex0x } from '../src/keys/bytes.ts'
import { appIdForPod } from '../src/keys/derive.ts'
import { publicKey33, signDigest, uncompressPublicKey } from '../src/keys/signature.ts'
import { verifyGetKeyChain } from '../src/keys/verifyChain.ts'
import { createMasterSecret, generateMasterSecret, type MasterSecret } from '../src/secret/masterSecret.ts'
import { generateSimulatedAttestationKey, simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { POD_REPORT_DATA_REFUSED } from '../src/tee/podQuote.ts'
import { PROTOCOL_MARKER } from '../src/keys/reportData.ts'

const SDK_DIR = join(dirname(fileURLToPath(import.meta.url)), 'dstack-sdk')
const SDK_VERSION = '0.5.8'
// A busy 2-core machine can take seconds to mine the first blob tx (anvil loads KZG lazily): not a failure.
const RPC_OPTIONS = { timeout: 60_000 }
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
  // A simulated TD on a devnet platform: its quotes pass the production DCAP verifier with the devnet root trusted.
  const pki = createDevnetPki()
  const quoteProvider = simulatedQuoteProvider({
    attestationSecretKey: attestation.secretKey,
    platform: pki.mintPlatform(),
    measurement: simulatedMeasurement('dstack-e2e'),
    bootEventLog: simulatedBootEventLog('dstack-e2e'),
  })
  const dcap = createDcapVerifier({ collateral: { get: async () => pki.collateral() }, trustedRootCaDer: [pki.rootCaDer] })
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
  const wallet = () => createWalletClient({ account: owner, chain: foundry, transport: http(anvil.rpcUrl, RPC_OPTIONS) })
  let walletClient: ReturnType<typeof wallet>

  function deps(resolvePodAppId: DstackAppDeps['resolvePodAppId'], source: () => DstackKeySource = () => master): DstackAppDeps {
    return {
      resolvePodAppId,
      master: source,
      // One PodTee for the whole TD, as a node has (src/app/pod.ts): every socket and the listener share its RTMR3.
      tee: podTeeFor(quoteProvider),
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
    const transport = http(anvil.rpcUrl, RPC_OPTIONS)
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
    const identity = podIdentity({ devnet: false, staticNames: { '127.0.0.1': 'oracle' } })
    const httpApp = createDstackApp(deps(podResolverFromMiddleware(identity, appIdForPod)))
    await new Promise<void>((resolve) => {
      httpServer = serve({ fetch: httpApp.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
        httpUrl = `http://127.0.0.1:${info.port}`
        resolve()
      }) as Server
    })

    // A node whose keys come from the dstack simulator's app key (the vector), pinned to the vector's app_id.
    await socketApp('simulator', deps(fixedPodResolver('simulator', hexToBytes(vectors.app_id)), () => simulatorKeySource()))
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

  const QUOTE_DATA = 'c0ffee' + '00'.repeat(60) + '01'
  const SIGN_DATA = Buffer.from('price=3000.12345678').toString('hex')
  const calls = [
    { op: 'getKey', path: PATH, purpose: PURPOSE },
    { op: 'getKey', path: 'ssh/host', purpose: 'login', algorithm: 'ed25519' },
    { op: 'getQuote', reportData: QUOTE_DATA },
    { op: 'attest', reportData: QUOTE_DATA },
    { op: 'sign', algorithm: 'secp256k1', data: SIGN_DATA },
    { op: 'sign', algorithm: 'ed25519', data: SIGN_DATA },
    { op: 'sign', algorithm: 'secp256k1_prehashed', data: createHash('sha256').update(Buffer.from(SIGN_DATA, 'hex')).digest('hex') },
    { op: 'getTlsKey', options: { subject: 'oracle.internal', altNames: ['oracle.internal'], usageRaTls: true, withAppInfo: true } },
    { op: 'info' },
    { op: 'version' },
    { op: 'isReachable' },
    { op: 'tdxQuote', reportData: QUOTE_DATA },
  ]
  type SdkSign = { signature: string; signature_chain: string[]; public_key: string; name: string }
  type SdkTls = { key: string; certificate_chain: string[]; keyDer: string; name: string }
  const rtmrsOf = (quoteHex: string) => [376, 424, 472, 520].map((o) => quoteHex.slice(o * 2, (o + 48) * 2))

  test('default: every SDK method answers the unchanged SDK alike over the socket and over HTTP', async () => {
    const viaSocket = await runSdk(socketPath('oracle'), calls)
    const viaHttp = await runSdk(httpUrl, calls)
    const xPub = await registry.xPub()
    for (const results of [viaSocket, viaHttp]) {
      const [key, edKey, quote, attest, sign, edSign, preSign, tls, info, version, reachable, tdxQuote] = results as [
        SdkKey, SdkKey, Record<string, unknown>, Record<string, unknown>, SdkSign, SdkSign, SdkSign, SdkTls, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>,
      ]
      for (const [i, r] of results.entries()) assert.equal((r as { error?: string }).error, undefined, `${calls[i]!.op}: ${JSON.stringify(r)}`)
      const expected = master.getKey({ appId: appIdForPod('oracle'), path: PATH, purpose: PURPOSE })
      assert.equal(key.key, bytesToHex(expected.key))
      assert.deepEqual(key.signature_chain, expected.signatureChain.map((s) => bytesToHex(s)))
      const expectedEd = master.getKey({ appId: appIdForPod('oracle'), path: 'ssh/host', purpose: 'login', algorithm: 'ed25519' })
      assert.equal(edKey.key, bytesToHex(expectedEd.key))

      // GetQuote: dstack's field set; the quote binds the padded report data and passes DCAP; replayRtmrs() over
      // the event log reproduces all four RTMRs of the quote.
      assert.deepEqual(Object.keys(quote), ['quote', 'event_log', 'report_data', 'vm_config', 'rtmrs'])
      assert.equal(quote.report_data, QUOTE_DATA)
      assert.equal((quote.quote as string).slice(568 * 2, 632 * 2), QUOTE_DATA, 'the quote binds the padded report data')
      assert.deepEqual(quote.rtmrs, rtmrsOf(quote.quote as string), 'replayRtmrs() = the quote\'s RTMR0-3')
      assert.notDeepEqual(quote.rtmrs, Array(4).fill('00'.repeat(48)))
      for (const entry of JSON.parse(quote.event_log as string) as TdxEvent[]) {
        assert.deepEqual(Object.keys(entry), ['imr', 'event_type', 'digest', 'event', 'event_payload'])
      }
      assert.equal(quote.vm_config, '')
      assert.equal((await dcap.verify(hexToBytes(quote.quote as string))).status, 'UpToDate')

      // Attest: dstack's SCALE attestation of the same quote and its full log.
      assert.deepEqual(Object.keys(attest), ['__name__', 'attestation'])
      const decoded = decodeDstackAttestation(hexToBytes(attest.attestation as string))
      assert.equal(bytesToHex(decoded.quote), quote.quote)
      assert.equal(bytesToHex(decoded.reportData), QUOTE_DATA)
      assert.deepEqual(replayRtmrs(decoded.eventLog).map((r) => bytesToHex(r)), quote.rtmrs)

      // Sign: [signature, GetKey("vms", "signing") chain], and Verify agrees (checked below through the SDK too).
      for (const [signed, algorithm] of [[sign, 'secp256k1'], [edSign, 'ed25519'], [preSign, 'secp256k1']] as const) {
        assert.equal(signed.name, 'SignResponse')
        assert.equal(signed.signature_chain[0], signed.signature)
        const issued = master.getKey({ appId: appIdForPod('oracle'), path: 'vms', purpose: 'signing', algorithm })
        assert.deepEqual(signed.signature_chain.slice(1), issued.signatureChain.map((s) => bytesToHex(s)))
      }
      assert.equal(preSign.signature, sign.signature, 'secp256k1 signs SHA-256(data)')

      // GetTlsKey: PKCS#8 key (the SDK's asUint8Array is its DER), [leaf, app CA]; the CA verifies against xPub.
      assert.equal(tls.name, 'GetTlsKeyResponse')
      assert.equal(tls.keyDer, createPrivateKey(tls.key).export({ type: 'pkcs8', format: 'der' }).toString('hex'))
      assert.equal(tls.certificate_chain.length, 2)
      const [leaf, ca] = tls.certificate_chain.map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate]
      assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey) && leaf.checkPrivateKey(createPrivateKey(tls.key)))
      assert.equal(verifyAppCaCertificate(tls.certificate_chain[1]!, { masterAddress: xPub, appId: appIdForPod('oracle') }).ok, true)
      assert.ok(readCertificateExtensions(leaf.raw).has(RATLS_OID.appInfo))

      // Info: dstack's fields, tcb_info parsed by the SDK, the app CA as app_cert, the key provider naming xPub.
      assert.deepEqual(Object.keys(info).sort(), [
        'app_cert', 'app_id', 'app_name', 'cloud_product', 'cloud_vendor', 'compose_hash', 'device_id', 'instance_id',
        'key_provider_info', 'mr_aggregated', 'os_image_hash', 'tcb_info', 'vm_config',
      ])
      assert.equal(info.app_id, bytesToHex(appIdForPod('oracle')))
      assert.equal(info.app_name, 'oracle')
      assert.equal(info.app_cert, tls.certificate_chain[1])
      const tcb = info.tcb_info as { mrtd: string; rtmr0: string; rtmr3: string; event_log: TdxEvent[]; mr_aggregated: string }
      assert.equal(tcb.mrtd, bytesToHex(simulatedMeasurement('dstack-e2e').mrTd))
      assert.deepEqual(replayRtmrs(tcb.event_log).map((r) => bytesToHex(r)), quote.rtmrs, 'tcb_info\'s event log replays to its registers')
      assert.equal(tcb.mr_aggregated, info.mr_aggregated)
      const provider = JSON.parse(info.key_provider_info as string) as { name: string; id: string; registry: string; xpub: string; chain_id: number }
      assert.deepEqual(
        { name: provider.name, id: provider.id, registry: provider.registry, xpub: provider.xpub, chainId: provider.chain_id },
        { name: 'keymanager', id: bytesToHex(master.publicKey33), registry: registry.address, xpub: master.address, chainId },
      )
      assert.deepEqual(version, { version: '0.1.0-test', rev: '', __name__: 'VersionResponse' })
      assert.deepEqual(reachable, { reachable: true })
      // The deprecated tdxQuote(data, 'raw') is GetQuote under another name.
      assert.deepEqual(Object.keys(tdxQuote), Object.keys(quote))
      assert.equal(tdxQuote.report_data, QUOTE_DATA)
      assert.deepEqual(tdxQuote.rtmrs, rtmrsOf(tdxQuote.quote as string))
    }
    // Deterministic answers are byte-identical over both transports (a TLS key is fresh each time).
    const same = (results: Record<string, unknown>[]) => results.filter((_, i) => calls[i]!.op !== 'getTlsKey')
    assert.deepEqual(same(viaSocket), same(viaHttp))
  })

  /** Field names of an interface in the SDK's own type declarations: required and optional, methods and __name__ left out. */
  function sdkFields(name: string): { required: string[]; optional: string[] } {
    const dts = readFileSync(join(SDK_DIR, 'node_modules', '@phala', 'dstack-sdk', 'dist', 'index.d.ts'), 'utf8')
    const body = new RegExp(`interface ${name}(?:<[^>]*>)? \\{([^}]*)\\}`).exec(dts)?.[1]
    assert.ok(body, `interface ${name} in the SDK's index.d.ts`)
    const fields = [...body.matchAll(/^\s*(\w+)(\??):\s*([^;]+);/gm)].filter(([, field, , type]) => field !== '__name__' && !type!.includes('=>'))
    return { required: fields.filter((f) => f[2] === '').map((f) => f[1]!), optional: fields.filter((f) => f[2] === '?').map((f) => f[1]!) }
  }

  function assertShape(answer: Record<string, unknown>, fields: { required: string[]; optional: string[] }, what: string) {
    for (const field of fields.required) assert.ok(field in answer, `${what}: ${field} is missing`)
    for (const field of Object.keys(answer)) assert.ok(fields.required.includes(field) || fields.optional.includes(field), `${what}: ${field} is not in the SDK's type`)
  }

  test('default: every answer has exactly the fields of the SDK\'s response types (its index.d.ts)', async () => {
    const post = async (route: string, body: unknown) => (await (await fetch(`${httpUrl}/${route}`, { method: 'POST', body: JSON.stringify(body) })).json()) as Record<string, unknown>
    const sign = await post('Sign', { algorithm: 'secp256k1', data: SIGN_DATA })
    const answers: [string, Record<string, unknown>][] = [
      ['GetKeyResponse', await post('GetKey', { path: PATH, purpose: PURPOSE })],
      ['GetTlsKeyResponse', await post('GetTlsKey', { subject: 'x', usage_ra_tls: true })],
      ['GetQuoteResponse', await post('GetQuote', { report_data: QUOTE_DATA })],
      ['AttestResponse', await post('Attest', { report_data: QUOTE_DATA })],
      ['SignResponse', sign],
      ['VerifyResponse', await post('Verify', { algorithm: 'secp256k1', data: SIGN_DATA, signature: sign.signature, public_key: sign.public_key })],
      ['InfoResponse', await post('Info', {})],
      ['VersionResponse', await post('Version', {})],
    ]
    for (const [type, answer] of answers) assertShape(answer, sdkFields(type), type)
    // And each parses with the schema the OpenAPI document publishes for its route (docs/openapi/pod.json).
    const documented: Record<string, z.ZodType> = {
      GetKeyResponse: getKeySchema,
      GetTlsKeyResponse: getTlsKeySchema,
      GetQuoteResponse: getQuoteSchema,
      AttestResponse: attestationSchema,
      SignResponse: signSchema,
      VerifyResponse: verifySchema,
      InfoResponse: infoSchema,
      VersionResponse: versionSchema,
    }
    for (const [type, answer] of answers) {
      const parsed = documented[type]!.safeParse(answer)
      assert.ok(parsed.success, `${type}: ${JSON.stringify(parsed.error?.issues)}`)
    }
    const info = answers.find(([type]) => type === 'InfoResponse')![1]
    const tcb = JSON.parse(info.tcb_info as string) as Record<string, unknown>
    const tcbFields = sdkFields('TcbInfo')
    // TcbInfoV05x = TcbInfo & {mr_aggregated, os_image_hash, compose_hash, device_id}.
    assertShape(tcb, { required: [...tcbFields.required, 'mr_aggregated', 'os_image_hash', 'compose_hash', 'device_id'], optional: [] }, 'TcbInfoV05x')
    for (const entry of tcb.event_log as Record<string, unknown>[]) assertShape(entry, sdkFields('EventLog'), 'EventLog')
    const quote = answers.find(([type]) => type === 'GetQuoteResponse')![1]
    for (const entry of JSON.parse(quote.event_log as string) as Record<string, unknown>[]) assertShape(entry, sdkFields('EventLog'), 'EventLog')
    const emitted = await post('EmitEvent', { event: 'shape-check', payload: '' })
    assert.equal(JSON.stringify(emitted), '{}', 'EmitEvent answers protobuf Empty')
    assert.ok(emitEventSchema.safeParse(emitted).success)
  })

  test('default: verify through the SDK: true for each signature it made, false for other data, an error for a malformed key', async () => {
    const [sign, edSign] = (await runSdk(socketPath('oracle'), calls.slice(4, 6))) as [SdkSign, SdkSign]
    const other = Buffer.from('price=1').toString('hex')
    for (const endpoint of [httpUrl, socketPath('oracle')]) {
      const results = await runSdk(endpoint, [
        { op: 'verify', algorithm: 'secp256k1', data: SIGN_DATA, signature: sign.signature, publicKey: sign.public_key },
        { op: 'verify', algorithm: 'ed25519', data: SIGN_DATA, signature: edSign.signature, publicKey: edSign.public_key },
        { op: 'verify', algorithm: 'secp256k1', data: other, signature: sign.signature, publicKey: sign.public_key },
        { op: 'verify', algorithm: 'ed25519', data: other, signature: edSign.signature, publicKey: edSign.public_key },
        { op: 'verify', algorithm: 'secp256k1', data: SIGN_DATA, signature: sign.signature, publicKey: '02' + 'ff'.repeat(32) },
      ])
      assert.deepEqual(results.slice(0, 4), [
        { valid: true, __name__: 'VerifyResponse' },
        { valid: true, __name__: 'VerifyResponse' },
        { valid: false, __name__: 'VerifyResponse' },
        { valid: false, __name__: 'VerifyResponse' },
      ])
      // The SDK's verify does not look for `error`: dstack's error body is what it returns.
      assert.deepEqual(results[4], { error: 'invalid public key: not a secp256k1 point', __name__: 'VerifyResponse' })
    }
  })

  test('default: the SDK getQuote with 32 bytes, 64 bytes and a string is served, zero-padded as dstack does', async () => {
    const sha256 = createHash('sha256').update('an app commits to this').digest('hex')
    const full = bytesToHex(randomBytes(64))
    const text = 'hello from a dstack app'
    const results = (await runSdk(socketPath('oracle'), [
      { op: 'getQuote', reportData: sha256 },
      { op: 'getQuote', reportData: full },
      { op: 'getQuote', reportText: text },
    ])) as Record<string, unknown>[]
    const expected = [sha256 + '00'.repeat(32), full, Buffer.from(text).toString('hex').padEnd(128, '0')]
    results.forEach((quote, i) => {
      assert.equal(quote.error, undefined, String(quote.error))
      assert.equal(quote.report_data, expected[i])
      assert.equal((quote.quote as string).slice(568 * 2, 632 * 2), expected[i], 'the quote binds the padded report data')
    })
  })

  test('security: GetQuote refuses protocol-shaped report data (ending in the marker), and the SDK surfaces the error', async () => {
    const shaped = 'ab'.repeat(32) + bytesToHex(PROTOCOL_MARKER)
    const [quote, attest] = await runSdk(socketPath('simulator'), [{ op: 'getQuote', reportData: shaped }, { op: 'attest', reportData: shaped }])
    assert.deepEqual(quote, { error: POD_REPORT_DATA_REFUSED })
    assert.deepEqual(attest, { error: POD_REPORT_DATA_REFUSED })
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

  /** A TLS server on loopback with `key` and `chain`; resolves with the port. */
  async function tlsServer(key: string, chain: string[]) {
    const server = createTlsServer({ key, cert: chain.join('') }, (socket) => socket.end('hello from the pod'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return { port: (server.address() as { port: number }).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
  }

  /** Connects with `ca` as the only trust anchor; resolves with what the server said, rejects on a TLS failure. */
  function tlsClient(port: number, ca: string, servername = 'localhost'): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ca: [ca], servername }, () => {
        let data = ''
        socket.on('data', (chunk) => (data += chunk))
        socket.on('end', () => resolve(data))
      })
      socket.on('error', reject)
    })
  }

  test('default: a getTlsKey certificate serves TLS to clients pinning the app CA, every node issues under that CA, another CA is refused', async () => {
    const options = { subject: 'localhost', altNames: ['localhost', '127.0.0.1'], usageRaTls: true, usageServerAuth: true }
    const [tls] = (await runSdk(socketPath('oracle'), [{ op: 'getTlsKey', options }])) as [SdkTls]
    const [walletTls] = (await runSdk(socketPath('wallet'), [{ op: 'getTlsKey', options }])) as [SdkTls]
    const caPem = tls.certificate_chain[1]!

    // The pin: the app CA, checked once against the registry's xPub (read from the chain) through its signature chain.
    const xPub = await registry.xPub()
    const pinned = verifyAppCaCertificate(caPem, { masterAddress: xPub, appId: appIdForPod('oracle') })
    assert.deepEqual(pinned.steps.map((s) => s.ok), [true, true, true])
    // The same from the command line, xPub read from the registry: `keymanager verify-chain chain.pem --rpc … --registry …`.
    const chainFile = join(dir, 'tls-chain.pem')
    writeFileSync(chainFile, tls.certificate_chain.join(''))
    const cliOut: string[] = []
    assert.equal(await runVerifyChain([chainFile, '--rpc', anvil.rpcUrl, '--registry', registry.address], (l) => cliOut.push(l), () => {}), 0, cliOut.join('\n'))
    assert.match(cliOut.join('\n'), /^verified: pin this CA/m)

    // The leaf carries a DCAP-valid quote whose report data binds the leaf's key (dstack RA-TLS).
    const leaf = new X509Certificate(tls.certificate_chain[0]!)
    const quote = extensionOctets(readCertificateExtensions(leaf.raw).get(RATLS_OID.tdxQuote)!)
    const verified = await dcap.verify(quote)
    assert.deepEqual(verified.reportData, raTlsReportData(leaf.publicKey.export({ type: 'spki', format: 'der' })))
    const eventLog = JSON.parse(Buffer.from(extensionOctets(readCertificateExtensions(leaf.raw).get(RATLS_OID.eventLog)!)).toString()) as TdxEvent[]
    assert.deepEqual(replayRtmrs(eventLog).map((r) => toHex0x(r)), [verified.measurements.rtMr0, verified.measurements.rtMr1, verified.measurements.rtMr2, verified.measurements.rtMr3])

    // A second node of the same network (same M, its own listener) issues under the identical CA.
    const node2Master = master.exportForSealing((secret) => createMasterSecret(secret))
    const node2 = createDstackApp(deps(fixedPodResolver('oracle', appIdForPod('oracle')), () => node2Master))
    const node2Res = await node2.request('/GetTlsKey', { method: 'POST', body: JSON.stringify({ subject: 'localhost', alt_names: ['localhost'], usage_server_auth: true }) })
    const node2Tls = (await node2Res.json()) as { key: string; certificate_chain: string[] }
    assert.equal(node2Tls.certificate_chain[1], caPem)

    // Another network's CA for the same app (another M).
    const otherNetwork = generateMasterSecret()
    const otherCa = certificatePem(appCaCertificate(appIdForPod('oracle'), otherNetwork.appCa(appIdForPod('oracle'))))

    for (const [name, served] of [['node 1', tls], ['node 2', node2Tls]] as const) {
      const server = await tlsServer(served.key, served.certificate_chain)
      try {
        assert.equal(await tlsClient(server.port, caPem), 'hello from the pod', `${name}: the pinned CA accepts`)
        await assert.rejects(tlsClient(server.port, walletTls.certificate_chain[1]!), /unable to verify|self.signed|UNABLE_TO/i, `${name}: another app's CA refuses`)
        await assert.rejects(tlsClient(server.port, otherCa), /unable to verify|self.signed|UNABLE_TO/i, `${name}: another network's CA refuses`)
        await assert.rejects(tlsClient(server.port, caPem, 'elsewhere.example'), /does not match|ERR_TLS_CERT_ALTNAME_INVALID|Hostname/i, `${name}: a name outside alt_names refuses`)
      } finally {
        await server.close()
      }
    }
    otherNetwork.expire()
    node2Master.expire()
  })

  test('default: getTlsKey client certificates (usageClientAuth, notBefore, notAfter through the SDK) pass mutual TLS where the server pins the app CA', async () => {
    const notBefore = Math.floor(Date.now() / 1000) - 3600
    const notAfter = notBefore + 30 * 86_400
    const clientOptions = { subject: 'oracle-client', usageServerAuth: false, usageClientAuth: true, notBefore, notAfter }
    const [server, client] = (await runSdk(socketPath('oracle'), [
      { op: 'getTlsKey', options: { subject: 'localhost', altNames: ['localhost'], usageServerAuth: true } },
      { op: 'getTlsKey', options: clientOptions },
    ])) as [SdkTls, SdkTls]
    const [walletClient] = (await runSdk(socketPath('wallet'), [{ op: 'getTlsKey', options: clientOptions }])) as [SdkTls]
    const leaf = new X509Certificate(client.certificate_chain[0]!)
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only')
    assert.deepEqual([Date.parse(leaf.validFrom) / 1000, Date.parse(leaf.validTo) / 1000], [notBefore, notAfter])
    const appCa = server.certificate_chain[1]!
    assert.equal(client.certificate_chain[1], appCa)

    // A server that requires a client certificate under the app CA (and presents its own).
    const tls = createTlsServer({ key: server.key, cert: server.certificate_chain.join(''), ca: [appCa], requestCert: true, rejectUnauthorized: true }, (socket) =>
      socket.end(`hello ${socket.getPeerCertificate().subject.CN}`),
    )
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve))
    const port = (tls.address() as { port: number }).port
    const mutual = (presented: SdkTls) =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [appCa], key: presented.key, cert: presented.certificate_chain.join('') }, () => {
          let data = ''
          socket.on('data', (chunk) => (data += chunk))
          // A refused client may see its handshake finish (TLS 1.3) and then the server's alert: no greeting, no pass.
          socket.on('end', () => (data ? resolve(data) : reject(new Error('ended without an answer'))))
        })
        socket.on('error', reject)
        socket.on('close', () => reject(new Error('closed without an answer')))
      })
    try {
      assert.equal(await mutual(client), 'hello oracle-client')
      await assert.rejects(mutual(walletClient), 'a client certificate under another app\'s CA is refused')
      await assert.rejects(mutual(server), 'a serverAuth-only certificate is no client certificate')
    } finally {
      await new Promise<void>((resolve) => tls.close(() => resolve()))
    }
  })

  test('default: Sign answers verify off chain and in the example SignedDataVerifier; forged ones do not', async () => {
    const hash = await walletClient.deployContract({ abi: signedDataVerifierAbi, bytecode: signedDataVerifierBytecode, args: [registry.address, toHex0x(appIdForPod('oracle'))] })
    const verifierAddress = (await publicClient.waitForTransactionReceipt({ hash })).contractAddress!
    const digest = createHash('sha256').update(Buffer.from(SIGN_DATA, 'hex')).digest('hex')
    const [sign, edSign, preSign] = (await runSdk(socketPath('oracle'), calls.slice(4, 7))) as [SdkSign, SdkSign, SdkSign]
    const [walletSign] = (await runSdk(socketPath('wallet'), [calls[4]!])) as [SdkSign]
    const xPub = await registry.xPub()

    const offChain = (signed: SdkSign, algorithm: 'secp256k1' | 'ed25519', appId = appIdForPod('oracle')) =>
      verifyGetKeyChain({ appId, publicKey: hexToBytes(signed.public_key), signatureChain: signed.signature_chain.slice(1).map((s) => hexToBytes(s)), purpose: 'signing', algorithm, masterAddress: xPub })
    assert.equal(offChain(sign, 'secp256k1').ok, true)
    assert.equal(offChain(edSign, 'ed25519').ok, true)
    assert.equal(dstackVerify('ed25519', hexToBytes(SIGN_DATA), hexToBytes(edSign.signature), hexToBytes(edSign.public_key)), true)
    assert.equal(offChain(walletSign, 'secp256k1').ok, false, 'the wallet app\'s key is not the oracle app\'s')

    const onChain = async (data: string, prehashed: boolean, signed: SdkSign) => {
      const chain = offChain(signed, 'secp256k1', appIdForPod('wallet')).appPublicKey33 ?? offChain(signed, 'secp256k1').appPublicKey33!
      return publicClient.readContract({
        address: verifierAddress,
        abi: signedDataVerifierAbi,
        functionName: 'verify',
        args: [
          `0x${data}`,
          prehashed,
          `0x${signed.signature}`,
          {
            publicKey64: toHex0x(secp256k1.Point.fromBytes(hexToBytes(signed.public_key)).toBytes(false).subarray(1)),
            appPubkey33: toHex0x(chain),
            appSignature: `0x${signed.signature_chain[1]}`,
            kmsSignature: `0x${signed.signature_chain[2]}`,
          },
        ],
      })
    }
    assert.equal(await onChain(SIGN_DATA, false, sign), true)
    assert.equal(await onChain(digest, true, preSign), true)
    assert.equal(await onChain(Buffer.from('price=1').toString('hex'), false, sign), false, 'other data')
    assert.equal(await onChain(SIGN_DATA, false, walletSign), false, 'a key of another app')
    const gas = await publicClient.estimateContractGas({
      address: verifierAddress,
      abi: signedDataVerifierAbi,
      functionName: 'verify',
      args: [`0x${SIGN_DATA}`, false, `0x${sign.signature}`, { publicKey64: toHex0x(secp256k1.Point.fromBytes(hexToBytes(sign.public_key)).toBytes(false).subarray(1)), appPubkey33: toHex0x(offChain(sign, 'secp256k1').appPublicKey33!), appSignature: `0x${sign.signature_chain[1]}`, kmsSignature: `0x${sign.signature_chain[2]}` }],
    })
    assert.ok(gas < 100_000n, `SignedDataVerifier.verify costs ${gas} gas`)
  })

  test('default: emitEvent extends RTMR3 for the whole TD: the next quotes, replayRtmrs and Info follow, the measurement id moves', async () => {
    const probe = [{ op: 'getQuote', reportData: QUOTE_DATA }, { op: 'info' }]
    const [before] = (await runSdk(socketPath('oracle'), probe)) as [Record<string, unknown>]
    const ownBefore = measurementOf(await quoteProvider.getQuote(new Uint8Array(64).fill(7)))
    const [emitted, quote, info] = (await runSdk(socketPath('oracle'), [{ op: 'emitEvent', event: 'model-loaded', payload: 'c0ffee' }, ...probe])) as Record<string, unknown>[]
    assert.deepEqual(emitted, { result: null })
    const rtmrs = quote!.rtmrs as string[]
    assert.deepEqual(rtmrs, rtmrsOf(quote!.quote as string), 'replayRtmrs() still reproduces the quote')
    assert.notEqual(rtmrs[3], (before!.rtmrs as string[])[3], 'RTMR3 moved')
    assert.deepEqual(rtmrs.slice(0, 3), (before!.rtmrs as string[]).slice(0, 3))
    const last = (JSON.parse(quote!.event_log as string) as TdxEvent[]).at(-1)!
    assert.deepEqual({ event: last.event, payload: last.event_payload, imr: last.imr }, { event: `${bytesToHex(appIdForPod('oracle'))}:model-loaded`, payload: 'c0ffee', imr: 3 })
    assert.equal((info!.tcb_info as { rtmr3: string }).rtmr3, rtmrs[3])
    // Over HTTP (another listener of the same TD) the quote shows the same RTMR3.
    const [viaHttp] = (await runSdk(httpUrl, [probe[0]!])) as [Record<string, unknown>]
    assert.equal((viaHttp.rtmrs as string[])[3], rtmrs[3])
    // An event emitted over HTTP moves it again, for both listeners.
    // The HTTP listener names the caller by its address (127.0.0.1 is "oracle"), so the entry is the oracle app's.
    const [emittedHttp, quoteHttp] = (await runSdk(httpUrl, [{ op: 'emitEvent', event: 'weights-loaded', payload: '' }, probe[0]!])) as Record<string, unknown>[]
    assert.deepEqual(emittedHttp, { result: null })
    const rtmr3Http = (quoteHttp!.rtmrs as string[])[3]!
    const httpName = `${bytesToHex(appIdForPod('oracle'))}:weights-loaded`
    assert.equal(rtmr3Http, bytesToHex(extendRtmr(hexToBytes(rtmrs[3]!), runtimeEventDigest(httpName, new Uint8Array(0)))), 'RTMR3 extended once more, by exactly this event')
    assert.deepEqual(quoteHttp!.rtmrs, rtmrsOf(quoteHttp!.quote as string))
    assert.deepEqual((JSON.parse(quoteHttp!.event_log as string) as TdxEvent[]).slice(-2).map((e) => e.event), [last.event, httpName])
    const [quoteSocket] = (await runSdk(socketPath('oracle'), [probe[0]!])) as [Record<string, unknown>]
    assert.equal((quoteSocket.rtmrs as string[])[3], rtmr3Http)
    // The node's own quotes come from the same TD: their measurement id moved with it (docs/protocol.md#dstack-api),
    // and their RTMR3 is the TD's latest (both events in).
    const ownAfter = measurementOf(await quoteProvider.getQuote(new Uint8Array(64).fill(7)))
    assert.notEqual(ownAfter.measurementId, ownBefore.measurementId)
    assert.equal(ownAfter.measurements.rtMr3, `0x${rtmr3Http}`)
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
      const testClient = createTestClient({ mode: 'anvil', chain: foundry, transport: http(anvil.rpcUrl, RPC_OPTIONS) })
      // After the latest block too: on a loaded machine blocks mined since the report can be more than 10 s later.
      const latest = await publicClient.getBlock({ blockTag: 'latest' })
      await testClient.setNextBlockTimestamp({ timestamp: (latest.timestamp > report.timestamp ? latest.timestamp : report.timestamp) + 10n })
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
