// RPC outage end to end: a devnet whose anvil keeps its chain in a `--state` file is stopped while a
// newcomer waits for its `Onboarded`, then started again from that file on the same port. Nobody restarts a node or
// calls a host API: the sidecars back off, recover by themselves, and the newcomer is answered after the outage.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { DEVNET_AUTO, runDevnet, waitUntilReady } from '../src/devnet/network.ts'
import { assertNoNonceGapOrReuse, outboxAgainstChain, waitAllFulfilled } from './chainChecks.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

const NODES = 2

/** The messages a node logged (its pino JSON lines in node.log). */
function logMessages(dir: string): string[] {
  return readFileSync(join(dir, 'node.log'), 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        return [(JSON.parse(line) as { msg?: string }).msg ?? '']
      } catch {
        return []
      }
    })
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('outage: anvil stopped mid-run and restarted from its state on the same port', () => {
  let devnet: Devnet
  let restarted: Anvil | undefined
  const lines: string[] = []
  const dir = mkdtempSync(join(tmpdir(), 'km-outage-'))
  const stateFile = join(dir, 'anvil-state.json')

  before(async () => {
    devnet = await runDevnet({ nodes: NODES, dir, print: (l) => lines.push(l), auto: true, anvilStateFile: stateFile })
  })
  after(async () => {
    await devnet?.stop()
    await restarted?.stop()
  })

  test('default: the nodes recover by themselves, everyone becomes ready, each request is fulfilled once', async () => {
    const q = { address: devnet.registry, abi: keyManagerAbi, fromBlock: 0n, strict: true } as const
    const requests = () => devnet.publicClient.getContractEvents({ ...q, eventName: 'OnboardRequested' })
    const requestedBefore = (await requests()).length

    const newcomer = await devnet.addNode({ auto: DEVNET_AUTO })
    await until(async () => (await requests()).length > requestedBefore, 'the newcomer requested onboarding', 60_000)
    // Helpers wait a random 1.5-3.5 s before answering (DEVNET_AUTO.jitterMs): stop the chain inside that window.
    await devnet.anvil.stop()
    const headAtStop = BigInt((JSON.parse(readFileSync(stateFile, 'utf8')) as { best_block_number: number }).best_block_number)
    await until(
      () => devnet.nodes.every((node) => logMessages(node.dir).includes('chain RPC failing; retrying with backoff')),
      'every node noticed the outage',
    )
    // Long enough for the helpers' jitter to run out against a dead RPC and for the backoff to grow past a few
    // seconds (500 ms doubling, 10 s cap): recovery then waits on the backoff, not on a fresh poll.
    await new Promise((r) => setTimeout(r, 6_000))

    restarted = await startAnvil({ chainId: foundry.id, port: devnet.anvil.port, stateFile, extraArgs: ['--accounts', String(NODES + 11)] })
    for (const node of devnet.nodes) await waitUntilReady(node)
    await waitAllFulfilled(devnet)

    const requested = await requests()
    const onboarded = await devnet.publicClient.getContractEvents({ ...q, eventName: 'Onboarded' })
    const ids = onboarded.map((l) => (l.args as { requestId: bigint }).requestId)
    assert.equal(new Set(ids).size, ids.length, 'no request fulfilled twice')
    assert.deepEqual(
      [...ids].sort(),
      requested.map((l) => (l.args as { requestId: bigint }).requestId).sort(),
      'every request fulfilled',
    )
    const mine = requested.at(-1)!
    const answer = onboarded.find((l) => (l.args as { requestId: bigint }).requestId === (mine.args as { requestId: bigint }).requestId)!
    assert.ok(mine.blockNumber <= headAtStop, 'the request was on chain before the outage')
    assert.ok(answer.blockNumber > headAtStop, `the newcomer was answered after the outage (block ${answer.blockNumber}, chain stopped at ${headAtStop})\n${lines.join('\n')}`)
    // Not checked here: that no fulfillOnboard reverted. Nodes 1 and 2 both help, and two ready helpers can answer in
    // the same instant (the second reverts: the contract keeps the request fulfilled once), outage or not.

    for (const [i, node] of devnet.nodes.entries()) {
      const messages = logMessages(node.dir)
      assert.equal(messages.filter((m) => m === 'chain RPC failing; retrying with backoff').length, 1, `node ${i + 1}: one warning for the outage`)
      assert.equal(messages.filter((m) => m === 'chain RPC reachable again').length, 1, `node ${i + 1}: one line when it ended`)
      assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, i + 1), `node ${i + 1}`)
    }
    assert.ok(devnet.nodes.includes(newcomer))
  })
})
