// Disaster recovery end to end on one devnet (docs/protocol.md#guardians, docs/protocol.md#recovery): two auto-mode
// nodes; five guardians made with `keymanager guardian keygen`, a 3-of-5 set; the nodes escrow generation 1 by
// themselves, once for the network; a rotation commits generation 2 (generation 1 stays valid in its overlap) and the
// nodes escrow it too; the guardians change and both generations are escrowed again to the new set, once each, with two
// nodes asked at the same moment. Every guardian checks its shares (`guardian verify`); then every node is wiped. A fresh
// enclave registers; a release to a rogue build (a measurement the registry does not allow) is refused; two released
// shares of each generation leave the recovery pending, the third restores the same xPub of each generation and the
// same `/sealkey` and `/sealkey?generation=1`, and the recovered node onboards the next one with both. Host lies on the
// guardian's side: a request log rewritten to the host's key, and withheld chain updates.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { bytesToHex, hexToBytes, keccak256, type Address, type Hex } from 'viem'
import { createGenerationsClient, generationCalldata } from '../src/chain/generations.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { runEscrow } from '../src/cli/escrow.ts'
import { runGuardian } from '../src/cli/guardian.ts'
import { DEVNET_AUTO_ROTATE, devAccount, hostCall, runDevnet, waitUntilReady, type NodeProcess } from '../src/devnet/network.ts'
import { startRpcProxy, type RpcProxy } from '../src/devnet/rpcProxy.ts'
import { rogueBuild } from './devnetNodes.ts'
import { waitFor } from './wait.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
const asPod = (name: string) => ({ headers: { 'x-keymanager-pod': name } })

async function sealkey(node: { podUrl: string }, generation?: number): Promise<{ key: Hex; generation: number }> {
  const res = await fetch(`${node.podUrl}/sealkey${generation === undefined ? '' : `?generation=${generation}`}`, asPod('app'))
  if (res.status !== 200) throw new Error(`/sealkey answered ${res.status}`)
  return (await res.json()) as { key: Hex; generation: number }
}


async function currentGeneration(node: { podUrl: string }): Promise<number> {
  const res = await fetch(`${node.podUrl}/generations`, asPod('app'))
  if (res.status !== 200) return 0
  return ((await res.json()) as { current: number }).current
}

async function run(fn: (out: (l: string) => void, err: (l: string) => void) => Promise<number>) {
  const out: string[] = []
  const err: string[] = []
  const code = await fn(
    (l) => out.push(l),
    (l) => err.push(l),
  )
  return { code, out: out.join('\n'), err: err.join('\n') }
}

describe('disaster recovery with 3 of 5 guardians on a devnet', () => {
  let dir: string
  let devnet: Devnet
  let nodes: NodeProcess[]
  let registry: ReturnType<typeof createRegistryClient>
  let generations: ReturnType<typeof createGenerationsClient>
  const guardianFiles: string[] = []
  let gasKeyFile: string
  let viewFlags: string[]
  let xPubBefore: Address
  let sealkeyBefore: Hex
  let xPub2: Address
  let sealkey2: Hex
  const proxies: RpcProxy[] = []

  async function owner(data: Hex) {
    const hash = await devnet.owner.sendTransaction({ to: devnet.registry, data })
    const receipt = await devnet.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success', `owner transaction ${hash} reverted`)
  }

  /** `keymanager guardian release` as guardian i (1-based), through `rpc` (default the devnet's). */
  const release = (i: number, rpc = devnet.anvil.rpcUrl, extra: string[] = []) =>
    run((out, err) =>
      runGuardian(
        [
          'release',
          '--guardian-key-file',
          guardianFiles[i - 1]!,
          '--gas-key-file',
          gasKeyFile,
          '--rpc',
          rpc,
          '--registry',
          devnet.registry,
          ...viewFlags,
          '--blobs',
          devnet.anvil.rpcUrl,
          '--blobs-kind',
          'anvil',
          '--pccs',
          pccsUrl(),
          '--root-ca',
          join(dir, 'devnet', 'pki', 'root.pem'),
          '--json',
          ...extra,
        ],
        out,
        err,
      ),
    )
  const pccsUrl = () => devnet.pccsUrl

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'km-recovery-'))
    // The nodes run by themselves (help, membership, rotation, escrow); the nodes added after the disaster do not.
    devnet = await runDevnet({ nodes: 2, dir, print: () => {}, auto: true, autoSettings: DEVNET_AUTO_ROTATE })
    nodes = devnet.nodes
    registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    generations = createGenerationsClient({ publicClient: devnet.publicClient, address: devnet.registry })
    await waitFor('two members', async () => (await generations.memberCount()) === 2n)
    // Guardians pay their own gas (the devnet funds accounts 0-12; nodes use 1, 2, …).
    gasKeyFile = join(dir, 'guardian-gas.key')
    writeFileSync(gasKeyFile, bytesToHex(devAccount(12).getHdKey().privateKey!), { mode: 0o600 })
    // The guardian's own view of the chain: the light client from the same trust root a node measures (its chainView
    // setting), against the devnet beacon server (untrusted, as the RPC is).
    const measured = JSON.parse(readFileSync(nodes[0]!.measuredPath, 'utf8')) as { chain?: { verification?: string } }
    const host = JSON.parse(readFileSync(nodes[0]!.configPath, 'utf8')) as { chain: { beaconUrl?: string } }
    assert.equal(measured.chain?.verification, 'light-client')
    viewFlags = ['--view-settings', guardianViewFile(measured), '--beacon', host.chain.beaconUrl!]
  })
  after(async () => {
    for (const proxy of proxies) await proxy.close()
    await devnet?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** Each generation's escrows to `set` on chain (one per generation is what the nodes must leave). */
  const escrowsTo = async (set: bigint) => {
    const out: number[] = []
    for (const g of [1n, 2n]) out.push((await generations.escrowsPublished(g)).filter((e) => e.guardianSet === set).length)
    return out
  }

  /** Every guardian opens and checks its share of each generation (`guardian verify`). */
  async function everyGuardianVerifies(set: number, gens: number[]) {
    for (const [i, file] of guardianFiles.entries()) {
      const verified = await run((out, err) => runGuardian(['verify', '--guardian-key-file', file, '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry, ...viewFlags], out, err))
      assert.equal(verified.code, 0, verified.err)
      for (const g of gens) assert.match(verified.out, new RegExp(`generation ${g}: share ${i + 1} of guardian set ${set} matches`))
    }
  }

  let pubkeys: Hex
  test('guardians: keygen, a 3-of-5 set; the nodes escrow their generation by themselves, once; every guardian verifies its share', async () => {
    xPubBefore = await registry.xPub()
    sealkeyBefore = (await sealkey(nodes[0]!)).key
    assert.equal((await sealkey(nodes[1]!)).key, sealkeyBefore)
    const keys: Hex[] = []
    for (let i = 1; i <= 5; i++) {
      const file = join(dir, `guardian-${i}.key`)
      const made = await run((out, err) => runGuardian(['keygen', '--key-file', file, '--json'], out, err))
      assert.equal(made.code, 0, made.err)
      keys.push((JSON.parse(made.out) as { pubkey64: Hex }).pubkey64)
      guardianFiles.push(file)
    }
    pubkeys = `0x${keys.map((k) => k.slice(2)).join('')}`
    await owner(generationCalldata.setGuardians(pubkeys, 3))

    // No host asks: a member escrows generation 1 to the active set (the designated one), the other finds it done.
    await waitFor('generation 1 escrowed by the nodes', async () => (await generations.generationInfo(1n)).escrowGuardianSet === 1n)
    const token = join(nodes[0]!.dir, 'host.token')
    const published = await run((out, err) => runEscrow('escrow', ['publish', '--node', nodes[0]!.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(published.code, 0, published.err)
    const answer = JSON.parse(published.out) as { threshold: number; count: number; generations: { generation: number; status: string }[] }
    assert.deepEqual([answer.threshold, answer.count], [3, 5])
    assert.deepEqual(answer.generations.map((g) => [g.generation, g.status]), [[1, 'escrowed']], 'nothing left to escrow')
    const status = await run((out, err) => runEscrow('escrow', ['status', '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry], {}, out, err))
    assert.equal(status.code, 0, status.err)
    assert.match(status.out, /active guardian set 1: 3 of 5/)
    assert.match(status.out, /generation 1 \(0x[0-9a-fA-F]{40}\): escrowed to set 1/)
    await everyGuardianVerifies(1, [1])
    assert.deepEqual(await escrowsTo(1n), [1, 0], 'one escrow of generation 1 for the network, not one per node')
  })

  test('a rotation, then a guardian change: the nodes escrow every generation once per set; two nodes asked at once leave one escrow', async () => {
    // Planned: generation 1 stays valid during its overlap, so it must be recoverable too.
    await owner(generationCalldata.startRotation(false, 3600n, 0n))
    await waitFor('generation 2 on both nodes', async () => (await Promise.all(nodes.map(currentGeneration))).every((g) => g === 2))
    xPub2 = await registry.xPub()
    sealkey2 = (await sealkey(nodes[0]!)).key
    assert.notEqual(sealkey2, sealkeyBefore)
    assert.equal((await sealkey(nodes[1]!, 1)).key, sealkeyBefore)
    await waitFor('generation 2 escrowed by the nodes', async () => (await generations.generationInfo(2n)).escrowGuardianSet === 1n)
    assert.deepEqual(await escrowsTo(1n), [1, 1])

    // The guardians change (the same keys in a new set; the devnet's delay is 0, so it is active at once). Both nodes
    // are asked to escrow at the same moment, racing each other and their own auto loops.
    await owner(generationCalldata.setGuardians(pubkeys, 3))
    const answers = await Promise.all(nodes.map((n) => hostCall<{ guardianSet: string; generations: { generation: number; status: string; reason?: string }[] }>(n, 'POST', '/escrow')))
    for (const a of answers) {
      assert.equal(a.guardianSet, '2')
      for (const g of a.generations) assert.ok(g.status === 'published' || g.status === 'escrowed', JSON.stringify(a))
    }
    assert.equal((await generations.generationInfo(1n)).escrowGuardianSet, 2n)
    assert.equal((await generations.generationInfo(2n)).escrowGuardianSet, 2n)
    assert.deepEqual(await escrowsTo(2n), [1, 1], `one escrow per generation to set 2: ${JSON.stringify(answers)}`)
    await everyGuardianVerifies(2, [1, 2])
  })

  let fresh: NodeProcess
  let freshKey: Address
  let freshRequest: bigint

  test('disaster: every node wiped; release is refused to a quote whose measurement is not allowed', async () => {
    for (const node of nodes) {
      await new Promise<void>((done) => {
        node.child.once('exit', () => done())
        node.child.kill('SIGKILL')
      })
      rmSync(node.dir, { recursive: true, force: true })
    }
    // A rogue build registers (its request is on chain; no helper is left to refuse it) and the owner names it.
    const rogue = await devnet.addNode({ configure: rogueBuild('rogue') })
    const rogueReg = await hostCall<{ requestId: string }>(rogue, 'POST', '/register')
    await owner(generationCalldata.startRecovery(BigInt(rogueReg.requestId)))
    const refused = await release(1)
    assert.equal(refused.code, 1, refused.out)
    assert.match(refused.err, /release refused \(measurement_not_allowed\)/)
    assert.equal(await generations.releasedShares(BigInt(rogueReg.requestId), 1n), 0n, 'nothing was released to the rogue request')
    assert.equal(await generations.releasedShares(BigInt(rogueReg.requestId), 2n), 0n)

    fresh = await devnet.addNode()
    const reg = await hostCall<{ enckey: Address; requestId: string }>(fresh, 'POST', '/register')
    freshKey = reg.enckey
    freshRequest = BigInt(reg.requestId)
    const opened = await run((out, err) =>
      runEscrow('recover', ['start', reg.requestId, '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry, '--owner-key-file', ownerKeyFile()], {}, out, err),
    )
    assert.equal(opened.code, 0, opened.err)
    assert.equal(await generations.recoveryRequest(), freshRequest)
  })

  /** The guardian keeps its own copy of the trust root (the node's files are wiped in the disaster). */
  const guardianViewFile = (measured: unknown) => {
    const file = join(dir, 'guardian-view.json')
    writeFileSync(file, JSON.stringify(measured))
    return file
  }

  const ownerKeyFile = () => {
    const file = join(dir, 'owner.key')
    writeFileSync(file, bytesToHex(devAccount(0).getHdKey().privateKey!), { mode: 0o600 })
    return file
  }

  test('host lies to a guardian: a request log rewritten to the host key is refused (event_mismatch)', async () => {
    const proxy = await startRpcProxy({ upstream: devnet.anvil.rpcUrl })
    proxies.push(proxy)
    const requestedTopic = keccak256(new TextEncoder().encode('OnboardRequested(uint256,address,bytes,bytes32,uint64,bytes32)'))
    const hostKey = 'ab'.repeat(64)
    proxy.hooks.response = (call, result) => {
      if (call.method !== 'eth_getLogs' || !Array.isArray(result)) return result
      // The request's pubkey64 sits in the log data; the host puts its own key there.
      return result.map((l: { topics: Hex[]; data: Hex }) => {
        if (l.topics[0] !== requestedTopic) return l
        // abi.encode(bytes pubkey64, bytes32, uint64, bytes32): the 64 key bytes are the data's last 64.
        const data = hexToBytes(l.data)
        data.set(hexToBytes(`0x${hostKey}`), data.length - 64)
        return { ...l, data: bytesToHex(data) }
      })
    }
    const lied = await release(2, proxy.url)
    assert.equal(lied.code, 1, lied.out)
    assert.match(lied.err, /release refused \(event_mismatch\)/)
    assert.equal(await generations.releasedShares(freshRequest, 1n), 0n)
    assert.equal(await generations.releasedShares(freshRequest, 2n), 0n)
  })

  test('host lies to a guardian: withheld beacon updates stall the release (stale_chain_view), nothing is released', async () => {
    const beaconAt = viewFlags.indexOf('--beacon')
    assert.ok(beaconAt >= 0, 'the devnet nodes verify the chain with the light client, and so does the guardian')
    const proxy = await startRpcProxy({ upstream: viewFlags[beaconAt + 1]! })
    proxies.push(proxy)
    // The host withholds from the moment the guardian sends its freshness mark (the first transaction it sends, seen on
    // the guardian's RPC, also the host's): from then on the beacon URL replays what it already served, so no block
    // at or after the mark is ever shown.
    const rpc = await startRpcProxy({ upstream: devnet.anvil.rpcUrl })
    proxies.push(rpc)
    rpc.hooks.request = (call) => {
      if (call.method === 'eth_sendRawTransaction') proxy.freeze()
      return undefined
    }
    const flags = [...viewFlags]
    flags[beaconAt + 1] = proxy.url
    const saved = viewFlags
    viewFlags = flags
    try {
      const stalled = await release(2, rpc.url, ['--freshness-timeout', '8'])
      assert.equal(stalled.code, 1, stalled.out)
      assert.match(stalled.err, /stale_chain_view/)
    } finally {
      viewFlags = saved
    }
    assert.equal(await generations.releasedShares(freshRequest, 1n), 0n)
    assert.equal(await generations.releasedShares(freshRequest, 2n), 0n)
  })

  test('two released shares of each generation leave the recovery pending; the third restores both generations: the same xPubs and sealkeys', async () => {
    const token = join(fresh.dir, 'host.token')
    for (const i of [1, 3]) {
      const released = await release(i)
      assert.equal(released.code, 0, released.err)
      assert.deepEqual((JSON.parse(released.out) as { generations: { generation: string; status: string }[] }).generations.map((g) => [g.generation, g.status]), [['1', 'released'], ['2', 'released']])
    }
    const pending = await run((out, err) => runEscrow('recover', [freshKey, '--node', fresh.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(pending.code, 1, pending.err)
    const state = JSON.parse(pending.out) as { state: string; generations: { valid: number[]; needed: number }[] }
    assert.equal(state.state, 'pending')
    assert.deepEqual(state.generations.map((g) => [g.valid, g.needed]), [[[1, 3], 3], [[1, 3], 3]])
    assert.notEqual(await fetch(`${fresh.podUrl}/sealkey`, asPod('app')).then((r) => r.status), 200, 'not ready with two shares')

    const third = await release(5)
    assert.equal(third.code, 0, third.err)
    const done = await run((out, err) => runEscrow('recover', [freshKey, '--node', fresh.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(done.code, 0, done.err + done.out)
    const recovered = JSON.parse(done.out) as { state: string; xPub: Address; generation: number; recovered: number[] }
    assert.equal(recovered.state, 'recovered')
    assert.equal(recovered.xPub.toLowerCase(), xPub2.toLowerCase())
    assert.equal(recovered.generation, 2)
    assert.deepEqual(recovered.recovered, [1, 2])
    await waitUntilReady(fresh)
    const now = await sealkey(fresh)
    assert.deepEqual([now.key, now.generation], [sealkey2, 2], 'the same sealkey as before the disaster')
    assert.equal((await sealkey(fresh, 1)).key, sealkeyBefore, 'and the same generation-1 sealkey')
    const listed = (await (await fetch(`${fresh.podUrl}/generations`, asPod('app'))).json()) as { generations: { generation: number; xPub: Address; held: boolean }[] }
    assert.deepEqual(
      listed.generations.map((g) => [g.generation, g.xPub.toLowerCase(), g.held]),
      [
        [1, xPubBefore.toLowerCase(), true],
        [2, xPub2.toLowerCase(), true],
      ],
    )
    assert.equal((await registry.getRequest(freshRequest)).status, 'confirmed')
    assert.equal(await generations.recoveryRequest(), 0n)
    // Asked again, the node re-sends its confirmation only while the request is pending: it is confirmed now.
    const twice = await run((out, err) => runEscrow('recover', [freshKey, '--node', fresh.hostUrl, '--token-file', token], {}, out, err))
    assert.equal(twice.code, 1)
    assert.match(twice.err, /already_confirmed/)
    // A guardian asked again once the recovery ended has nothing to release to.
    const late = await release(2)
    assert.equal(late.code, 1)
    assert.match(late.err, /no_recovery/)

    // The recovered node onboards the next one as a helper.
    const next = await devnet.addNode()
    const reg = await hostCall<{ enckey: Address }>(next, 'POST', '/register')
    await hostCall(fresh, 'POST', `/helper/${reg.enckey}`)
    await hostCall(next, 'POST', `/register/${reg.enckey}`)
    assert.equal((await sealkey(next)).key, sealkey2)
    assert.equal((await sealkey(next, 1)).key, sealkeyBefore)
  })
})
