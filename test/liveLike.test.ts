// The devnet in live-like mode (src/devnet/liveLike.ts): nodes and the owner reach anvil (osaka) only through a strict
// RPC proxy that answers as post-Osaka reth and public providers do, and read blobs by slot from a beacon node
// simulator. The walk-through and auto mode pass through them; each failure mode gives its clear error; `audit` passes
// after the beacon node pruned the blobs, from the nodes' archives and from peers.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createPublicClient, createWalletClient, http, toHex, toBlobs, type Hex } from 'viem'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { runAudit } from '../src/cli/audit.ts'
import { RATE_LIMITED, RETH_V0_AFTER_OSAKA, startStrictRpc } from '../src/devnet/liveLike.ts'
import { DEVNET_FMSPC } from '../src/devnet/pki.ts'
import { devAccount, hostCall, runDevnet, waitUntilReady, type DevnetNodeInfo } from '../src/devnet/network.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

describe('devnet, live-like: strict RPC proxy and beacon node simulator in front of anvil', () => {
  let devnet: Devnet
  let live: NonNullable<Devnet['liveLike']>
  const lines: string[] = []
  const anvilCall = async (method: string, params: unknown[]) =>
    fetch(devnet.anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })

  before(async () => {
    // 4 slots per epoch and 32 epochs kept: blobs older than 128 blocks are pruned (block n is slot n here).
    devnet = await runDevnet({
      nodes: 3,
      auto: true,
      dir: mkdtempSync(join(tmpdir(), 'km-livelike-')),
      print: (l) => lines.push(l),
      liveLike: { beacon: { slotsPerEpoch: 4, retentionEpochs: 32 } },
    })
    live = devnet.liveLike!
  })
  after(async () => {
    await devnet?.stop()
  })

  test('default: bootstrap and auto onboarding pass through the strict RPC and the beacon simulator, with v1 sidecars and bounded log reads', async () => {
    assert.ok(await devnet.verify(), lines.join('\n'))
    assert.equal(live.rpc.refused.v0Sidecar, 0, 'every blob tx (the owner\'s bootstrap, the nodes\' requests and answers) went out as v1')
    assert.equal(live.rpc.refused.logRange, 0)
    assert.ok(live.rpc.widestLogRange <= 1000n, `widest eth_getLogs: ${live.rpc.widestLogRange} blocks`)
    // The helpers read the newcomers' quotes and the newcomers their answers from the beacon simulator, by slot, with
    // the hashes as a repeated parameter, and never through the deprecated route.
    assert.ok(live.beacon.answered.blobs >= 4, JSON.stringify(live.beacon.answered))
    assert.equal(live.beacon.answered.commaJoined, 0)
    assert.equal(live.beacon.answered.sidecars410, 0)
    // The two answers our client never provokes, asked for directly: Grandine's 400 on comma-joined hashes, and 410 on
    // the deprecated blob_sidecars route.
    const hash = `0x01${'00'.repeat(31)}`
    const joined = await fetch(`${live.beacon.url}/eth/v1/beacon/blobs/1?versioned_hashes=${hash},${hash}`)
    assert.equal(joined.status, 400)
    assert.match(((await joined.json()) as { message: string }).message, /versioned_hashes: expected a 32-byte hex hash per parameter/)
    assert.equal(live.beacon.answered.commaJoined, 1)
    const sidecars = await fetch(`${live.beacon.url}/eth/v1/beacon/blob_sidecars/1`)
    assert.equal(sidecars.status, 410)
    assert.match(((await sidecars.json()) as { message: string }).message, /blob_sidecars is deprecated since Fulu/)
    assert.equal(live.beacon.answered.sidecars410, 1)
  })

  test('error: the strict RPC refuses a v0 sidecar with reth\'s message, a log range over 1,000 blocks, and a burst over its rate', async () => {
    const account = devAccount(12)
    const client = createPublicClient({ chain: devnet.chain, transport: http(devnet.info.rpcUrl, { retryCount: 0, timeout: 60_000 }) })
    const wallet = createWalletClient({ account, chain: devnet.chain, transport: http(devnet.info.rpcUrl, { retryCount: 0, timeout: 60_000 }) })
    const blobs = toBlobs({ data: toHex('a v0 sidecar after osaka') })
    await assert.rejects(
      sendBlobTransaction({ walletClient: wallet, publicClient: client, to: account.address, data: '0x', blobs, sidecarVersion: 0 }),
      (error: Error) => error.message.includes(RETH_V0_AFTER_OSAKA),
    )
    assert.equal(live.rpc.refused.v0Sidecar, 1)
    // The same payload, with the sidecar version discovered (eth_config through the proxy): v1, accepted and mined.
    const sent = await sendBlobTransaction({ walletClient: wallet, publicClient: client, to: account.address, data: '0x', blobs })
    assert.equal(sent.receipt.status, 'success')

    await anvilCall('anvil_mine', ['0x44c']) // 1,100 blocks
    const head = await client.getBlockNumber({ cacheTime: 0 })
    await assert.rejects(
      client.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, fromBlock: 0n, toBlock: head }),
      (error: Error) => /query exceeds max block range 1000/.test(error.message),
    )
    assert.equal(live.rpc.refused.logRange, 1)

    // The rate limit, on a proxy of its own in front of the same anvil with its clock held still (on a loaded machine
    // a burst of real requests spreads over seconds, and the bucket refills meanwhile): 10 calls a second, 25 at once.
    let clock = 1_000_000
    const limitedRpc = await startStrictRpc({ upstream: devnet.anvil.rpcUrl, requestsPerSecond: 10, now: () => clock })
    try {
      const call = () =>
        fetch(limitedRpc.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' }).then(
          (res) => res.json() as Promise<{ result?: Hex; error?: { code: number; message: string } }>,
        )
      const burst = await Promise.all(Array.from({ length: 25 }, call))
      const limited = burst.filter((answer) => answer.error?.code === RATE_LIMITED.code)
      assert.equal(limited.length, 15, JSON.stringify(burst))
      assert.equal(limited[0]!.error!.message, RATE_LIMITED.message)
      assert.ok(burst.filter((answer) => !answer.error).every((answer) => answer.result === toHex(devnet.chain.id)))
      assert.equal(limitedRpc.refused.rateLimited, 15)
      // Half a second later the bucket holds 5 calls again.
      clock += 500
      const later = await Promise.all(Array.from({ length: 8 }, call))
      assert.equal(later.filter((answer) => answer.error?.code === RATE_LIMITED.code).length, 3)
    } finally {
      await limitedRpc.close()
    }
  })

  test('default: a newcomer started 1,100 blocks later catches up in ranges of at most 1,000 blocks and joins by itself', async () => {
    const refusedBefore = live.rpc.refused.logRange
    const node = await devnet.addNode({ auto: { register: true, help: true, confirmations: 0, pollIntervalMs: 250, jitterMs: [200, 400], slotMs: 1000, maxBatch: 50, bumpAfterBlocks: 3 } })
    await waitUntilReady(node)
    assert.equal(live.rpc.refused.logRange, refusedBefore, 'no node asked for a wider range')
  })

  test('error: a beacon node that is not a supernode (Lighthouse, Prysm) gives its clear error; a supernode then serves the blob', async () => {
    const newcomer = await devnet.addNode({ auto: false })
    const helper: DevnetNodeInfo = devnet.nodes[0]!
    live.beacon.mode = 'lighthouse-not-supernode'
    const reg = await hostCall<{ enckey: Hex; requestId: string }>(newcomer, 'POST', '/register')
    const refused = async () => {
      const res = await fetch(`${helper.hostUrl}/helper/${reg.requestId}`, { method: 'POST', headers: { authorization: `Bearer ${helper.hostToken}` } })
      return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } }
    }
    for (const mode of ['lighthouse-not-supernode', 'prysm-not-supernode'] as const) {
      live.beacon.mode = mode
      const { status, body } = await refused()
      assert.equal(status, 502, JSON.stringify(body))
      assert.equal(body.error?.code, 'upstream_failed')
      assert.match(body.error!.message, /not a supernode/)
    }
    assert.ok(live.beacon.answered.notSupernode >= 2)
    live.beacon.mode = 'supernode'
    // The helper (or an auto helper that got there first) answers; the newcomer completes through its host API.
    await fetch(`${helper.hostUrl}/helper/${reg.requestId}`, { method: 'POST', headers: { authorization: `Bearer ${helper.hostToken}` } })
    const deadline = Date.now() + 60_000
    for (;;) {
      const res = await fetch(`${newcomer.hostUrl}/register/${reg.enckey}`, { method: 'POST', headers: { authorization: `Bearer ${newcomer.hostToken}` } })
      if (res.ok) break
      assert.ok(Date.now() < deadline, `newcomer did not complete: ${await res.text()}`)
      await new Promise((r) => setTimeout(r, 500))
    }
    await waitUntilReady(newcomer)
  })

  test('default: after pruning, audit fails on the beacon alone with a pointer to archives, and passes from the nodes\' archives or from peers', async () => {
    const root = ['--root-ca', join(devnet.devnetDir, 'pki', 'root.pem')]
    const base = ['--rpc', devnet.info.rpcUrl, '--registry', devnet.registry, ...root, '--json']
    const run = async (extra: string[]) => {
      const out: string[] = []
      const code = await runAudit([...base, ...extra], (l) => out.push(l), () => {})
      return {
        code,
        report: JSON.parse(out.join('\n')) as {
          ok: boolean
          entries: { what: string; onChain: string; block: string; blockTime: number; ok: boolean; reason: string | null; judgedAt: string | null; collateral: string | null; keptRefused: string | null }[]
        },
      }
    }
    // The collateral of the bootstrap's time, as an operator keeps it (issued an hour before the bootstrap block).
    const bootstrapBlock = await devnet.publicClient.getBlock({ blockNumber: 1n })
    const kept = join(devnet.devnetDir, 'collateral-then.json')
    writeFileSync(kept, JSON.stringify(devnet.pki.collateral({ issuedAt: Number(bootstrapBlock.timestamp) - 3600 })))
    const handedOut = (report: Awaited<ReturnType<typeof run>>['report']) =>
      report.entries.filter((e) => e.onChain === 'bootstrapped' || e.onChain === 'fulfilled' || e.onChain === 'confirmed')

    const beaconOnly = await run(['--blobs', live.beacon.url, '--collateral', kept])
    assert.equal(beaconOnly.code, 1)
    const bootstrap = beaconOnly.report.entries.find((e) => e.what === 'bootstrap')!
    assert.equal(bootstrap.ok, false)
    assert.match(bootstrap.reason!, /pruned these blobs/)
    assert.match(bootstrap.reason!, /--archive/)
    assert.ok(live.beacon.answered.pruned > 0)

    // From the nodes' archives: every answered request judged with the collateral its helper kept with the decision, at
    // the time the helper judged it; the bootstrap quote (judged by no helper) with the operator's file, at its block time.
    const fromArchives = await run(['--blobs', live.beacon.url, '--collateral', kept, ...devnet.nodes.flatMap((n) => ['--archive', n.dir])])
    assert.equal(fromArchives.code, 0, JSON.stringify(fromArchives.report.entries.filter((e) => !e.ok)))
    const judged = handedOut(fromArchives.report)
    assert.ok(judged.length >= 5, JSON.stringify(judged))
    assert.deepEqual(
      judged.map((e) => [e.what, e.ok, e.collateral, e.judgedAt, e.keptRefused]),
      judged.map((e) => (e.what === 'bootstrap' ? [e.what, true, 'file', 'block time', null] : [e.what, true, 'kept', 'decision time', null])),
    )

    // A tampered archive: a copy of the archive of the node that kept the most, its collateral edited (a TCB level
    // re-rated). The audit refuses that collateral, says so, and takes the same decision's collateral from a peer.
    const keptBy = devnet.nodes
      .map((n) => {
        const db = new Database(join(n.dir, 'keymanager.sqlite'), { readonly: true })
        try {
          return { node: n, decisions: (db.prepare('SELECT COUNT(*) AS n FROM decision_collateral').get() as { n: number }).n }
        } finally {
          db.close()
        }
      })
      .sort((a, b) => b.decisions - a.decisions)[0]!
    assert.ok(keptBy.decisions >= 1, 'a helper kept the collateral of the quotes it answered')
    const tampered = join(devnet.devnetDir, 'tampered.sqlite')
    const source = new Database(join(keptBy.node.dir, 'keymanager.sqlite'), { readonly: true })
    await source.backup(tampered)
    source.close()
    const edit = new Database(tampered)
    assert.ok(edit.prepare("UPDATE kept_collateral SET collateral = replace(collateral, 'OutOfDate', 'UpToDate')").run().changes >= 1)
    edit.close()
    const fromTampered = await run(['--blobs', live.beacon.url, '--collateral', kept, '--archive', tampered, ...devnet.nodes.flatMap((n) => ['--archive', n.dir])])
    assert.equal(fromTampered.code, 0, JSON.stringify(fromTampered.report.entries.filter((e) => !e.ok)))
    const refusedKept = handedOut(fromTampered.report).filter((e) => e.keptRefused !== null)
    assert.equal(refusedKept.length, keptBy.decisions, JSON.stringify(fromTampered.report.entries))
    for (const entry of refusedKept) {
      assert.match(entry.keptRefused!, /archive .*tampered\.sqlite: collateral_invalid: kept collateral does not hash to its address/)
      assert.deepEqual([entry.ok, entry.collateral, entry.judgedAt], [true, 'kept', 'decision time'])
    }

    // From peers' public archives, with only today's collateral (the devnet PCCS mints it at its first request, dated a
    // minute before): every answered request is judged with the collateral its helper kept, served by the peers. The
    // bootstrap quote has none: if its block is older than the PCCS collateral's issue date it cannot be judged at its
    // time, so it is judged now and the entry says so, else at its time. Which side it falls on depends on how fast the
    // devnet started, so the expectation is computed from its block time and the issue date.
    const fromPeers = await run(['--pccs', devnet.pccsUrl, ...devnet.nodes.flatMap((n) => ['--peer', n.hostUrl])])
    assert.equal(fromPeers.code, 0, JSON.stringify(fromPeers.report.entries.filter((e) => !e.ok)))
    const tcb = (await (await fetch(`${devnet.pccsUrl}/tdx/certification/v4/tcb?fmspc=${DEVNET_FMSPC.slice(2)}`)).json()) as { tcbInfo: { issueDate: string } }
    const qe = (await (await fetch(`${devnet.pccsUrl}/tdx/certification/v4/qe/identity`)).json()) as { enclaveIdentity: { issueDate: string } }
    const issued = Math.max(Date.parse(tcb.tcbInfo.issueDate), Date.parse(qe.enclaveIdentity.issueDate)) / 1000
    const peers = handedOut(fromPeers.report)
    assert.ok(peers.length >= 5, JSON.stringify(peers))
    for (const entry of peers) {
      assert.ok(entry.ok, JSON.stringify(entry))
      if (entry.what !== 'bootstrap') assert.deepEqual([entry.collateral, entry.judgedAt], ['kept', 'decision time'], JSON.stringify(entry))
      else {
        assert.equal(entry.collateral, 'pccs')
        assert.equal(entry.judgedAt, entry.blockTime < issued ? 'now' : 'block time', `${entry.what} in block ${entry.block} at ${entry.blockTime}, collateral issued ${issued}`)
      }
    }

    // The same with a collateral file issued one second after the bootstrap block (and valid now): the bootstrap quote
    // is older than every collateral at hand, so it is judged now with the file; every request with its kept collateral.
    const later = join(devnet.devnetDir, 'collateral-after-bootstrap.json')
    const bootstrapEntry = peers.find((e) => e.what === 'bootstrap')!
    const issuedAfter = bootstrapEntry.blockTime + 1
    assert.ok(issuedAfter <= Date.now() / 1000, 'setup: the bootstrap block is in the past')
    writeFileSync(later, JSON.stringify(devnet.pki.collateral({ issuedAt: issuedAfter })))
    const fromPeersDated = await run(['--collateral', later, ...devnet.nodes.flatMap((n) => ['--peer', n.hostUrl])])
    assert.equal(fromPeersDated.code, 0, JSON.stringify(fromPeersDated.report.entries.filter((e) => !e.ok)))
    const dated = handedOut(fromPeersDated.report)
    assert.deepEqual(
      dated.map((e) => [e.what, e.ok, e.collateral, e.judgedAt]),
      dated.map((e) => [e.what, true, ...(e.what === 'bootstrap' ? ['file', 'now'] : ['kept', 'decision time'])]),
    )
    // Through the whole suite (onboarding, helping, the member-set and event-hint reads of auto mode), the only range the
    // strict RPC refused is the test's own over-wide read above.
    assert.equal(live.rpc.refused.logRange, 1, `widest range asked for: ${live.rpc.widestLogRange} blocks`)
  })
})
