// Crash safety end to end (docs/protocol.md#node-state "tx outbox"): sidecar processes killed with SIGKILL at the worst moment,
// restarted on their data dirs; nonces neither reused nor skipped, each request fulfilled exactly once.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { ChildProcess } from 'node:child_process'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { DEVNET_AUTO, runDevnet, waitUntilReady } from '../src/devnet/network.ts'
import { assertNoNonceGapOrReuse, outboxAgainstChain, waitAllFulfilled } from './chainChecks.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

function exited(child: ChildProcess, timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('process did not exit')), timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

async function onboardedEvents(devnet: Devnet) {
  const logs = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'Onboarded', fromBlock: 0n, strict: true })
  return logs.map((l) => (l.args as { requestId: bigint }).requestId)
}

async function requestCount(devnet: Devnet) {
  const logs = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'OnboardRequested', fromBlock: 0n, strict: true })
  return logs.length
}

describe('crash: kill -9 at the worst moments', () => {
  let devnet: Devnet
  const lines: string[] = []

  before(async () => {
    // Node 1 is the only helper; it carries the kill point that kills it between storing and broadcasting its fulfillOnboard (src/node/killPoints.ts).
    devnet = await runDevnet({
      nodes: 1,
      dir: mkdtempSync(join(tmpdir(), 'km-crash-')),
      print: (l) => lines.push(l),
      auto: true,
      nodeEnv: (i) => (i === 1 ? { KEYMANAGER_KILL_AT: 'tx.fulfillOnboard.stored' } : undefined),
    })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('default: a helper killed between signing and broadcasting resumes with no nonce gap or reuse', async () => {
    const helper = devnet.nodes[0]!
    const newcomer = await devnet.addNode({ auto: DEVNET_AUTO })
    const died = await exited(helper.child)
    assert.equal(died.signal, 'SIGKILL', 'the hook killed the helper')
    const stored = await outboxAgainstChain(devnet, 1)
    // The fulfil is the helper's last tx (a freshness mark may come before it); the chain has every earlier one.
    const fulfil = stored.entries.at(-1)!
    assert.equal(fulfil.label, 'fulfillOnboard')
    assert.equal(fulfil.status, 'signed', 'stored, never broadcast')
    assert.equal(stored.chainNonce, fulfil.nonce, 'the chain never saw it')

    await devnet.restartNode(helper)
    await waitUntilReady(newcomer)
    const ids = await onboardedEvents(devnet)
    assert.deepEqual(ids, [1n], 'the request is fulfilled exactly once')
    assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, 1), 'helper after restart')

    // The restarted helper keeps going with the next nonce.
    const second = await devnet.addNode({ auto: DEVNET_AUTO })
    await waitUntilReady(second)
    await waitAllFulfilled(devnet)
    const after = await onboardedEvents(devnet)
    assert.equal(new Set(after).size, after.length, 'no request fulfilled twice')
    assert.equal(after.length, 2)
    assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, 1), 'helper after a second request')
    assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, 2), 'first newcomer')
  })

  test('default: a newcomer killed after its request and restarted with seal none registers again and completes', async () => {
    const helper = devnet.nodes[0]!
    // Stop the only helper (SIGTERM: graceful) so that the newcomer's request stays unanswered while we kill it.
    helper.child.kill('SIGTERM')
    const stopped = await exited(helper.child)
    assert.equal(stopped.code, 0, 'graceful shutdown exits 0')
    const before = await requestCount(devnet)
    const newcomer = await devnet.addNode({ auto: DEVNET_AUTO, seal: 'none' })
    const deadline = Date.now() + 60_000
    while ((await requestCount(devnet)) === before) {
      assert.ok(Date.now() < deadline, 'the newcomer requested onboarding')
      await new Promise((r) => setTimeout(r, 200))
    }
    newcomer.child.kill('SIGKILL')
    await exited(newcomer.child)

    await devnet.restartNode(helper)
    await devnet.restartNode(newcomer)
    await waitUntilReady(newcomer)
    await waitAllFulfilled(devnet)
    assert.equal(await requestCount(devnet), before + 2, 'the restarted newcomer made a new request (its ephemeral key was gone)')
    const ids = await onboardedEvents(devnet)
    assert.equal(new Set(ids).size, ids.length, 'no request fulfilled twice')
    const index = devnet.nodes.indexOf(newcomer) + 1
    assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, index), 'restarted newcomer')
    assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, 1), 'helper')
  })
})
