// `npm run gas-report`: measures the registry on a fresh anvil (cancun) with real blob transactions and rewrites
// contracts/gas-report.md. Exits non-zero when a docs/protocol.md#registry-contract budget is exceeded. Keys are fixed, so the figures
// are reproducible run to run.
import { writeFileSync } from 'node:fs'
import { concatBytes } from '@noble/hashes/utils.js'
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
import { generationCalldata } from '../src/chain/generations.ts'
import { derivedPublicKey, getKeyResponse, issueAppKey } from '../src/keys/derive.ts'
import { eciesEncrypt, escrowShareAad, releaseShareAad } from '../src/keys/ecies.ts'
import { packCommitments, splitSecret } from '../src/keys/secretSharing.ts'
import { publicKey33, publicKey64, signDigest } from '../src/keys/signature.ts'
import {
  attestationDigest,
  generationAckDigest,
  generationProposalDigest,
  guardianEscrowDigest,
  onboardReceiptDigest,
  shareReleaseDigest,
} from '../src/keys/typedData.ts'
import { contractsRoot } from './forge.ts'

const reportPath = join(contractsRoot, 'gas-report.md')
const BATCH = 50

type Row = { operation: string; gas: bigint; budget?: bigint; note?: string }

function fixedKey(label: string): Hex {
  return keccak256(toHex(`keymanager gas-report ${label}`))
}

function fixedAccount(label: string): PrivateKeyAccount {
  return privateKeyToAccount(fixedKey(label))
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

  const verifyAttestationGas = await viewExecution('verifyAttestation', ['web', appData, attestation])
  const verifySignatureChainGas = await viewExecution('verifySignatureChain', chainArgs)

  // Generations (docs/protocol.md#generations): two more members, a planned rotation proposed by member 1 to all
  // three, acknowledged by member 2, committed; then guardians, an escrow and one released share.
  const chainDomain = { chainId: foundry.id, registry }
  const confirmAs = async (requestId: bigint) => {
    const digest = onboardReceiptDigest({ ...chainDomain, requestId, xPub: master.address })
    return send(host, call('confirmOnboard', [requestId, bytesToHex(signDigest(digest, hexToBytes(fixedKey(`newcomer ${requestId - 1n}`))))]))
  }
  const confirmLater = await confirmAs(2n)
  await confirmAs(3n)
  const members = [1n, 2n, 3n]
  const nodeKey = (memberId: bigint) => hexToBytes(fixedKey(`newcomer ${memberId - 1n}`))
  const startRotation = await send(owner, generationCalldata.startRotation(false, 3600n, 0n))
  const nextSecret = hexToBytes(keccak256(toHex('keymanager gas-report generation 2')))
  const nextPubkey64 = bytesToHex(publicKey64(nextSecret))
  const rotateText = 'rotate envelope'
  const [rotateBlob] = toBlobs({ data: toHex(rotateText) })
  const proposalDigest = generationProposalDigest({
    ...chainDomain,
    proposal: 1n,
    generation: 2n,
    masterPubkey64: nextPubkey64,
    recipientIds: members,
    proposalBlobHash: bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(rotateBlob!)))),
  })
  const propose = await send(
    host,
    generationCalldata.proposeGeneration(2n, 1n, nextPubkey64, members, bytesToHex(signDigest(proposalDigest, nodeKey(1n)))),
    rotateText,
  )
  const nextXPub = privateKeyToAccount(bytesToHex(nextSecret)).address
  const ackDigest = generationAckDigest({ ...chainDomain, proposal: 1n, generation: 2n, xPub: nextXPub })
  const acknowledge = await send(host, generationCalldata.acknowledgeGeneration(1n, 2n, bytesToHex(signDigest(ackDigest, nodeKey(2n)))))
  const commit = await send(host, generationCalldata.commitGeneration(1n))

  const guardianKeys = Array.from({ length: 5 }, (_, i) => hexToBytes(fixedKey(`guardian ${i}`)))
  const setGuardians = await send(owner, generationCalldata.setGuardians(bytesToHex(concatBytes(...guardianKeys.map(publicKey64))), 3))
  const { shares, commitments } = splitSecret(nextSecret, { threshold: 3, count: 5 })
  const encryptedShares = shares.map((share, i) =>
    bytesToHex(eciesEncrypt(publicKey33(guardianKeys[i]!), share.value, escrowShareAad({ ...chainDomain, generation: 2n, guardianSet: 1n, index: share.index }))),
  )
  const escrowArgs = { ...chainDomain, generation: 2n, guardianSet: 1n, commitments: packCommitments(commitments), encryptedShares }
  const escrow = await send(
    host,
    generationCalldata.publishEscrow(2n, 1n, bytesToHex(packCommitments(commitments)), encryptedShares, bytesToHex(signDigest(guardianEscrowDigest(escrowArgs), nextSecret))),
  )
  const enclave = hexToBytes(fixedKey('recovering enclave'))
  await send(host, call('requestOnboard', [bytesToHex(publicKey64(enclave)), await publicClient.getBlockNumber()]), 'register enclave')
  const enclaveRequest = BigInt(BATCH) + 2n
  const startRecovery = await send(owner, generationCalldata.startRecovery(enclaveRequest))
  const released = bytesToHex(
    eciesEncrypt(publicKey33(enclave), shares[0]!.value, releaseShareAad({ ...chainDomain, requestId: enclaveRequest, generation: 2n, index: 1 })),
  )
  const releaseSignature = signDigest(shareReleaseDigest({ ...chainDomain, requestId: enclaveRequest, generation: 2n, encryptedShare: released }), guardianKeys[0]!)
  const releaseShare = await send(host, generationCalldata.releaseShare(enclaveRequest, 2n, released, bytesToHex(releaseSignature)))
  const revokeNode = await send(owner, generationCalldata.revokeNode(3n))
  for (const share of shares) share.value.fill(0)

  const attestationBy = (secret: Uint8Array) =>
    bytesToHex(signDigest(attestationDigest({ ...chainDomain, hostname: 'web', appData }), secret))
  const nextIssued = issueAppKey(nextSecret, appId)
  const nextGot = getKeyResponse({ appKey: nextIssued.appKey, kmsSignature: nextIssued.kmsSignature, path: 'p', purpose: 'test-purpose' })
  const nextChainArgs = [
    bytesToHex(appId),
    bytesToHex(derivedPublicKey(nextGot.key, 'secp256k1')),
    bytesToHex(nextIssued.appPublicKey33),
    bytesToHex(nextGot.signatureChain[0]),
    bytesToHex(nextGot.signatureChain[1]),
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
    { operation: 'confirmOnboard, first member', gas: confirm.gasUsed },
    { operation: 'confirmOnboard, later member', gas: confirmLater.gasUsed },
    { operation: 'startRotation', gas: startRotation.gasUsed },
    { operation: 'proposeGeneration, 3 recipients (1 blob)', gas: propose.gasUsed },
    { operation: 'acknowledgeGeneration', gas: acknowledge.gasUsed },
    { operation: 'commitGeneration', gas: commit.gasUsed },
    { operation: 'setGuardians, 5 guardians', gas: setGuardians.gasUsed },
    { operation: 'publishEscrow, 3 of 5', gas: escrow.gasUsed },
    { operation: 'startRecovery', gas: startRecovery.gasUsed },
    { operation: 'releaseShare', gas: releaseShare.gasUsed },
    { operation: 'revokeNode (a member)', gas: revokeNode.gasUsed },
  ]
  const views: Row[] = [
    { operation: 'verifyAttestation (hostname "web"), generation 1 current', gas: verifyAttestationGas, budget: 10_000n },
    {
      operation: 'verifySignatureChain (purpose "test-purpose", chain from src/keys/derive.ts), generation 1 current',
      gas: verifySignatureChainGas,
      budget: 40_000n,
    },
    {
      operation: 'verifyAttestation, generation 2 current (after a rotation)',
      gas: await viewExecution('verifyAttestation', ['web', appData, attestationBy(nextSecret)]),
      budget: 10_000n,
    },
    {
      operation: 'verifySignatureChain, generation 2 current (after a rotation)',
      gas: await viewExecution('verifySignatureChain', nextChainArgs),
      budget: 40_000n,
    },
    {
      operation: 'verifyAttestation, generation 1 during its overlap',
      gas: await viewExecution('verifyAttestation', ['web', appData, attestationBy(masterSecret)]),
    },
    {
      operation: 'verifySignatureChain, generation 1 during its overlap',
      gas: await viewExecution('verifySignatureChain', chainArgs),
    },
  ]
  nextIssued.appKey.fill(0)
  nextGot.key.fill(0)
  nextSecret.fill(0)
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

const anvil = await startAnvil({ hardfork: 'cancun' })
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
