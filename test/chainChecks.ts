// Chain-side checks shared by the e2e tests: what the outbox stored against what the chain did, and registry events.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { toFunctionSelector, type Address, type PublicClient } from 'viem'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { getLogsBounded } from '../src/chain/logs.ts'
import { devAccount, type runDevnet } from '../src/devnet/network.ts'
import { createOutboxStore } from '../src/store/outbox.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

/** Every transaction on chain that calls `fulfillOnboard`, reverted or not. */
export async function fulfillTransactions(publicClient: PublicClient, registry: Address) {
  const selector = toFunctionSelector('fulfillOnboard(uint256[],bytes)')
  const head = await publicClient.getBlockNumber({ cacheTime: 0 })
  const found: { hash: string; from: Address }[] = []
  for (let n = 0n; n <= head; n++) {
    const block = await publicClient.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions) if (tx.to?.toLowerCase() === registry.toLowerCase() && tx.input.startsWith(selector)) found.push({ hash: tx.hash, from: tx.from })
  }
  return found
}

/**
 * The node's outbox as stored in its data dir, once settled (no tx waiting for a receipt, up to 30 s: a node
 * records a receipt a poll after the chain has it), and the chain's nonce of its gas account.
 */
export async function outboxAgainstChain(devnet: Devnet, index: number) {
  const db = new Database(join(devnet.nodes[index - 1]!.dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
  try {
    const account = devAccount(index).address
    const store = createOutboxStore(db)
    let entries = store.all(account)
    for (let tries = 0; tries < 150 && entries.some((e) => e.status === 'sent'); tries++) {
      await new Promise((r) => setTimeout(r, 200))
      entries = store.all(account)
    }
    const chainNonce = await devnet.publicClient.getTransactionCount({ address: account, blockTag: 'latest' })
    return { entries, chainNonce }
  } finally {
    db.close()
  }
}

/** Asserts the outbox invariant: nonces 0..n-1 each stored once, all mined, and the chain's nonce is n. */
export function assertNoNonceGapOrReuse({ entries, chainNonce }: Awaited<ReturnType<typeof outboxAgainstChain>>, what: string) {
  assert.deepEqual(
    entries.map((e) => e.nonce),
    entries.map((_, i) => i),
    `${what}: outbox nonces are contiguous from 0`,
  )
  assert.equal(chainNonce, entries.length, `${what}: account nonce equals the number of outbox txs`)
  for (const e of entries) assert.equal(e.status, 'mined', `${what}: outbox tx ${e.nonce} (${e.label}) is ${e.status}`)
}

/** Waits until every request on chain has an `Onboarded` event (nothing left for a helper to do). */
export async function waitAllFulfilled(devnet: Devnet, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const q = { address: devnet.registry, abi: keyManagerAbi, fromBlock: 0n, strict: true } as const
    const [requested, onboarded] = await Promise.all([
      devnet.publicClient.getContractEvents({ ...q, eventName: 'OnboardRequested' }),
      devnet.publicClient.getContractEvents({ ...q, eventName: 'Onboarded' }),
    ])
    if (onboarded.length >= requested.length) return
    if (Date.now() > deadline) throw new Error(`${requested.length - onboarded.length} requests still unanswered`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** OnboardRequested events of the registry matching `filter`, oldest first (scanned in bounded ranges from block 0). */
export async function onboardRequestsOn(publicClient: PublicClient, registry: Address, filter: { requestId?: bigint; requester?: Address } = {}) {
  const logs = await getLogsBounded({
    publicClient,
    address: registry,
    abi: keyManagerAbi,
    eventNames: ['OnboardRequested'],
    fromBlock: 0n,
    toBlock: await publicClient.getBlockNumber({ cacheTime: 0 }),
  })
  return logs
    .map((log) => ({ ...(log.args as { requestId: bigint; requester: Address; quoteBlobHash: `0x${string}` }), blockNumber: log.blockNumber! }))
    .filter((r) => (filter.requestId === undefined || r.requestId === filter.requestId) && (filter.requester === undefined || r.requester.toLowerCase() === filter.requester.toLowerCase()))
}

/** The Onboarded event of a request, if any. */
export async function onboardedEventOn(publicClient: PublicClient, registry: Address, requestId: bigint) {
  const logs = await getLogsBounded({
    publicClient,
    address: registry,
    abi: keyManagerAbi,
    eventNames: ['Onboarded'],
    fromBlock: 0n,
    toBlock: await publicClient.getBlockNumber({ cacheTime: 0 }),
  })
  const found = logs.filter((log) => (log.args as { requestId: bigint }).requestId === requestId).at(-1)
  return found ? (found.args as { requestId: bigint; responseBlobHash: `0x${string}`; index: bigint }) : undefined
}
