// kill -9 at every durable step of bootstrap, register, help, complete and confirm (docs/protocol.md#node-state, crash
// safety). Each case starts an empty devnet, arms one kill point in one node process (KEYMANAGER_KILL_AT, the devnet
// entry's test-only hook: src/node/killPoints.ts), and drives the whole life of a network: node 1 bootstraps (its gas
// key is the registry's bootstrapper, so bootstrap() goes through its own outbox) and becomes a member by answering
// its own request; node 2 registers, node 1 answers, node 2 completes and confirms. The armed process kills itself
// with SIGKILL right after the step; the test restarts it on its data dir (as an operator or an orchestrator would,
// repeating POST /bootstrap if that is what it was doing) and checks that
//   - the kill happened (a point never reached would make the case prove nothing),
//   - every outcome happened exactly once on chain: one bootstrap, one request, one answer and one confirmation per
//     node, and no node tx reverted,
//   - each node's nonces have no gap and no reuse (outbox nonces 0..n-1 all mined, the account's nonce is n),
//   - both nodes end ready, members, on the registry's master key, deriving the same pod keys.
// `npm test` runs a fixed slice of the points (SLICE); `npm run crash` runs them all (CRASH_POINTS=all).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import type { Address, Hex } from 'viem'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { DEVNET_AUTO, DEVNET_AUTO_ROTATE, devAccount, hostCall, runDevnet, type NodeProcess } from '../src/devnet/network.ts'
import { KILL_POINTS, type KillPoint } from '../src/node/killPoints.ts'
import { assertNoNonceGapOrReuse, outboxAgainstChain } from './chainChecks.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
/** first: node 1 (bootstrap, its own membership, helping node 2); newcomer: node 2 (register, complete, confirm). */
type Case = { point: KillPoint; nth?: number; node: 'first' | 'newcomer'; flow: string }

/** Every case: each durable step of each flow, in the process that reaches it. Node 1 reaches help steps twice: #1
 * answers its own membership request, #2 answers node 2. */
export const CASES: Case[] = [
  { flow: 'bootstrap', node: 'first', point: 'bootstrap.pending-sealed' },
  { flow: 'bootstrap', node: 'first', point: 'bootstrap.blob-archived' },
  { flow: 'bootstrap', node: 'first', point: 'tx.bootstrap.stored' },
  { flow: 'bootstrap', node: 'first', point: 'tx.bootstrap.sent' },
  { flow: 'bootstrap', node: 'first', point: 'tx.bootstrap.mined' },
  { flow: 'bootstrap', node: 'first', point: 'bootstrap.generation-sealed' },
  { flow: 'bootstrap', node: 'first', point: 'bootstrap.pending-cleared' },
  { flow: 'register', node: 'newcomer', point: 'register.blob-archived' },
  { flow: 'register', node: 'newcomer', point: 'register.key-sealed' },
  { flow: 'register', node: 'newcomer', point: 'tx.requestOnboard.stored' },
  { flow: 'register', node: 'newcomer', point: 'tx.requestOnboard.sent' },
  { flow: 'register', node: 'newcomer', point: 'tx.requestOnboard.mined' },
  { flow: 'register', node: 'newcomer', point: 'register.requested' },
  { flow: 'help', node: 'first', point: 'tx.markFresh.stored', nth: 2 },
  { flow: 'help', node: 'first', point: 'tx.markFresh.mined', nth: 2 },
  { flow: 'help', node: 'first', point: 'help.response-archived', nth: 2 },
  { flow: 'help', node: 'first', point: 'tx.fulfillOnboard.stored', nth: 2 },
  { flow: 'help', node: 'first', point: 'tx.fulfillOnboard.sent', nth: 2 },
  { flow: 'help', node: 'first', point: 'tx.fulfillOnboard.mined', nth: 2 },
  { flow: 'help', node: 'first', point: 'help.recorded', nth: 2 },
  { flow: 'complete', node: 'newcomer', point: 'complete.secret-sealed' },
  { flow: 'confirm', node: 'newcomer', point: 'tx.confirmOnboard.stored' },
  { flow: 'confirm', node: 'newcomer', point: 'tx.confirmOnboard.sent' },
  { flow: 'confirm', node: 'newcomer', point: 'tx.confirmOnboard.mined' },
  { flow: 'confirm', node: 'newcomer', point: 'member.registration-completed' },
  // The bootstrap node's own membership (docs/protocol.md#members-and-node-keys): register, help itself, confirm.
  { flow: 'register (membership)', node: 'first', point: 'register.key-sealed' },
  { flow: 'register (membership)', node: 'first', point: 'tx.requestOnboard.sent' },
  { flow: 'help (membership)', node: 'first', point: 'tx.fulfillOnboard.stored' },
  { flow: 'confirm (membership)', node: 'first', point: 'tx.confirmOnboard.stored' },
  { flow: 'confirm (membership)', node: 'first', point: 'member.registration-completed' },
]

const spec = (c: Case) => (c.nth ? `${c.point}#${c.nth}` : c.point)
const key = (c: Case) => `${c.node}:${spec(c)}`

/**
 * The cases `npm test` runs (each is a devnet of its own, about a minute): bootstrap, where a crash once lost `M`, and
 * complete, whose recovery spans a sealed secret and a confirmation not yet sent. A helper killed around its
 * `fulfillOnboard` and a newcomer killed after its request are in `npm test` through test/crash.test.ts; every point
 * runs with `npm run crash`.
 */
const SLICE: string[] = ['first:tx.bootstrap.stored', 'newcomer:complete.secret-sealed']

const selected = process.env.CRASH_POINTS === 'all' ? CASES : CASES.filter((c) => SLICE.includes(key(c)))

function exitedBySigkill(node: NodeProcess): boolean {
  return node.child.signalCode === 'SIGKILL'
}

function exitedOtherwise(node: NodeProcess): boolean {
  return node.child.exitCode !== null || (node.child.signalCode !== null && node.child.signalCode !== 'SIGKILL')
}

function waitExit(node: NodeProcess, timeoutMs = 30_000): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node did not exit')), timeoutMs)
    node.child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

async function events(devnet: Devnet, eventName: 'OnboardRequested' | 'Onboarded' | 'OnboardConfirmed') {
  const logs = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName, fromBlock: 0n, strict: true })
  return logs.map((l) => l.args as { requestId: bigint; requester?: Address })
}

async function bootstraps(devnet: Devnet) {
  const logs = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'Bootstrapped', fromBlock: 0n, strict: true })
  return logs.map((l) => l.args.xPub)
}

type Status = { state: string; xPub: Address | null; memberId: string | null }

async function status(node: NodeProcess): Promise<Status | undefined> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return undefined
  return hostCall<Status>(node, 'GET', '/status').catch(() => undefined)
}

async function sealkey(node: NodeProcess): Promise<Hex> {
  const res = await fetch(`${node.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })
  assert.equal(res.status, 200)
  return ((await res.json()) as { key: Hex }).key
}

/**
 * Runs one case. `kills` counts the processes that died by SIGKILL (each restarted at once, without the hook); any
 * other exit fails the case.
 */
async function runCase(c: Case, dir: string) {
  const lines: string[] = []
  const devnet = await runDevnet({ nodes: 0, dir, print: (l) => lines.push(l), auto: true })
  let kills = 0
  try {
    // Node 1's gas key is the bootstrapper: it sends bootstrap() through its own outbox (crash-safe like every tx).
    const hash = await devnet.owner.writeContract({
      address: devnet.registry,
      abi: keyManagerAbi,
      functionName: 'setBootstrapper',
      args: [devAccount(1).address],
    })
    await devnet.publicClient.waitForTransactionReceipt({ hash })
    const armed = (who: Case['node']): Record<string, string> => (c.node === who ? { KEYMANAGER_KILL_AT: spec(c) } : {})
    const first = await devnet.addNode({ auto: DEVNET_AUTO_ROTATE, env: armed('first') })

    /** Restarts every node the hook killed; fails on any other exit. */
    const supervise = async () => {
      for (const node of devnet.nodes) {
        assert.ok(!exitedOtherwise(node), `node ${devnet.nodes.indexOf(node) + 1} exited on its own (code ${node.child.exitCode}, ${node.child.signalCode})`)
        if (exitedBySigkill(node)) {
          kills++
          await devnet.restartNode(node)
        }
      }
    }
    const until = async (what: string, done: () => Promise<boolean>, timeoutMs = 240_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        await supervise()
        if (await done()) return
        assert.ok(Date.now() < deadline, `${what} within ${timeoutMs / 1000} s (kill point ${spec(c)}); last lines: ${lines.slice(-3).join(' | ')}`)
        await new Promise((r) => setTimeout(r, 250))
      }
    }

    // Bootstrap, as an operator does it: POST /bootstrap until the node is ready, restarting it if it died.
    await until('node 1 bootstrapped', async () => {
      const s = await status(first)
      if (s?.state === 'ready') return true
      if (!s) return false
      await hostCall(first, 'POST', '/bootstrap').catch(async (error: unknown) => {
        // The kill point fired during the call: the connection drops; the loop restarts the node.
        await waitExit(first, 10_000).catch(() => {
          throw error
        })
      })
      return false
    })
    await until('node 1 a member (its own request answered and confirmed)', async () => (await status(first))?.memberId != null)

    const newcomer = await devnet.addNode({ auto: DEVNET_AUTO, env: armed('newcomer') })
    await until('node 2 ready and a member', async () => {
      const s = await status(newcomer)
      return s?.state === 'ready' && s.memberId != null
    })
    await until('every request confirmed', async () => (await events(devnet, 'OnboardConfirmed')).length >= 2)
    // A node that died at a late point (after its last chain step) is restarted and must come back ready.
    await until('both nodes up and ready', async () => (await status(first))?.state === 'ready' && (await status(newcomer))?.state === 'ready')

    assert.equal(kills, 1, `the kill point ${spec(c)} was reached and killed its process exactly once`)

    // Exactly once on chain.
    const [boots, requested, onboarded, confirmed] = await Promise.all([
      bootstraps(devnet),
      events(devnet, 'OnboardRequested'),
      events(devnet, 'Onboarded'),
      events(devnet, 'OnboardConfirmed'),
    ])
    assert.equal(boots.length, 1, 'one bootstrap')
    const requesters = requested.map((e) => e.requester!.toLowerCase())
    assert.equal(requested.length, 2, `one request per node, got ${requesters.join(', ')}`)
    assert.equal(new Set(requesters).size, 2, 'two different request keys')
    assert.deepEqual(onboarded.map((e) => e.requestId).sort(), requested.map((e) => e.requestId).sort(), 'each request answered once')
    assert.deepEqual(confirmed.map((e) => e.requestId).sort(), requested.map((e) => e.requestId).sort(), 'each request confirmed once')

    // No nonce gap or reuse, nothing reverted.
    for (const index of [1, 2]) {
      const stored = await outboxAgainstChain(devnet, index)
      assertNoNonceGapOrReuse(stored, `node ${index}`)
      for (const e of stored.entries) assert.equal(e.receiptStatus, 'success', `node ${index}: ${e.label} (nonce ${e.nonce}) did not revert`)
    }

    // Both ready, members with distinct member ids, on the registry's master key, serving the same pod keys.
    const xPub = boots[0]!.toLowerCase()
    const [s1, s2] = [(await status(first))!, (await status(newcomer))!]
    for (const s of [s1, s2]) {
      assert.equal(s.state, 'ready')
      assert.equal(s.xPub?.toLowerCase(), xPub, 'the node serves the registry master key')
    }
    assert.deepEqual([s1.memberId, s2.memberId].sort(), requested.map((e) => e.requestId.toString()).sort(), 'each node is the member of its own request')
    assert.equal(await sealkey(first), await sealkey(newcomer), 'both nodes derive the same pod keys')
  } finally {
    await devnet.stop()
  }
}

describe('crash: kill -9 at each durable step, restart, exactly-once outcomes', () => {
  const root = mkdtempSync(join(tmpdir(), 'km-killpoints-'))
  after(() => rmSync(root, { recursive: true, force: true }))

  test('default: the table names every kill point at least once and only known ones', () => {
    for (const c of CASES) assert.ok(KILL_POINTS.includes(c.point), c.point)
    const covered = new Set(CASES.map((c) => c.point))
    // A freshness mark that was sent and never used costs nothing but its gas: its `sent` step is left to the others.
    const missing = KILL_POINTS.filter((p) => !covered.has(p) && p !== 'tx.markFresh.sent')
    assert.deepEqual(missing, [], 'every kill point has a case')
    assert.ok(CASES.length >= 20)
    for (const s of SLICE) assert.ok(CASES.some((c) => key(c) === s), `slice case ${s} is in the table`)
  })

  for (const c of selected) {
    test(`default: killed at ${spec(c)} (${c.flow}, ${c.node === 'first' ? 'node 1' : 'node 2'})`, { timeout: 600_000 }, async () => {
      await runCase(c, mkdtempSync(join(root, 'case-')))
    })
  }
})
