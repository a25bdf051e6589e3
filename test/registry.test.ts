// The KeyManager registry on a real anvil (osaka) with real blob transactions: deployment, measurements, bootstrap,
// EIP-712 attestations, the request → fulfill → confirm round trip, and the receipt-gas budgets of docs/protocol.md#registry-contract.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import {
  bytesToHex,
  concatHex,
  createPublicClient,
  createTestClient,
  createWalletClient,
  encodeAbiParameters,
  encodeFunctionData,
  encodePacked,
  hexToBigInt,
  hexToBytes,
  http,
  keccak256,
  numberToHex,
  parseEther,
  parseEventLogs,
  sliceHex,
  toBlobs,
  toHex,
  type Address,
  type Hex,
  type PrivateKeyAccount,
  type TransactionReceipt,
} from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { deployKeyManager, DeployKeyManagerError } from '../src/chain/deploy.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../src/chain/kzg.ts'
import { derivedPublicKey, getKeyResponse, issueAppKey } from '../src/keys/derive.ts'
import { publicKey33, uncompressPublicKey } from '../src/keys/signature.ts'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const BUDGET = { requestOnboard: 120_000n, fulfillOne: 80_000n, fulfillPerRequestOfFifty: 15_000n }

let anvil: Anvil
// anvil mines each transaction at once: poll for receipts often rather than viem's default 4 s. The 60 s timeout:
// the first blob transaction makes anvil load KZG, which takes longer than viem's default 10 s on a busy machine.
const transport = () => http(anvil.rpcUrl, { timeout: 60_000 })
const publicClient = () => createPublicClient({ chain: foundry, transport: transport(), pollingInterval: 20 })

before(async () => {
  anvil = await startAnvil()
})
after(async () => {
  await anvil?.stop()
})

/** A fresh funded account (anvil_setBalance), so no key is shared between tests. */
async function fundedAccount(): Promise<PrivateKeyAccount> {
  const account = privateKeyToAccount(generatePrivateKey())
  await createTestClient({ mode: 'anvil', chain: foundry, transport: transport() }).setBalance({
    address: account.address,
    value: parseEther('100'),
  })
  return account
}

function walletFor(account: PrivateKeyAccount) {
  return createWalletClient({ account, chain: foundry, transport: transport() })
}

function pubkey64(account: PrivateKeyAccount): Hex {
  return sliceHex(account.publicKey, 1) // drop the 0x04 prefix
}

function blobFor(text: string): Hex {
  const blobs = toBlobs({ data: toHex(text) })
  assert.equal(blobs.length, 1)
  return blobs[0]!
}

function versionedHashOf(blob: Hex): Hex {
  return bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob))))
}

type Registry = { address: Address; owner: PrivateKeyAccount }

async function deployRegistry(measurementDelay = 0n): Promise<Registry> {
  const owner = await fundedAccount()
  const address = await deployKeyManager({
    walletClient: walletFor(owner),
    publicClient: publicClient(),
    owner: owner.address,
    measurementDelay,
  })
  return { address, owner }
}

/** Sends `data` to the registry with `blob` as blob 0 and returns the mined receipt. */
async function sendWithBlob(registry: Registry, from: PrivateKeyAccount, data: Hex, blob: Hex) {
  const client = publicClient()
  const { hash, receipt } = await sendBlobTransaction({ walletClient: walletFor(from), publicClient: client, to: registry.address, data, blobs: [blob] })
  assert.equal(receipt.status, 'success', `blob transaction ${hash} reverted`)
  const transaction = await client.getTransaction({ hash })
  return { receipt, blobHash: transaction.blobVersionedHashes?.[0] }
}

async function send(registry: Registry, from: PrivateKeyAccount, data: Hex): Promise<TransactionReceipt> {
  const client = publicClient()
  const hash = await walletFor(from).sendTransaction({ to: registry.address, data })
  const receipt = await client.waitForTransactionReceipt({ hash })
  assert.equal(receipt.status, 'success', `transaction ${hash} reverted`)
  return receipt
}

function read<T>(registry: Registry, functionName: string, args: readonly unknown[] = []): Promise<T> {
  return publicClient().readContract({ address: registry.address, abi: keyManagerAbi, functionName, args } as never) as Promise<T>
}

function events(receipt: TransactionReceipt, eventName: string) {
  return parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName } as never) as unknown as {
    args: Record<string, unknown>
    address: Address
  }[]
}

async function bootstrapWithPubkey(registry: Registry, masterPubkey64: Hex) {
  const data = encodeFunctionData({ abi: keyManagerAbi, functionName: 'bootstrap', args: [masterPubkey64] })
  return sendWithBlob(registry, registry.owner, data, blobFor('bootstrap envelope'))
}

async function bootstrap(registry: Registry, masterKey: Hex = generatePrivateKey()) {
  const master = privateKeyToAccount(masterKey)
  return { master, masterKey, ...(await bootstrapWithPubkey(registry, pubkey64(master))) }
}

function domain(registry: Registry, overrides: { chainId?: number; verifyingContract?: Address } = {}) {
  return {
    name: 'KeyManager',
    version: '1',
    chainId: overrides.chainId ?? foundry.id,
    verifyingContract: overrides.verifyingContract ?? registry.address,
  } as const
}

function signAttestation(
  signer: PrivateKeyAccount,
  registry: Registry,
  message: { hostname: string; appData: Hex },
  overrides: { chainId?: number; verifyingContract?: Address } = {},
): Promise<Hex> {
  return signer.signTypedData({
    domain: domain(registry, overrides),
    types: { Attestation: [{ name: 'hostname', type: 'string' }, { name: 'appData', type: 'bytes32' }] },
    primaryType: 'Attestation',
    message,
  })
}

function signResponse(master: PrivateKeyAccount, registry: Registry, requestIds: bigint[], responseBlobHash: Hex) {
  return master.signTypedData({
    domain: domain(registry),
    types: {
      OnboardResponse: [
        { name: 'requestIds', type: 'uint256[]' },
        { name: 'responseBlobHash', type: 'bytes32' },
        { name: 'generation', type: 'uint64' },
      ],
    },
    primaryType: 'OnboardResponse',
    message: { requestIds, responseBlobHash, generation: 1n },
  })
}

function signReceipt(newcomer: PrivateKeyAccount, registry: Registry, requestId: bigint, xPub: Address) {
  return newcomer.signTypedData({
    domain: domain(registry),
    types: { OnboardReceipt: [{ name: 'requestId', type: 'uint256' }, { name: 'xPub', type: 'address' }] },
    primaryType: 'OnboardReceipt',
    message: { requestId, xPub },
  })
}

/** The malleable twin (n - s, other v) of a low-s 65-byte signature. */
function highS(signature: Hex): Hex {
  const s = hexToBigInt(sliceHex(signature, 32, 64))
  const v = hexToBigInt(sliceHex(signature, 64, 65))
  return concatHex([sliceHex(signature, 0, 32), numberToHex(N - s, { size: 32 }), numberToHex(v === 27n ? 28 : 27, { size: 1 })])
}

async function requestOnboard(registry: Registry, newcomer: PrivateKeyAccount, host: PrivateKeyAccount) {
  const refBlockNumber = await publicClient().getBlockNumber()
  const data = encodeFunctionData({
    abi: keyManagerAbi,
    functionName: 'requestOnboard',
    args: [pubkey64(newcomer), refBlockNumber],
  })
  const sent = await sendWithBlob(registry, host, data, blobFor(`register ${newcomer.address}`))
  const [requested] = events(sent.receipt, 'OnboardRequested')
  assert.ok(requested, 'OnboardRequested emitted')
  return { ...sent, refBlockNumber, requestId: requested.args.requestId as bigint, args: requested.args }
}

async function fulfill(registry: Registry, master: PrivateKeyAccount, host: PrivateKeyAccount, requestIds: bigint[]) {
  const blob = blobFor(`onboard ${requestIds.join(',')}`)
  const signature = await signResponse(master, registry, requestIds, versionedHashOf(blob))
  const data = encodeFunctionData({ abi: keyManagerAbi, functionName: 'fulfillOnboard', args: [requestIds, signature] })
  return sendWithBlob(registry, host, data, blob)
}

describe('deployKeyManager', () => {
  test('default', async () => {
    const registry = await deployRegistry(3600n)
    assert.equal(await read(registry, 'owner'), registry.owner.address)
    assert.equal(await read(registry, 'measurementDelay'), 3600n)
    assert.equal(await read(registry, 'generation'), 0n)
    assert.equal(await read(registry, 'requestTtl'), 7200n)
    assert.deepEqual(await read(registry, 'tcbPolicy'), [1, 30n * 86400n, false])
  })

  test('error: bad owner or delay', async () => {
    const owner = await fundedAccount()
    const base = { walletClient: walletFor(owner), publicClient: publicClient() }
    await assert.rejects(deployKeyManager({ ...base, owner: '0x1234' as Address, measurementDelay: 0n }), {
      name: 'TypeError',
      message: 'owner must be a 20-byte hex address',
    })
    await assert.rejects(
      deployKeyManager({ ...base, owner: '0x0000000000000000000000000000000000000000', measurementDelay: 0n }),
      { name: 'RangeError', message: 'owner must not be the zero address' },
    )
    await assert.rejects(deployKeyManager({ ...base, owner: owner.address, measurementDelay: -1n }), {
      name: 'RangeError',
      message: 'measurementDelay must be between 0 and 31536000 seconds (365 days)',
    })
    await assert.rejects(deployKeyManager({ ...base, owner: owner.address, measurementDelay: 365 * 86400 + 1 }), {
      name: 'RangeError',
    })
    await assert.rejects(deployKeyManager({ ...base, owner: owner.address, measurementDelay: 1.5 }), {
      name: 'TypeError',
      message: 'measurementDelay must be an integer number of seconds',
    })
  })

  test('error: the deploying account cannot pay', async () => {
    const broke = privateKeyToAccount(generatePrivateKey())
    await assert.rejects(
      deployKeyManager({
        walletClient: walletFor(broke),
        publicClient: publicClient(),
        owner: broke.address,
        measurementDelay: 0n,
      }),
      (error: unknown) => {
        assert.ok(error instanceof DeployKeyManagerError)
        assert.match(error.message, /^KeyManager deployment was not sent: /)
        assert.equal(error.code, 'upstream_failed')
        return true
      },
    )
  })
})

describe('registry', () => {
  test('addMeasurement: a TDX measurement is allowed at once with delay 0', async () => {
    const registry = await deployRegistry()
    // docs/protocol.md#measurements-and-tcb-policy: uint8(1) ‖ MRTD ‖ RTMR0..3 ‖ MRCONFIGID (48 bytes each) ‖ XFAM ‖ TDATTRIBUTES (8 bytes each)
    const field = (i: number) => toHex(i, { size: 48 })
    const raw = encodePacked(
      ['uint8', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes', 'bytes8', 'bytes8'],
      [1, field(1), field(2), field(3), field(4), field(5), field(6), '0x00000000000000e7', '0x0000001000000000'],
    )
    assert.equal(hexToBytes(raw).length, 305)
    const id = keccak256(raw)
    const receipt = await send(
      registry,
      registry.owner,
      encodeFunctionData({ abi: keyManagerAbi, functionName: 'addMeasurement', args: [id, raw] }),
    )
    const [added] = events(receipt, 'MeasurementAdded')
    assert.equal(added?.args.id, id)
    assert.equal(added?.args.raw, raw)
    assert.equal(await read(registry, 'isMeasurementAllowed', [id]), true)
    assert.equal(await read(registry, 'isMeasurementAllowed', [keccak256('0x01')]), false)
  })

  test('bootstrap: stores the master key and the blob hash, emits Bootstrapped', async () => {
    const registry = await deployRegistry()
    const { master, masterKey, receipt, blobHash } = await bootstrap(registry)
    assert.match(blobHash ?? '', /^0x01[0-9a-f]{62}$/)
    const [bootstrapped] = events(receipt, 'Bootstrapped')
    assert.deepEqual(bootstrapped?.args, {
      xPub: master.address,
      masterPubkey: pubkey64(master),
      quoteBlobHash: blobHash,
      generation: 1n,
    })
    assert.equal(await read(registry, 'xPub'), master.address)
    assert.equal(await read(registry, 'generation'), 1n)
    assert.equal(await read(registry, 'bootstrapQuoteBlobHash'), blobHash)
    assert.equal(await read(registry, 'masterPubkey'), bytesToHex(publicKey33(hexToBytes(masterKey))))
  })

  test('bootstrapper: an account the owner names sends the bootstrap blob transaction; others cannot', async () => {
    const registry = await deployRegistry()
    const client = createRegistryClient({ publicClient: publicClient(), address: registry.address })
    const bootstrapper = await fundedAccount()
    const master = privateKeyToAccount(generatePrivateKey())
    const data = client.calldata.bootstrap(pubkey64(master))
    const stranger = await fundedAccount()
    await assert.rejects(
      sendWithBlob(registry, stranger, data, blobFor('bootstrap envelope')),
      /KeyManagerUnauthorizedAccount|reverted/,
    )
    const named = await send(registry, registry.owner, client.calldata.setBootstrapper(bootstrapper.address))
    assert.deepEqual(events(named, 'BootstrapperChanged')[0]?.args, {
      previousBootstrapper: '0x0000000000000000000000000000000000000000',
      newBootstrapper: bootstrapper.address,
    })
    assert.equal(await client.bootstrapper(), bootstrapper.address)
    await sendWithBlob(registry, bootstrapper, data, blobFor('bootstrap envelope'))
    assert.equal(await client.xPub(), master.address)
  })

  test('markFresh and the minimum TCB evaluation data number through the registry client', async () => {
    const registry = await deployRegistry()
    const client = createRegistryClient({ publicClient: publicClient(), address: registry.address })
    const mark = keccak256(toHex('a decision'))
    assert.equal(await client.freshnessMarkedAt(mark), 0n)
    const host = await fundedAccount()
    const first = await send(registry, host, client.calldata.markFresh(mark))
    assert.deepEqual(events(first, 'FreshnessMarked')[0]?.args, { mark, sender: host.address })
    assert.equal(await client.freshnessMarkedAt(mark), first.blockNumber)
    const again = await send(registry, host, client.calldata.markFresh(mark)) // a re-broadcast succeeds
    assert.equal(events(again, 'FreshnessMarked').length, 0)
    assert.equal(await client.freshnessMarkedAt(mark), first.blockNumber)

    assert.equal(await client.minTcbEvaluationDataNumber(), 0)
    await send(registry, registry.owner, client.calldata.setMinTcbEvaluationDataNumber(17))
    assert.equal(await client.minTcbEvaluationDataNumber(), 17)
    assert.deepEqual(await client.tcbPolicy(), { acceptedStatuses: 1, maxCollateralAge: 30n * 86400n, fmspcAllowlistOn: false, minTcbEvaluationDataNumber: 17 })
  })

  test('verifyAttestation: true for the master key over this registry and chain, false otherwise', async () => {
    const registry = await deployRegistry()
    const master = privateKeyToAccount(generatePrivateKey())
    const message = { hostname: 'web', appData: keccak256(toHex('app data')) }
    const verify = (hostname: string, appData: Hex, signature: Hex) =>
      read<boolean>(registry, 'verifyAttestation', [hostname, appData, signature])

    const early = await signAttestation(master, registry, message)
    assert.equal(await verify(message.hostname, message.appData, early), false, 'before bootstrap')

    const { master: xPubAccount } = await bootstrap(registry)
    const signature = await signAttestation(xPubAccount, registry, message)
    assert.equal(await verify(message.hostname, message.appData, signature), true)
    assert.equal(await verify('web2', message.appData, signature), false, 'other hostname')
    assert.equal(await verify(message.hostname, keccak256('0x00'), signature), false, 'other appData')
    const otherChain = await signAttestation(xPubAccount, registry, message, { chainId: 1 })
    assert.equal(await verify(message.hostname, message.appData, otherChain), false, 'other chain id')
    const otherContract = await signAttestation(xPubAccount, registry, message, {
      verifyingContract: registry.owner.address,
    })
    assert.equal(await verify(message.hostname, message.appData, otherContract), false, 'other verifying contract')
    assert.equal(await verify(message.hostname, message.appData, sliceHex(signature, 0, 64)), false, '64 bytes')
    assert.equal(await verify(message.hostname, message.appData, concatHex([signature, '0x00'])), false, '66 bytes')
    assert.equal(await verify(message.hostname, message.appData, highS(signature)), false, 'high s')
    const otherSigner = await signAttestation(privateKeyToAccount(generatePrivateKey()), registry, message)
    assert.equal(await verify(message.hostname, message.appData, otherSigner), false, 'other signer')
    assert.equal(await verify(message.hostname, message.appData, early), false, 'a key that is not xPub')
  })

  test('verifySignatureChain: a chain made by src/keys verifies against xPub', async () => {
    const registry = await deployRegistry()
    const { masterKey } = await bootstrap(registry)
    const appId = hexToBytes(keccak256(toHex('app'))).slice(0, 20)
    const issued = issueAppKey(hexToBytes(masterKey), appId)
    const got = getKeyResponse({ appKey: issued.appKey, kmsSignature: issued.kmsSignature, path: 'a/b', purpose: 'signing' })
    const derived = bytesToHex(derivedPublicKey(got.key, 'secp256k1'))
    const verify = (purpose: string, appSignature: Hex) =>
      read<boolean>(registry, 'verifySignatureChain', [
        bytesToHex(appId),
        derived,
        bytesToHex(issued.appPublicKey33),
        appSignature,
        bytesToHex(got.signatureChain[1]),
        purpose,
      ])
    assert.equal(await verify('signing', bytesToHex(got.signatureChain[0])), true)
    assert.equal(await verify('other', bytesToHex(got.signatureChain[0])), false, 'other purpose')
    assert.equal(await verify('signing', highS(bytesToHex(got.signatureChain[0]))), false, 'high s')
  })

  test('verifySignatureChain: the dstack simulator vector verifies once rooted at its KMS key', async () => {
    const v = JSON.parse(readFileSync(new URL('./vectors/dstack-simulator.json', import.meta.url), 'utf8')) as {
      app_id: string
      app_pub_compressed: string
      kms_signature: string
      kms_root_pub_compressed: string
      getKey: { purpose: string; derived_pub_compressed: string; signature_chain_0: string }[]
    }
    const registry = await deployRegistry()
    const args = v.getKey.map((entry) => [
      `0x${v.app_id}`,
      `0x${entry.derived_pub_compressed}`,
      `0x${v.app_pub_compressed}`,
      `0x${entry.signature_chain_0}`,
      `0x${v.kms_signature}`,
      entry.purpose,
    ])
    assert.equal(await read(registry, 'verifySignatureChain', args[0]!), false, 'before bootstrap')
    await bootstrapWithPubkey(registry, bytesToHex(uncompressPublicKey(hexToBytes(`0x${v.kms_root_pub_compressed}`))))
    for (const entry of args) assert.equal(await read(registry, 'verifySignatureChain', entry), true, String(entry[5]))
  })

  test('onboarding: request, fulfill, confirm with real blobs', async () => {
    const registry = await deployRegistry()
    const host = await fundedAccount()
    const { master } = await bootstrap(registry)
    const newcomer = privateKeyToAccount(generatePrivateKey())

    const requested = await requestOnboard(registry, newcomer, host)
    const refBlock = await publicClient().getBlock({ blockNumber: requested.refBlockNumber })
    assert.deepEqual(requested.args, {
      requestId: 1n,
      requester: newcomer.address,
      pubkey64: pubkey64(newcomer),
      quoteBlobHash: requested.blobHash,
      refBlockNumber: requested.refBlockNumber,
      refBlockHash: refBlock.hash,
    })
    const commitment = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint64' }, { type: 'bytes32' }],
        [keccak256(pubkey64(newcomer)), requested.blobHash!, requested.refBlockNumber, refBlock.hash],
      ),
    )
    const expiresAt = requested.receipt.blockNumber + 7200n
    assert.deepEqual(await read(registry, 'getRequest', [1n]), [newcomer.address, expiresAt, 1, commitment])
    assert.equal(await read(registry, 'requestCount'), 1n)

    const second = await requestOnboard(registry, privateKeyToAccount(generatePrivateKey()), host)
    assert.equal(second.requestId, 2n)
    const fulfilled = await fulfill(registry, master, host, [2n, 1n])
    const onboarded = events(fulfilled.receipt, 'Onboarded').map((e) => e.args)
    assert.deepEqual(onboarded, [
      { requestId: 2n, responseBlobHash: fulfilled.blobHash, index: 0n },
      { requestId: 1n, responseBlobHash: fulfilled.blobHash, index: 1n },
    ])
    assert.equal(((await read(registry, 'getRequest', [1n])) as unknown[])[2], 2)

    const receiptSignature = await signReceipt(newcomer, registry, 1n, master.address)
    const confirmed = await send(
      registry,
      host,
      encodeFunctionData({ abi: keyManagerAbi, functionName: 'confirmOnboard', args: [1n, receiptSignature] }),
    )
    assert.deepEqual(events(confirmed, 'OnboardConfirmed')[0]?.args, { requestId: 1n })
    assert.deepEqual(await read(registry, 'getRequest', [1n]), [newcomer.address, expiresAt, 3, commitment])
  })

  test('gas: requestOnboard, fulfillOnboard x1 and x50 within the docs/protocol.md#registry-contract budgets', async () => {
    const registry = await deployRegistry()
    const host = await fundedAccount()
    const { master } = await bootstrap(registry)

    const ids: bigint[] = []
    let requestGas = 0n
    for (let i = 0; i < 51; i++) {
      const { requestId, receipt } = await requestOnboard(registry, privateKeyToAccount(generatePrivateKey()), host)
      ids.push(requestId)
      requestGas = receipt.gasUsed > requestGas ? receipt.gasUsed : requestGas
    }
    assert.ok(requestGas <= BUDGET.requestOnboard, `requestOnboard used ${requestGas} gas`)

    const one = await fulfill(registry, master, host, ids.slice(0, 1))
    assert.ok(one.receipt.gasUsed <= BUDGET.fulfillOne, `fulfillOnboard x1 used ${one.receipt.gasUsed} gas`)

    const fifty = await fulfill(registry, master, host, ids.slice(1))
    assert.equal(events(fifty.receipt, 'Onboarded').length, 50)
    const perRequest = fifty.receipt.gasUsed / 50n
    assert.ok(perRequest <= BUDGET.fulfillPerRequestOfFifty, `fulfillOnboard x50 used ${perRequest} gas per request`)
  })
})

describe('scripts/deploy.ts', () => {
  function runDeploy(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/deploy.ts'], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      child.once('error', reject)
      child.once('exit', (code) => resolve({ code, stdout, stderr }))
    })
  }

  test('default: deploys with the owner key and prints the address', async () => {
    const key = generatePrivateKey()
    const account = privateKeyToAccount(key)
    await createTestClient({ mode: 'anvil', chain: foundry, transport: transport() }).setBalance({
      address: account.address,
      value: parseEther('1'),
    })
    const { code, stdout, stderr } = await runDeploy({ RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: key, MEASUREMENT_DELAY: '60' })
    assert.equal(stderr, '')
    assert.equal(code, 0)
    const address = stdout.trim() as Address
    assert.match(address, /^0x[0-9a-fA-F]{40}$/)
    const registry = { address, owner: account }
    assert.equal(await read(registry, 'owner'), account.address)
    assert.equal(await read(registry, 'measurementDelay'), 60n)
  })

  test('error: bad settings give one line and exit 1, never the key', async () => {
    const key = generatePrivateKey()
    const cases: [Record<string, string>, string][] = [
      [{ OWNER_PRIVATE_KEY: key }, 'deploy: an RPC URL is needed: --rpc URL or RPC_URL'],
      [{ RPC_URL: 'not a url', OWNER_PRIVATE_KEY: key }, 'deploy: the RPC URL is not a valid URL'],
      [{ RPC_URL: 'ftp://127.0.0.1', OWNER_PRIVATE_KEY: key }, 'deploy: the RPC URL must be http(s)'],
      [{ RPC_URL: anvil.rpcUrl }, 'deploy: an owner key is needed: --owner-key-file FILE or OWNER_PRIVATE_KEY'],
      [
        { RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: key.slice(0, -1) },
        'deploy: the owner key must be 0x followed by 64 hex digits',
      ],
      [
        { RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: `0x${'0'.repeat(64)}` },
        'deploy: the owner key is not a valid secp256k1 private key',
      ],
      [
        { RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: key, MEASUREMENT_DELAY: '-5' },
        'deploy: the measurement delay must be a whole number of seconds from 0 to 31536000',
      ],
      [
        { RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: key, MEASUREMENT_DELAY: '31536001' },
        'deploy: the measurement delay must be a whole number of seconds from 0 to 31536000',
      ],
      [{ RPC_URL: 'http://127.0.0.1:1', OWNER_PRIVATE_KEY: key }, 'deploy: the RPC URL did not answer eth_chainId'],
    ]
    const results = await Promise.all(cases.map(([env]) => runDeploy(env)))
    for (const [i, { code, stdout, stderr }] of results.entries()) {
      const expected = cases[i]![1]
      assert.equal(code, 1, expected)
      assert.equal(stdout, '', expected)
      assert.equal(stderr, `${expected}\n`)
      assert.ok(!stderr.includes(key.slice(2, 20)), 'key not echoed')
    }
    // An unfunded owner: the node refuses, the message says so in one line without the key.
    const { code, stderr } = await runDeploy({ RPC_URL: anvil.rpcUrl, OWNER_PRIVATE_KEY: key })
    assert.equal(code, 1)
    assert.match(stderr, /^deploy: KeyManager deployment was not sent: .+\n$/)
    assert.ok(!stderr.includes(key.slice(2, 20)), 'key not echoed')
  })
})
