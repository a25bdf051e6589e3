// The request id a node takes from its own requestOnboard receipt (docs/protocol.md#limits): only an OnboardRequested
// event this registry emitted for this requester counts; a look-alike event from another contract (a call the tx also
// made) or for another requester is ignored. Receipts are built with viem's own event encoding.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createPublicClient, encodeAbiParameters, encodeEventTopics, http, type Address, type Hex, type Log, type TransactionReceipt } from 'viem'
import { foundry } from 'viem/chains'
import { keyManagerAbi } from './keyManagerArtifact.ts'
import { createRegistryClient } from './registry.ts'

const REGISTRY: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const OTHER_CONTRACT: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const ME: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const SOMEONE: Address = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'

// No call goes out: the client only parses what it is given.
const registry = createRegistryClient({ publicClient: createPublicClient({ chain: foundry, transport: http('http://127.0.0.1:1') }), address: REGISTRY })

function onboardRequested(address: Address, requestId: bigint, requester: Address): Log {
  const topics = encodeEventTopics({ abi: keyManagerAbi, eventName: 'OnboardRequested', args: { requestId, requester } }) as [Hex, ...Hex[]]
  const data = encodeAbiParameters(
    [{ type: 'bytes' }, { type: 'bytes32' }, { type: 'uint64' }, { type: 'bytes32' }],
    [`0x${'04'.repeat(64)}`, `0x01${'aa'.repeat(31)}`, 7n, `0x${'bb'.repeat(32)}`],
  )
  return { address, topics, data, blockHash: `0x${'cc'.repeat(32)}`, blockNumber: 9n, logIndex: 0, transactionHash: `0x${'dd'.repeat(32)}`, transactionIndex: 0, removed: false }
}
const receipt = (logs: Log[]) => ({ logs }) as unknown as TransactionReceipt

test('default: the id of this registry\'s OnboardRequested for this requester', () => {
  assert.equal(registry.requestIdFromReceipt(receipt([onboardRequested(REGISTRY, 42n, ME)]), ME), 42n)
  // Addresses compare case-insensitively (a lowercase log address, a checksummed requester).
  assert.equal(registry.requestIdFromReceipt(receipt([onboardRequested(REGISTRY.toLowerCase() as Address, 43n, ME)]), ME), 43n)
})

test('security: a look-alike event from another contract, or for another requester, is not taken', () => {
  const logs = [onboardRequested(OTHER_CONTRACT, 1n, ME), onboardRequested(REGISTRY, 2n, SOMEONE), onboardRequested(REGISTRY, 3n, ME)]
  assert.equal(registry.requestIdFromReceipt(receipt(logs), ME), 3n)
  assert.equal(registry.requestIdFromReceipt(receipt(logs.slice(0, 2)), ME), undefined)
  assert.equal(registry.requestIdFromReceipt(receipt([]), ME), undefined)
})
