// Reorgs end to end: an auto devnet whose chain is rewound with evm_snapshot / evm_revert after a
// newcomer's request was mined and seen, then made longer with different blocks so that no old block hash is left.
// The sidecars' watchers roll back and their outboxes replay what the reorg took; every request must end up
// fulfilled exactly once on the canonical chain, by one fulfillOnboard, with no reverted tx and nobody stuck.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { createTestClient, decodeFunctionData, http, type Hex } from 'viem'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import type { HostSettingsInput } from '../src/config.ts'
import { DEVNET_AUTO, runDevnet, waitUntilReady, type NodeProcess } from '../src/devnet/network.ts'
import { assertNoNonceGapOrReuse, fulfillTransactions, outboxAgainstChain, waitAllFulfilled } from './chainChecks.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

// Node 1 is the only helper: newcomers join by themselves but never help. Two ready helpers can still answer the same
// request in the same instant (one fulfillOnboard then reverts), which has nothing to do with reorgs; with a single
// helper, every fulfillOnboard these tests find on chain is there because of how reorgs were handled.
const NEWCOMER: HostSettingsInput['auto'] = { ...(DEVNET_AUTO as Exclude<HostSettingsInput['auto'], boolean>), help: false }
// The helper's turns (docs/protocol.md#help-schedule) are shared with the members that never help, so with the devnet's
// 25 s turns a request waits up to 25 s per newcomer an earlier test added. The turn is only there to keep two helpers
// from answering one batch; with one helper, a short turn changes nothing else.
const HELPER: HostSettingsInput['auto'] = { ...(DEVNET_AUTO as Exclude<HostSettingsInput['auto'], boolean>), slotMs: 3000 }

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** How many times a node's chain watcher rolled back (its pino JSON lines in node.log). */
function rollbacks(node: NodeProcess): number {
  return readFileSync(join(node.dir, 'node.log'), 'utf8')
    .split('\n')
    .filter((line) => line.includes('"msg":"chain reorganised: rolling back the watcher cursor"')).length
}

/** Request ids a node's chain watcher has stored (its SQLite file, read-only beside the running node). */
function watchedRequestIds(node: NodeProcess): bigint[] {
  const db = new Database(join(node.dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
  try {
    return db
      .prepare<[], { request_id: string }>('SELECT request_id FROM watched_requests')
      .all()
      .map((r) => BigInt(r.request_id))
  } finally {
    db.close()
  }
}

/** A node's `confirmOnboard` txs in its outbox, oldest first (its SQLite file, read-only beside the running node). */
function confirmsIn(node: NodeProcess): { status: string; receiptStatus: string | null }[] {
  const db = new Database(join(node.dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
  try {
    return db
      .prepare<[], { status: string; receipt_status: string | null }>(`SELECT status, receipt_status FROM outbox WHERE label = 'confirmOnboard' ORDER BY nonce`)
      .all()
      .map((r) => ({ status: r.status, receiptStatus: r.receipt_status }))
  } finally {
    db.close()
  }
}

describe('reorg: requests and answers rewound with evm_revert', () => {
  let devnet: Devnet
  const lines: string[] = []

  before(async () => {
    // evm_revert rewinds below what the devnet beacon server finalized and mines its own empty blocks between the
    // test's transactions, so these tests of the watcher and outbox read the chain with trusted-rpc (devnet only);
    // a real chain never reorganises finalized blocks, and the light client's own reorg handling is tested in
    // test/lightClientDevnet.test.ts.
    devnet = await runDevnet({ nodes: 1, dir: mkdtempSync(join(tmpdir(), 'km-reorg-')), print: (l) => lines.push(l), auto: true, autoSettings: HELPER, verification: 'trusted-rpc' })
  })
  after(async () => {
    await devnet?.stop()
  })

  const q = () => ({ address: devnet.registry, abi: keyManagerAbi, fromBlock: 0n, strict: true }) as const
  const events = (eventName: 'OnboardRequested' | 'Onboarded' | 'OnboardConfirmed') => devnet.publicClient.getContractEvents({ ...q(), eventName })
  const idOf = (log: { args: unknown }) => (log.args as { requestId: bigint }).requestId
  const testClient = () => createTestClient({ mode: 'anvil', chain: devnet.chain, transport: http(devnet.anvil.rpcUrl) })

  /** Nothing in flight: every request answered and confirmed, every node's outbox settled on chain. */
  async function settled() {
    await waitAllFulfilled(devnet)
    const requested = (await events('OnboardRequested')).length
    await until(async () => (await events('OnboardConfirmed')).length === requested, 'every request confirmed')
    for (let i = 1; i <= devnet.nodes.length; i++) assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, i), `node ${i}`)
  }

  /** Back to `snapshot`, then more new (empty) blocks than were lost, so that every lost height gets another hash. */
  async function reorg(snapshot: Hex, lost: { blockNumber: bigint; blockHash: Hex }[]) {
    const client = testClient()
    const head = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
    assert.equal(await client.revert({ id: snapshot }).then(() => true), true)
    const base = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
    await client.mine({ blocks: Number(head - base) + 2 })
    for (const block of lost) assert.notEqual((await devnet.publicClient.getBlock({ blockNumber: block.blockNumber })).hash, block.blockHash, 'the old block is gone')
  }

  /** The invariants after a reorg settles: once per request, one successful fulfil each, no reverted tx. */
  async function assertProcessedOnce() {
    const requested = (await events('OnboardRequested')).map(idOf)
    const onboarded = (await events('Onboarded')).map(idOf)
    const confirmed = (await events('OnboardConfirmed')).map(idOf)
    assert.equal(new Set(requested).size, requested.length, 'each request id on chain once')
    assert.deepEqual([...onboarded].sort(), [...requested].sort(), 'every request fulfilled exactly once')
    assert.deepEqual([...confirmed].sort(), [...requested].sort(), 'every request confirmed exactly once')
    const fulfilledBy = new Map<bigint, number>()
    for (const tx of await fulfillTransactions(devnet.publicClient, devnet.registry)) {
      const hash = tx.hash as Hex
      const receipt = await devnet.publicClient.getTransactionReceipt({ hash })
      assert.equal(receipt.status, 'success', `fulfillOnboard ${hash} reverted\n${lines.join('\n')}`)
      const { args } = decodeFunctionData({ abi: keyManagerAbi, data: (await devnet.publicClient.getTransaction({ hash })).input })
      for (const id of args![0] as readonly bigint[]) fulfilledBy.set(id, (fulfilledBy.get(id) ?? 0) + 1)
    }
    for (const id of requested) assert.equal(fulfilledBy.get(id), 1, `request ${id}: one fulfillOnboard transaction on the canonical chain`)
    for (const [i, node] of devnet.nodes.entries()) {
      await waitUntilReady(node)
      const outbox = await outboxAgainstChain(devnet, i + 1)
      assertNoNonceGapOrReuse(outbox, `node ${i + 1}`)
      for (const e of outbox.entries) assert.equal(e.receiptStatus, 'success', `node ${i + 1}: ${e.label} (nonce ${e.nonce}) reverted`)
    }
  }

  test('security: a node in trusted-rpc mode says at start, as a warning, that the host can make it release the master secret', () => {
    const logged = readFileSync(join(devnet.nodes[0]!.dir, 'node.log'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
    const warning = logged.find((l) => l.msg.startsWith('INSECURE chain view: trusted-rpc mode'))
    assert.ok(warning, 'the start-up warning is in the node log')
    assert.equal(warning.level, 40, 'logged at warn level')
    assert.match(warning.msg, /the host can make this node release the master secret/)
    assert.ok(!logged.some((l) => l.msg.startsWith('chain view: light-client verification')), 'and it does not claim light-client verification')
  })

  test('default: a request mined and seen, then reorged away before anyone answers it, is answered once on the new chain', async () => {
    await settled()
    const snapshot = await testClient().snapshot()
    const requestedBefore = (await events('OnboardRequested')).length
    const newcomer = await devnet.addNode({ auto: NEWCOMER })
    await until(async () => (await events('OnboardRequested')).length > requestedBefore, 'the newcomer requested onboarding')
    const request = (await events('OnboardRequested')).at(-1)!
    // Seen by the helper, which now waits at least DEVNET_AUTO.jitterMs[0] (1.5 s) before answering: rewind inside that wait.
    await until(() => watchedRequestIds(devnet.nodes[0]!).includes(idOf(request)), 'the helper saw the request')
    assert.deepEqual((await events('Onboarded')).map(idOf).filter((id) => id === idOf(request)), [], 'not answered yet when the chain is rewound')
    const rolledBack = devnet.nodes.map(rollbacks)
    await reorg(snapshot, [request])

    await waitUntilReady(newcomer)
    await settled()
    const replayed = (await events('OnboardRequested')).filter((log) => (log.args as { requester: Hex }).requester === (request.args as { requester: Hex }).requester)
    assert.equal(replayed.length, 1, 'the same request, replayed by the newcomer (not a second registration)')
    assert.notEqual(replayed[0]!.blockHash, request.blockHash)
    // The helper had stored the request; the newcomer's watcher may not have reached its block before the rewind.
    assert.ok(rollbacks(devnet.nodes[0]!) > rolledBack[0]!, `the helper's watcher rolled back`)
    await assertProcessedOnce()
  })

  test('default: a request, its answer and its confirmation all reorged away are replayed in order: answered once, confirmed once', async () => {
    await settled()
    const snapshot = await testClient().snapshot()
    const requestedBefore = (await events('OnboardRequested')).length
    const newcomer = await devnet.addNode({ auto: NEWCOMER })
    await waitUntilReady(newcomer)
    await settled()
    const request = (await events('OnboardRequested')).at(-1)!
    assert.equal((await events('OnboardRequested')).length, requestedBefore + 1)
    const answer = (await events('Onboarded')).find((log) => idOf(log) === idOf(request))!
    const confirmation = (await events('OnboardConfirmed')).find((log) => idOf(log) === idOf(request))!
    const rolledBack = devnet.nodes.map(rollbacks)
    await reorg(snapshot, [request, answer, confirmation])

    // The newcomer stays ready (its secret is sealed); the chain must get the three transactions back.
    await until(async () => (await events('OnboardConfirmed')).some((log) => idOf(log) === idOf(request)), 'the confirmation replayed', 90_000)
    await settled()
    const again = (await events('Onboarded')).find((log) => idOf(log) === idOf(request))!
    assert.notEqual(again.blockHash, answer.blockHash, 'answered again on the new chain')
    assert.equal(again.transactionHash, answer.transactionHash, 'by the same signed fulfillOnboard, replayed by its helper')
    for (const [i, node] of devnet.nodes.entries()) assert.ok(rollbacks(node) > rolledBack[i]!, `node ${i + 1}'s watcher rolled back`)
    await assertProcessedOnce()
  })

  test('default: a confirmation replayed before its answer came back reverts; the newcomer confirms again once the answer is back', async () => {
    await settled()
    const snapshot = await testClient().snapshot()
    const newcomer = await devnet.addNode({ auto: NEWCOMER })
    await waitUntilReady(newcomer)
    await settled()
    const request = (await events('OnboardRequested')).at(-1)!
    const answer = (await events('Onboarded')).find((log) => idOf(log) === idOf(request))!
    // The only helper is down while the chain is rewound, so its answer cannot come back before the newcomer's hold ends.
    const helper = devnet.nodes[0]!
    helper.child.kill('SIGTERM')
    if (helper.child.exitCode === null && helper.child.signalCode === null) await new Promise((r) => helper.child.once('exit', r))
    await reorg(snapshot, [request, answer])
    const newcomerConfirms = () => confirmsIn(newcomer)
    // Blocks keep coming (the test mines them) while no answer does: the held confirmation is sent anyway and reverts.
    await until(async () => {
      await testClient().mine({ blocks: 1 })
      return newcomerConfirms().some((e) => e.receiptStatus === 'reverted')
    }, 'the held confirmation sent anyway')
    assert.equal((await events('OnboardConfirmed')).filter((log) => idOf(log) === idOf(request)).length, 0)

    await devnet.restartNode(helper)
    await waitUntilReady(helper)
    await until(async () => (await events('OnboardConfirmed')).some((log) => idOf(log) === idOf(request)), 'the newcomer confirmed again', 90_000)
    const again = (await events('Onboarded')).filter((log) => idOf(log) === idOf(request))
    assert.equal(again.length, 1, 'answered once on the new chain')
    assert.equal(again[0]!.transactionHash, answer.transactionHash, 'by the same signed fulfillOnboard, replayed by its helper')
    // The event is on chain before the newcomer's outbox has read its receipt (its next poll): wait for that record.
    await until(() => newcomerConfirms().every((e) => e.status === 'mined'), "the newcomer's outbox recorded the confirmation mined")
    assert.deepEqual(
      newcomerConfirms().map((e) => [e.status, e.receiptStatus]),
      [
        ['mined', 'reverted'],
        ['mined', 'success'],
      ],
      'one lost confirmation, then one that is mined',
    )
    assert.ok(readFileSync(join(newcomer.dir, 'node.log'), 'utf8').includes("confirmation was lost (reorged away, then reverted or dropped); confirming again"))
    await settled()
  })

  // Last: it leaves a refused request on chain, which the checks of the tests above do not expect.
  test('default: a request whose reference block is reorged away (every helper refuses the replay) is made again at once, not left to expire', async () => {
    await settled()
    const snapshot = await testClient().snapshot()
    // The block the newcomer will reference (its latest), then its request in the next one.
    const marker = await devnet.owner.sendTransaction({ to: devnet.owner.account.address, value: 0n })
    const refBlock = await devnet.publicClient.waitForTransactionReceipt({ hash: marker })
    const requestedBefore = (await events('OnboardRequested')).length
    const newcomer = await devnet.addNode({ auto: NEWCOMER })
    await until(async () => (await events('OnboardRequested')).length > requestedBefore, 'the newcomer requested onboarding')
    const request = (await events('OnboardRequested')).at(-1)!
    const requester = (request.args as { requester: Hex }).requester
    assert.equal((request.args as { refBlockHash: Hex }).refBlockHash, refBlock.blockHash, 'the request references the marker block')
    await until(() => watchedRequestIds(devnet.nodes[0]!).includes(idOf(request)), 'the helper saw the request')
    assert.deepEqual((await events('Onboarded')).map(idOf).filter((id) => id === idOf(request)), [], 'not answered yet when the chain is rewound')

    // Another block at the referenced height (another transaction), so the replayed request records another hash.
    await testClient().revert({ id: snapshot })
    const other = await devnet.owner.sendTransaction({ to: devnet.owner.account.address, value: 1n })
    const replacedRef = await devnet.publicClient.waitForTransactionReceipt({ hash: other })
    assert.equal(replacedRef.blockNumber, refBlock.blockNumber)
    assert.notEqual(replacedRef.blockHash, refBlock.blockHash)
    await testClient().mine({ blocks: 3 })

    await waitUntilReady(newcomer)
    const mine = (await events('OnboardRequested')).filter((log) => log.blockNumber > refBlock.blockNumber)
    const replayed = mine.find((log) => (log.args as { requester: Hex }).requester === requester)
    assert.ok(replayed, 'the first request was replayed on the new chain')
    assert.equal((replayed.args as { refBlockHash: Hex }).refBlockHash, replacedRef.blockHash, 'recording the new block at its reference height')
    const again = mine.filter((log) => (log.args as { requester: Hex }).requester !== requester)
    assert.equal(again.length, 1, 'one new request with a new key')
    const onboarded = (await events('Onboarded')).map(idOf)
    assert.equal(new Set(onboarded).size, onboarded.length, 'no request fulfilled twice')
    assert.ok(!onboarded.includes(idOf(replayed)), 'the replayed request, bound to the lost block, is refused')
    assert.ok(onboarded.includes(idOf(again[0]!)), 'the new request is answered')
    for (const tx of await fulfillTransactions(devnet.publicClient, devnet.registry)) {
      const receipt = await devnet.publicClient.getTransactionReceipt({ hash: tx.hash as Hex })
      assert.equal(receipt.status, 'success', `fulfillOnboard ${tx.hash} reverted`)
    }
    for (let i = 1; i <= devnet.nodes.length; i++) assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, i), `node ${i}`)
  })
})
