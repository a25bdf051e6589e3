// Nodes that run themselves (auto mode), end to end on a real anvil with separate sidecar processes: after node 1
// is bootstrapped through the host API, nobody calls a host API; the newcomers register, get answered, complete.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { DEVNET_AUTO, hostCall, runDevnet } from '../src/devnet/network.ts'
import { assertNoNonceGapOrReuse, fulfillTransactions, outboxAgainstChain } from './chainChecks.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

describe('auto: six nodes join by themselves', () => {
  let devnet: Devnet
  const lines: string[] = []

  before(async () => {
    // The newcomers start one after another (each a sidecar process), so their requests land seconds apart. A helper
    // jitter wider than that spacing lets the first helper find several requests waiting and answer them in one blob,
    // which is what this test shows; with the devnet's 1.5-2.5 s jitter the outcome depended on how fast processes
    // started on the machine.
    const autoSettings = { ...(DEVNET_AUTO as object), jitterMs: [12_000, 15_000] } as typeof DEVNET_AUTO
    devnet = await runDevnet({ nodes: 6, dir: mkdtempSync(join(tmpdir(), 'km-auto-')), print: (l) => lines.push(l), auto: true, autoSettings })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('default: everyone ready with no host calls, in fewer fulfill transactions than newcomers', async () => {
    assert.equal(await devnet.verify(), true, lines.join('\n'))
    const onboarded = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'Onboarded', fromBlock: 0n, strict: true })
    const ids = onboarded.map((log) => (log.args as { requestId: bigint }).requestId)
    assert.equal(new Set(ids).size, ids.length, 'no request is fulfilled twice')
    assert.equal(ids.length, 5, `five newcomers onboarded: ${ids.join(',')}`)
    const fulfills = await fulfillTransactions(devnet.publicClient, devnet.registry)
    assert.ok(fulfills.length < 5, `${fulfills.length} fulfillOnboard transactions for 5 newcomers\n${lines.join('\n')}`)
    // A node is ready before its confirmOnboard is mined: give the confirmations a moment.
    let confirmed = 0
    for (let tries = 0; tries < 100 && confirmed < 5; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 200))
      confirmed = (await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'OnboardConfirmed', fromBlock: 0n, strict: true })).length
    }
    assert.equal(confirmed, 5, 'every newcomer confirmed by itself')
    for (let i = 1; i <= 6; i++) assertNoNonceGapOrReuse(await outboxAgainstChain(devnet, i), `node ${i}`)
    // Auto mode decided on the verified chain view: every node's light client, none on trusted RPC reads.
    for (const node of devnet.info.nodes) assert.equal((await hostCall<{ chainView: { mode: string } }>(node, 'GET', '/status')).chainView.mode, 'light-client')
  })
})
