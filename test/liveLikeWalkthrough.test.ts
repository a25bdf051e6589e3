// The devnet walk-through (`keymanager devnet --live-like`, no auto mode) through the live-like fakes
// (src/devnet/liveLike.ts): the owner's bootstrap, then each newcomer's /register, a helper's /helper/<id> and the
// newcomer's /register/<enckey> over the host API, all through the strict RPC proxy and the beacon node simulator.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { hostCall, runDevnet } from '../src/devnet/network.ts'

describe('devnet, live-like: the walk-through without auto mode', () => {
  let devnet: Awaited<ReturnType<typeof runDevnet>>
  const lines: string[] = []
  before(async () => {
    devnet = await runDevnet({ nodes: 2, dir: mkdtempSync(join(tmpdir(), 'km-livelike-walk-')), print: (l) => lines.push(l), liveLike: {} })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('default: bootstrap, register, help and complete pass through the strict RPC and the beacon simulator, with v1 sidecars and bounded log reads', async () => {
    assert.equal(await devnet.verify(), true, lines.join('\n'))
    const live = devnet.liveLike!
    for (const node of devnet.info.nodes) assert.equal((await hostCall<{ state: string }>(node, 'GET', '/status')).state, 'ready')
    assert.equal(live.rpc.refused.v0Sidecar, 0, 'every blob tx went out as v1')
    assert.equal(live.rpc.refused.logRange, 0)
    assert.ok(live.rpc.widestLogRange <= 1000n, `widest eth_getLogs: ${live.rpc.widestLogRange} blocks`)
    // The helper read the newcomer's quote, and the newcomer its answer, from the beacon simulator by slot.
    assert.ok(live.beacon.answered.blobs >= 2, JSON.stringify(live.beacon.answered))
    assert.equal(live.beacon.answered.commaJoined, 0)
    assert.equal(live.beacon.answered.sidecars410, 0)
  })
})
