// The auto runner's help schedule in process (docs/protocol.md#help-schedule): helpers share one fake chain read
// through the chain view's real decoder (test/inProcessNode.ts); their `help` is a recording fake that answers on that
// chain, since what is tested here is who acts and when, not the judgment (src/node/node.test.ts). Turns are short real
// timers from a clock that stands still; the tests check who answered, never how long anything took.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import type { Address } from 'viem'
import { FakeChain, fakeChainView, nodeOn, pki, provider, registerBlob, unsigned } from '../../test/inProcessNode.ts'
import { createDcapVerifier } from '../tee/dcap.ts'
import { measurementOf } from '../tee/measurement.ts'
import type { OnboardRequest } from '../chain/registry.ts'
import type { CursorStore, WatchedRequest } from '../store/cursor.ts'
import { createAutoRunner } from './auto.ts'
import { escrowBatch, helperOrder, type ScheduleMember } from './helperSchedule.ts'
import type { KeymanagerNode } from './node.ts'

const key = (n: number): Address => `0x${n.toString(16).padStart(40, '0')}`
const TURN_MS = 1000

/** Members 1-3 (confirmed), request 4 answered but never confirmed (not a member), then pending request(s). */
function network() {
  const chain = new FakeChain()
  const members: ScheduleMember[] = [
    { memberId: 1n, key: key(0xc0) },
    { memberId: 2n, key: key(0xa0) },
    { memberId: 3n, key: key(0xb0) },
  ]
  for (const m of members) chain.requests.set(m.memberId, { key: m.key, expiresAt: 10_000n, status: 'confirmed', commitment: `0x${'11'.repeat(32)}` })
  chain.requests.set(4n, { key: key(0xa8), expiresAt: 10_000n, status: 'fulfilled', commitment: `0x${'11'.repeat(32)}` })
  const answeredBy = new Map<bigint, string>()
  /** Every help call per request: more than one helper answering a request is what the schedule prevents. */
  const calls = new Map<bigint, string[]>()
  /** Who sent a freshness mark ahead, for which batch (`name:batch`), and whose help call named that batch. */
  const marksAhead: string[] = []
  const tookMark: string[] = []
  const addPending = (id: bigint) => chain.requests.set(id, { key: key(0x100 + Number(id)), expiresAt: 10_000n, status: 'pending', commitment: `0x${'22'.repeat(32)}` })
  /**
   * Requests the RPC reports at a block (request id → block) that the view may not have yet: the view's chain holds a
   * request only once the test puts it in `chain.requests` (its block final).
   */
  const reported = new Map<bigint, bigint>()
  /** What a watcher would hold: every request, answered ones with their block. */
  const cursor = {
    pendingRequests: () => [
      ...[...chain.requests].filter(([, r]) => r.status === 'pending').map(([id]) => watched(id, null)),
      ...[...reported.keys()].filter((id) => !chain.requests.has(id)).map((id) => watched(id, null)),
    ],
    requests: () => [...chain.requests].map(([id, r]) => watched(id, r.status === 'pending' ? null : 90n)),
  } as unknown as CursorStore
  function watched(requestId: bigint, onboardedBlock: bigint | null): WatchedRequest {
    return { requestId, onboardedBlock, requester: `0x${requestId.toString(16).padStart(40, "0")}`, blockNumber: reported.get(requestId) ?? 90n } as WatchedRequest
  }
  function helper(name: string, memberId: bigint | null, logs: object[] = [], generation = 1, pollIntervalMs?: number) {
    const node = {
      state: 'ready',
      generation,
      memberId,
      overBudget: () => false,
      confirmAgainIfLost: async () => false, // its confirmation is on chain
      async markAhead(batch: bigint) {
        marksAhead.push(`${name}:${batch}`)
        return true
      },
      async help(requests: OnboardRequest[], options: { batch?: bigint } = {}) {
        if (marksAhead.includes(`${name}:${options.batch}`)) tookMark.push(`${name}:${options.batch}`)
        for (const r of requests) calls.set(r.requestId, [...(calls.get(r.requestId) ?? []), name])
        // The answer becomes visible half a turn later (mark, proofs, mined transaction), as on a chain.
        await new Promise((resolve) => setTimeout(resolve, TURN_MS / 2))
        for (const r of requests) {
          Object.assign(chain.requests.get(r.requestId)!, { status: 'fulfilled', generation: BigInt(generation) })
          answeredBy.set(r.requestId, name)
        }
        return requests.map((r) => ({ requestId: r.requestId, decision: 'fulfilled' }))
      },
    } as unknown as KeymanagerNode
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as object) })
    return createAutoRunner({
      node,
      registry: chain.registry,
      chainView: fakeChainView(chain),
      cursor,
      stores: { requests: { get: () => undefined }, registrations: {} } as never,
      logger,
      register: false,
      help: true,
      jitterMs: [0, 0],
      slotMs: TURN_MS,
      ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }),
      // A clock that stands still: each helper waits exactly its turns from when it knows its rank, however long the
      // (CPU-bound) reads before took on a loaded machine. The order of the waits is what is tested.
      monotonicNow: () => 0,
    })
  }
  return { chain, members, answeredBy, calls, marksAhead, tookMark, addPending, reported, helper }
}

const names = new Map([
  [1n, 'm1'],
  [2n, 'm2'],
  [3n, 'm3'],
])

test('default: the designated member answers the batch, the others wait and find it answered', async () => {
  const net = network()
  net.addPending(10n)
  net.addPending(11n)
  const order = helperOrder(10n, net.members)
  const runners = net.members.map((m) => net.helper(names.get(m.memberId)!, m.memberId))
  const bootstrap = net.helper('bootstrap', null)
  const answered = await Promise.all([...runners, bootstrap].map((r) => r.helpRound()))
  assert.equal(net.answeredBy.get(10n), names.get(order[0]!.memberId))
  assert.equal(net.answeredBy.get(11n), names.get(order[0]!.memberId), 'one answer for the whole batch')
  assert.deepEqual(answered.toSorted(), [0, 0, 0, 2])
  assert.deepEqual([...net.calls.values()], [[names.get(order[0]!.memberId)], [names.get(order[0]!.memberId)]], 'no other helper answered')
})

test('default: the designated member by the member set it proved last sends its freshness mark when it first sees a batch', async () => {
  const net = network()
  const runners = new Map(net.members.map((m) => [m.memberId, net.helper(names.get(m.memberId)!, m.memberId)]))
  net.addPending(10n)
  await Promise.all([...runners.values()].map((r) => r.helpRound()))
  assert.deepEqual(net.marksAhead, [], 'the first batch: no member set proven yet, so no prediction')
  net.addPending(20n)
  const designated = names.get(helperOrder(20n, net.members)[0]!.memberId)!
  await Promise.all([...runners.values()].map((r) => r.helpRound()))
  assert.deepEqual(net.marksAhead, [`${designated}:20`], 'only the designated member, once, for batch 20')
  assert.equal(net.answeredBy.get(20n), designated)
  assert.deepEqual(net.tookMark, [`${designated}:20`], 'its decision on batch 20 names the batch, so it takes that mark')
})

test('default: a request reported before its block is final waits for the verified view and is answered once it is in it; one the view passed without is left', async () => {
  const net = network()
  const [m1] = net.members
  const runner = net.helper('m1', m1!.memberId)
  // The RPC reports request 10 at block 102; the view's head is 100 (its block not final yet).
  net.reported.set(10n, net.chain.head + 2n)
  assert.equal(await runner.helpRound(), 0)
  assert.equal(await runner.helpRound(), 0, 'still waiting, not given up')
  assert.deepEqual([...net.calls.keys()], [])
  // Final: the view reaches block 102 and holds the request.
  net.chain.head += 2n
  net.addPending(10n)
  assert.equal(await runner.helpRound(), 1)
  assert.equal(net.answeredBy.get(10n), 'm1')
  // Request 11: the RPC puts it at block 101, the view is at 102 and has no such request (a lie, or reorged out).
  net.reported.set(11n, 101n)
  assert.equal(await runner.helpRound(), 0)
  net.addPending(12n) // a genuine request after it is not held up by it
  assert.equal(await runner.helpRound(), 1)
  assert.deepEqual([...net.calls.keys()], [10n, 12n])
})

test('default: a dead designated member is covered by the next in the order; the one after it then finds nothing', async () => {
  const net = network()
  net.addPending(10n)
  const order = helperOrder(10n, net.members)
  const [next, after] = order.slice(1).map((m) => net.helper(names.get(m.memberId)!, m.memberId))
  // The designated member never acts; the next waits its one turn and answers.
  assert.equal(await next!.helpRound(), 1)
  assert.deepEqual(net.calls.get(10n), [names.get(order[1]!.memberId)])
  assert.equal(await after!.helpRound(), 0)
  assert.deepEqual(net.calls.get(10n), [names.get(order[1]!.memberId)], 'answered once')
})

test('default: a node that is not a proven member (answered, unconfirmed request; the bootstrap node) goes after every member', async () => {
  const logs: object[] = []
  const net = network()
  net.addPending(10n)
  // Member id 4 is hinted by the watcher (its request was answered) but the view proves it `fulfilled`, not confirmed.
  const unconfirmed = net.helper('unconfirmed', 4n, logs)
  const last = net.helper('bootstrap', null)
  assert.equal(await unconfirmed.helpRound(), 1, 'alone, it still answers once every member had its turn')
  assert.equal((logs.find((l) => (l as { msg: string }).msg === 'auto-help round') as { rank: number }).rank, 3, 'rank after the 3 proven members')
  net.addPending(12n)
  assert.equal(await last.helpRound(), 1)
  assert.equal(net.answeredBy.get(12n), 'bootstrap')
})

test('default: a helper whose batch changed while it waited does not answer the new one out of turn', async () => {
  const net = network()
  net.addPending(10n)
  const order = helperOrder(10n, net.members)
  const second = net.helper(names.get(order[1]!.memberId)!, order[1]!.memberId)
  const round = second.helpRound()
  // Request 10 is answered by someone else (the designated helper) and request 20 arrives: a new batch.
  net.chain.requests.get(10n)!.status = 'fulfilled'
  net.addPending(20n)
  assert.equal(await round, 0)
  assert.equal(net.answeredBy.size, 0)
})

test('default: a helper waiting for a later turn stops waiting once the batch is answered, so it sees the next batch', async () => {
  const net = network()
  net.addPending(10n)
  const order = helperOrder(10n, net.members)
  // The last in the order would act two turns from now; it looks at its watcher's store every 50 ms meanwhile.
  const last = net.helper(names.get(order[2]!.memberId)!, order[2]!.memberId, [], 1, 50)
  const round = last.helpRound()
  net.chain.requests.get(10n)!.status = 'fulfilled'
  const outcome = await Promise.race([round, new Promise((resolve) => setTimeout(() => resolve('still waiting after one turn'), TURN_MS))])
  assert.equal(outcome, 0, 'it returned before the first turn was over, without answering')
  assert.equal(net.answeredBy.size, 0)
})

test('default: a request answered under an older generation and not confirmed is answered again, once, after a rotation', async () => {
  const net = network()
  net.chain.generation = 2n
  // 12: answered under generation 1 (a rotation committed before its confirmation); 13: answered under 2; 14: under 1
  // but confirmed since; 15: under 1 and expired.
  const answered = (id: bigint, generation: bigint, status: 'fulfilled' | 'confirmed' = 'fulfilled', expiresAt = 10_000n) =>
    net.chain.requests.set(id, { key: key(0x200 + Number(id)), expiresAt, status, commitment: `0x${'33'.repeat(32)}`, generation })
  answered(12n, 1n)
  answered(13n, 2n)
  answered(14n, 1n, 'confirmed')
  answered(15n, 1n, 'fulfilled', 50n)
  // Request 14 is a member too (confirmed); it runs no helper here, so the first running member in the order answers.
  const order = helperOrder(12n, [...net.members, { memberId: 14n, key: key(0x20e) }]).filter((m) => names.has(m.memberId))
  const runners = net.members.map((m) => net.helper(names.get(m.memberId)!, m.memberId, [], 2))
  await Promise.all(runners.map((r) => r.step()))
  assert.deepEqual([...net.calls.keys()], [12n], 'only the stale answer is answered again')
  assert.deepEqual(net.calls.get(12n), [names.get(order[0]!.memberId)], 'by one member alone, the first in the order')
  assert.equal(net.chain.requests.get(12n)!.generation, 2n)
  // Answered under the current generation now: nobody takes it again.
  await Promise.all(runners.map((r) => r.step()))
  assert.deepEqual(net.calls.get(12n), [names.get(order[0]!.memberId)])
})

test('default: before any rotation (generation 1) no answered request is looked at again', async () => {
  const net = network()
  net.chain.generation = 1n
  net.chain.requests.set(12n, { key: key(0x212), expiresAt: 10_000n, status: 'fulfilled', commitment: `0x${'33'.repeat(32)}`, generation: 1n })
  const runner = net.helper('m1', 1n)
  await runner.step()
  assert.equal(net.calls.size, 0)
})

/**
 * Escrow (docs/protocol.md#guardians): members share one fake "generation → escrowed set" map; `publishEscrow` records
 * who published. A clock the test moves decides whose turn it is.
 */
function escrowNetwork() {
  const net = network()
  const escrowedTo = new Map<number, bigint>([[1, 0n], [2, 0n]])
  let activeSet = 1n
  const published: { by: string; generation: number; guardianSet: bigint }[] = []
  let now = 0
  function member(name: string, memberId: bigint | null, options: { failing?: boolean } = {}) {
    const node = {
      state: 'ready',
      generation: 1,
      memberId,
      overBudget: () => false,
      confirmAgainIfLost: async () => false, // its confirmation is on chain
      markAhead: async () => false,
      async help(requests: OnboardRequest[]) {
        for (const r of requests) {
          net.chain.requests.get(r.requestId)!.status = 'fulfilled'
          net.answeredBy.set(r.requestId, name)
        }
        return requests.map((r) => ({ requestId: r.requestId, decision: 'fulfilled' }))
      },
      async escrowNeeded() {
        return { guardianSet: activeSet, generations: [...escrowedTo].filter(([, set]) => set !== activeSet).map(([g]) => g) }
      },
      async publishEscrow() {
        if (options.failing) throw new Error('guardian_keys_mismatch: the logged keys of guardian set 1 do not hash to the proven keys hash')
        const generations = [...escrowedTo].map(([g, set]) => {
          if (set === activeSet) return { generation: g, status: 'escrowed' }
          escrowedTo.set(g, activeSet)
          published.push({ by: name, generation: g, guardianSet: activeSet })
          return { generation: g, status: 'published' }
        })
        return { guardianSet: activeSet.toString(), threshold: 3, count: 5, generations }
      },
    } as unknown as KeymanagerNode
    return createAutoRunner({
      node,
      registry: net.chain.registry,
      chainView: fakeChainView(net.chain),
      cursor: {
        requests: () => [...net.chain.requests].map(([requestId, r]) => ({ requestId, onboardedBlock: r.status === 'pending' ? null : 90n })),
        pendingRequests: () =>
          [...net.chain.requests].filter(([, r]) => r.status === 'pending').map(([requestId]) => ({ requestId, onboardedBlock: null, requester: `0x${requestId.toString(16).padStart(40, '0')}` })),
      } as unknown as CursorStore,
      stores: { requests: { get: () => undefined }, registrations: {} } as never,
      logger: pino({ level: 'silent' }),
      register: false,
      help: true,
      jitterMs: [0, 0],
      slotMs: TURN_MS,
      escrowCheckMs: 10,
      monotonicNow: () => now,
    })
  }
  return {
    ...net,
    escrowedTo,
    published,
    member,
    at: (ms: number) => void (now = ms),
    setActive: (set: bigint) => void (activeSet = set),
  }
}

test('escrow: one member per generation and set publishes (the designated one); the others find it escrowed at their turn', async () => {
  const net = escrowNetwork()
  const order = helperOrder(escrowBatch(1n, 1n), net.members)
  const runners = new Map(net.members.map((m) => [m.memberId, net.member(names.get(m.memberId)!, m.memberId)]))
  const bootstrap = net.member('bootstrap', null)
  for (const t of [0, TURN_MS, 2 * TURN_MS, 3 * TURN_MS, 4 * TURN_MS]) {
    net.at(t)
    for (const r of [...runners.values(), bootstrap]) await r.escrowStep()
  }
  const designated = names.get(order[0]!.memberId)!
  assert.deepEqual(net.published, [
    { by: designated, generation: 1, guardianSet: 1n },
    { by: designated, generation: 2, guardianSet: 1n },
  ])
  // After the guardians change: every generation again, once, to the new set (its own designated member).
  net.setActive(2n)
  const order2 = helperOrder(escrowBatch(2n, 1n), net.members)
  for (const t of [10 * TURN_MS, 11 * TURN_MS, 12 * TURN_MS, 13 * TURN_MS]) {
    net.at(t)
    for (const r of [...runners.values(), bootstrap]) await r.escrowStep()
  }
  assert.deepEqual(net.published.slice(2), [
    { by: names.get(order2[0]!.memberId)!, generation: 1, guardianSet: 2n },
    { by: names.get(order2[0]!.memberId)!, generation: 2, guardianSet: 2n },
  ])
})

test('escrow: a dead designated member is covered one turn later by the next; nothing before that turn', async () => {
  const net = escrowNetwork()
  const order = helperOrder(escrowBatch(1n, 1n), net.members)
  const [next, after] = order.slice(1).map((m) => net.member(names.get(m.memberId)!, m.memberId))
  net.at(0)
  assert.deepEqual(await next!.escrowStep(), [])
  assert.deepEqual(await after!.escrowStep(), [])
  net.at(TURN_MS - 1)
  assert.deepEqual(await next!.escrowStep(), [], 'not before its turn')
  net.at(TURN_MS)
  assert.deepEqual(await next!.escrowStep(), [1, 2])
  net.at(2 * TURN_MS)
  assert.deepEqual(await after!.escrowStep(), [], 'found escrowed')
  assert.deepEqual(net.published.map((p) => p.by), [names.get(order[1]!.memberId), names.get(order[1]!.memberId)])
})

test('error: an escrow that fails (a lying host, a reverted transaction) never stops helping', async () => {
  const net = escrowNetwork()
  net.addPending(10n)
  const designated = helperOrder(escrowBatch(1n, 1n), net.members)[0]!
  const failing = net.member(names.get(designated.memberId)!, designated.memberId, { failing: true })
  net.at(0)
  await failing.step()
  assert.equal(net.published.length, 0)
  assert.equal(failing.escrows, 0)
  assert.equal(net.answeredBy.get(10n), names.get(designated.memberId), 'the same step answered the pending request')
})

test('default: a request refused for now (collateral_unavailable) is judged again after a doubling backoff, then answered', async () => {
  // A real helper in process (test/inProcessNode.ts: real DCAP verification, real SQLite, real judgement) whose PCCS
  // fails twice, then serves. The runner's clock moves only when the test moves it.
  const chain = new FakeChain()
  chain.allowed.add(measurementOf(await provider.getQuote(new Uint8Array(64))).measurementId)
  let outages = 0
  let asked = 0
  const quoteVerifier = createDcapVerifier({
    collateral: {
      get: async () => {
        asked++
        if (outages > 0) {
          outages--
          throw new Error('PCCS: HTTP 503')
        }
        return pki.collateral()
      },
    },
    trustedRootCaDer: [pki.rootCaDer],
  })
  const helper = nodeOn(chain, { context: { quoteVerifier } })
  await helper.node.start()
  chain.mineBootstrap(unsigned(await helper.node.bootstrap()))
  await helper.node.bootstrap()
  assert.equal(helper.node.state, 'ready')

  const logs: { msg: string; requestId?: string; reason?: string; retryInMs?: number }[] = []
  let now = 0
  const BASE = 40
  const runner = createAutoRunner({
    node: helper.node,
    registry: chain.registry,
    chainView: fakeChainView(chain),
    cursor: helper.stores.cursor,
    stores: helper.stores,
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[number]) }),
    register: false,
    help: true,
    jitterMs: [0, 0],
    slotMs: TURN_MS,
    retryBaseMs: BASE,
    retryMaxMs: 10 * BASE,
    monotonicNow: () => now,
  })
  outages = 2
  const blob = await registerBlob(chain)
  const request = chain.addRequest(blob.pubkey64, blob.quoteBlobHash, blob.refBlockNumber)
  const decision = () => helper.stores.requests.get(request.requestId)
  const retried = () => logs.filter((l) => l.msg === 'temporary refusal: judged again later')

  // First judgement: the PCCS is down.
  await runner.helpRound()
  assert.equal(decision()?.decision, 'refused')
  assert.equal(decision()?.reason, 'collateral_unavailable')
  assert.deepEqual(retried().map((l) => [l.requestId, l.reason, l.retryInMs]), [[request.requestId.toString(), 'collateral_unavailable', BASE]])
  // Before its backoff has run out the request is left alone.
  now += BASE - 1
  assert.equal(await runner.helpRound(), 0)
  assert.equal(asked, 1, 'no second collateral fetch inside the backoff')
  // Second judgement, still down: the wait doubles.
  now += 1
  await runner.helpRound()
  assert.equal(asked, 2)
  assert.equal(decision()?.reason, 'collateral_unavailable')
  assert.deepEqual(retried().map((l) => l.retryInMs), [BASE, 2 * BASE])
  now += 2 * BASE - 1
  assert.equal(await runner.helpRound(), 0)
  assert.equal(asked, 2)
  // Third judgement: the PCCS is back; the request is answered.
  now += 1
  assert.equal(await runner.helpRound(), 1)
  // Answered: the node, without a gas key here, built its fulfillOnboard and hands it to the host to send.
  assert.equal(decision()?.decision, 'pending')
  assert.equal(decision()?.reason, null)
  assert.equal(retried().length, 2, 'no further retry scheduled')
  assert.equal(asked, 3)
})
