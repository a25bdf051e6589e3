// `npm run gas-report`: measures the registry on a fresh anvil (cancun) with real blob transactions and rewrites
// contracts/gas-report.md. Exits non-zero when a docs/protocol.md#registry-contract budget is exceeded. Keys are fixed, so the figures
// are reproducible run to run.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  bytesToHex,
  createPublicClient,
  createTestClient,
  createWalletClient,
  encodeFunctionData,
  hexToBytes,
  http,
  keccak256,
  parseEther,
  sliceHex,
  toBlobs,
  toHex,
  type Hex,
  type PrivateKeyAccount,
  type TransactionReceipt,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil } from '../src/devnet/anvil.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { blobToCommitment, commitmentToVersionedHash, getKzg } from '../src/chain/kzg.ts'
import { derivedPublicKey, getKeyResponse, issueAppKey } from '../src/keys/derive.ts'
import { contractsRoot } from './forge.ts'

const reportPath = join(contractsRoot, 'gas-report.md')
const BATCH = 50

type Row = { operation: string; gas: bigint; budget?: bigint; note?: string }

function fixedAccount(label: string): PrivateKeyAccount {
  return privateKeyToAccount(keccak256(toHex(`keymanager gas-report ${label}`)))
}

/** Cancun intrinsic calldata cost: 16 per non-zero byte, 4 per zero byte (no EIP-7623 floor before Prague). */
function calldataGas(data: Hex): bigint {
  let gas = 0n
  for (const byte of hexToBytes(data)) gas += byte === 0 ? 4n : 16n
  return gas
}

async function measure(rpcUrl: string): Promise<{ transactions: Row[]; views: Row[] }> {
  // 60 s: the first blob transaction makes anvil load KZG, which takes seconds on a busy machine.
  const transport = http(rpcUrl, { timeout: 60_000 })
  const publicClient = createPublicClient({ chain: foundry, transport, pollingInterval: 20 })
  const testClient = createTestClient({ mode: 'anvil', chain: foundry, transport })
  const owner = fixedAccount('owner')
  const host = fixedAccount('host')
  const masterSecret = hexToBytes(keccak256(toHex('keymanager gas-report master')))
  const master = privateKeyToAccount(bytesToHex(masterSecret))
  for (const account of [owner, host]) await testClient.setBalance({ address: account.address, value: parseEther('100') })

  const registry = await deployKeyManager({
    walletClient: createWalletClient({ account: owner, chain: foundry, transport }),
    publicClient,
    owner: owner.address,
    measurementDelay: 0n,
  })
  // A fresh anvil: the deployment is the only transaction of the latest block.
  const deployBlock = await publicClient.getBlock({ includeTransactions: true })
  const deployReceipt = await publicClient.getTransactionReceipt({ hash: deployBlock.transactions[0]!.hash })
  if (deployReceipt.contractAddress?.toLowerCase() !== registry.toLowerCase()) {
    throw new Error('gas-report: could not find the deployment receipt')
  }

  async function send(from: PrivateKeyAccount, data: Hex, blobText?: string): Promise<TransactionReceipt> {
    const wallet = createWalletClient({ account: from, chain: foundry, transport })
    const hash = blobText
      ? await wallet.sendTransaction({
          to: registry,
          data,
          blobs: toBlobs({ data: toHex(blobText) }),
          kzg: getKzg(),
          maxFeePerBlobGas: (await publicClient.getBlobBaseFee()) * 2n,
        })
      : await wallet.sendTransaction({ to: registry, data })
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new Error(`gas-report: transaction ${hash} reverted`)
    return receipt
  }
  const call = (functionName: string, args: readonly unknown[]) =>
    encodeFunctionData({ abi: keyManagerAbi, functionName, args } as never)

  const field = (i: number) => toHex(i, { size: 48 }).slice(2)
  const tdxRaw: Hex = `0x01${[1, 2, 3, 4, 5, 6].map(field).join('')}${'00000000000000e7'}${'0000001000000000'}`
  const addMeasurement = await send(owner, call('addMeasurement', [keccak256(tdxRaw), tdxRaw]))
  const setMinTcbEvaluationDataNumber = await send(owner, call('setMinTcbEvaluationDataNumber', [17]))
  const setBootstrapper = await send(owner, call('setBootstrapper', [host.address]))
  const markFresh = await send(host, call('markFresh', [keccak256(toHex('gas-report mark'))]))
  const markFreshAgain = await send(host, call('markFresh', [keccak256(toHex('gas-report mark'))]))
  const bootstrap = await send(owner, call('bootstrap', [sliceHex(master.publicKey, 1)]), 'bootstrap envelope')

  const requestReceipts: TransactionReceipt[] = []
  for (let i = 0; i <= BATCH; i++) {
    const newcomer = fixedAccount(`newcomer ${i}`)
    const refBlockNumber = await publicClient.getBlockNumber()
    requestReceipts.push(
      await send(host, call('requestOnboard', [sliceHex(newcomer.publicKey, 1), refBlockNumber]), `register ${i}`),
    )
  }

  const domain = { name: 'KeyManager', version: '1', chainId: foundry.id, verifyingContract: registry } as const
  async function fulfill(requestIds: bigint[]): Promise<TransactionReceipt> {
    const blobText = `onboard ${requestIds.join(',')}`
    const [blob] = toBlobs({ data: toHex(blobText) })
    const responseBlobHash = bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob!))))
    const signature = await master.signTypedData({
      domain,
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
    return send(host, call('fulfillOnboard', [requestIds, signature]), blobText)
  }
  const fulfillOne = await fulfill([1n])
  const fulfillBatch = await fulfill(Array.from({ length: BATCH }, (_, i) => BigInt(i + 2)))

  const receiptSignature = await fixedAccount('newcomer 0').signTypedData({
    domain,
    types: { OnboardReceipt: [{ name: 'requestId', type: 'uint256' }, { name: 'xPub', type: 'address' }] },
    primaryType: 'OnboardReceipt',
    message: { requestId: 1n, xPub: master.address },
  })
  const confirm = await send(host, call('confirmOnboard', [1n, receiptSignature]))

  // Views: a transaction that calls the view; execution = gasUsed − 21000 − calldata (the registry is warm as `to`,
  // its storage cold). The contract answers false instead of reverting, so each run is checked to be `true` first.
  async function viewExecution(functionName: string, args: readonly unknown[]): Promise<bigint> {
    const data = call(functionName, args)
    const result = await publicClient.readContract({ address: registry, abi: keyManagerAbi, functionName, args } as never)
    if (result !== true) throw new Error(`gas-report: ${functionName} did not verify`)
    const receipt = await send(host, data)
    return receipt.gasUsed - 21_000n - calldataGas(data)
  }
  const appData = keccak256(toHex('app data'))
  const attestation = await master.signTypedData({
    domain,
    types: { Attestation: [{ name: 'hostname', type: 'string' }, { name: 'appData', type: 'bytes32' }] },
    primaryType: 'Attestation',
    message: { hostname: 'web', appData },
  })
  const appId = hexToBytes(keccak256(toHex('gas-report app'))).slice(0, 20)
  const issued = issueAppKey(masterSecret, appId)
  const got = getKeyResponse({ appKey: issued.appKey, kmsSignature: issued.kmsSignature, path: 'p', purpose: 'test-purpose' })
  const chainArgs = [
    bytesToHex(appId),
    bytesToHex(derivedPublicKey(got.key, 'secp256k1')),
    bytesToHex(issued.appPublicKey33),
    bytesToHex(got.signatureChain[0]),
    bytesToHex(got.signatureChain[1]),
    'test-purpose',
  ]

  const transactions: Row[] = [
    { operation: 'deploy `KeyManager(owner, 0)`', gas: deployReceipt.gasUsed },
    { operation: 'addMeasurement (TDX, 305-byte preimage)', gas: addMeasurement.gasUsed },
    { operation: 'setMinTcbEvaluationDataNumber', gas: setMinTcbEvaluationDataNumber.gasUsed },
    { operation: 'setBootstrapper', gas: setBootstrapper.gasUsed },
    { operation: 'markFresh, new mark', gas: markFresh.gasUsed },
    { operation: 'markFresh, same mark again (no-op)', gas: markFreshAgain.gasUsed },
    { operation: 'bootstrap (1 blob)', gas: bootstrap.gasUsed },
    { operation: 'requestOnboard, first request (1 blob)', gas: requestReceipts[0]!.gasUsed, budget: 120_000n },
    { operation: 'requestOnboard, later request (1 blob)', gas: requestReceipts[1]!.gasUsed, budget: 120_000n },
    { operation: 'fulfillOnboard ×1 (1 blob)', gas: fulfillOne.gasUsed, budget: 80_000n },
    { operation: `fulfillOnboard ×${BATCH} (1 blob), whole transaction`, gas: fulfillBatch.gasUsed },
    {
      operation: `fulfillOnboard ×${BATCH}, per request`,
      gas: fulfillBatch.gasUsed / BigInt(BATCH),
      budget: 15_000n,
    },
    { operation: 'confirmOnboard', gas: confirm.gasUsed },
  ]
  const views: Row[] = [
    { operation: 'verifyAttestation (hostname "web")', gas: await viewExecution('verifyAttestation', ['web', appData, attestation]), budget: 10_000n },
    {
      operation: 'verifySignatureChain (purpose "test-purpose", chain from src/keys/derive.ts)',
      gas: await viewExecution('verifySignatureChain', chainArgs),
      budget: 40_000n,
    },
  ]
  issued.appKey.fill(0)
  got.key.fill(0)
  masterSecret.fill(0)
  return { transactions, views }
}

function table(rows: Row[]): string[] {
  const lines = ['| operation | gas | budget |', '|---|---:|---:|']
  for (const row of rows) {
    const budget = row.budget === undefined ? '' : `≤ ${row.budget} ${row.gas <= row.budget ? '✓' : '✗ over'}`
    lines.push(`| ${row.operation} | ${row.gas} | ${budget} |`)
  }
  return lines
}

function render(figures: { transactions: Row[]; views: Row[] }): string {
  return [
    '# KeyManager gas report',
    '',
    '<!-- generated by scripts/gas-report.ts, do not edit; regenerate with `npm run gas-report` -->',
    '',
    'Measured on a fresh anvil (`--hardfork cancun`, automine) through viem, with real EIP-4844 blob transactions',
    '(viem `toBlobs` + c-kzg), the bytecode of `src/chain/keyManagerArtifact.ts`, and fixed keys so that runs agree.',
    '',
    '## Transactions: receipt `gasUsed`',
    '',
    'Includes the 21000 base cost and calldata; excludes blob gas, which is priced apart',
    '(131072 blob gas per blob at the blob base fee).',
    '',
    ...table(figures.transactions),
    '',
    '## Views: execution gas',
    '',
    'Each view is sent once as a transaction to the registry; execution gas = receipt `gasUsed` − 21000 − calldata',
    'gas (16 per non-zero byte, 4 per zero byte; cancun has no EIP-7623 floor). The registry is warm as the',
    "transaction's `to`, its storage slots cold. A contract calling the view pays about 2600 more for the cold account",
    'access, plus its own ABI encoding. The forge test `contracts/test/Gas.t.sol` asserts the same budgets with',
    '`gasleft()` deltas around a raw call (storage cooled with `vm.cool`).',
    '',
    ...table(figures.views),
    '',
  ].join('\n')
}

const anvil = await startAnvil()
let figures
try {
  figures = await measure(anvil.rpcUrl)
} finally {
  await anvil.stop()
}
writeFileSync(reportPath, render(figures))
console.log(render(figures))
const over = [...figures.transactions, ...figures.views].filter((row) => row.budget !== undefined && row.gas > row.budget)
if (over.length > 0) {
  console.error(`gas-report: over budget: ${over.map((row) => row.operation).join('; ')}`)
  process.exitCode = 1
}
