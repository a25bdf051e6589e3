// Disaster recovery end to end on one devnet (docs/protocol.md#guardians, docs/protocol.md#recovery): five guardians
// made with `keymanager guardian keygen`, a 3-of-5 set, a node escrows its generation (`escrow publish`), every guardian
// checks its share (`guardian verify`); then every node is wiped. A fresh enclave registers; a release to a rogue build
// (a measurement the registry does not allow) is refused; two released shares leave the recovery pending, the third
// restores the same xPub and the same sealkeys, and the recovered node onboards the next one. Host lies on the
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
import { devAccount, hostCall, runDevnet, waitUntilReady, type NodeProcess } from '../src/devnet/network.ts'
import { startRpcProxy, type RpcProxy } from '../src/devnet/rpcProxy.ts'
import { rogueBuild } from './devnetNodes.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
const asPod = (name: string) => ({ headers: { 'x-keymanager-pod': name } })

async function sealkey(node: { podUrl: string }): Promise<{ key: Hex; generation: number }> {
  const res = await fetch(`${node.podUrl}/sealkey`, asPod('app'))
  if (res.status !== 200) throw new Error(`/sealkey answered ${res.status}`)
  return (await res.json()) as { key: Hex; generation: number }
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
    devnet = await runDevnet({ nodes: 2, dir, print: () => {} })
    nodes = devnet.nodes
    registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    generations = createGenerationsClient({ publicClient: devnet.publicClient, address: devnet.registry })
    // Guardians pay their own gas (the devnet funds accounts 0-12; nodes use 1, 2, …).
    gasKeyFile = join(dir, 'guardian-gas.key')
    writeFileSync(gasKeyFile, bytesToHex(devAccount(12).getHdKey().privateKey!), { mode: 0o600 })
    // The guardian's own view of the chain: the light client from the same trust root a node measures (its chainView
    // setting), against the devnet beacon server (untrusted, as the RPC is).
    const measured = JSON.parse(readFileSync(nodes[0]!.measuredPath, 'utf8')) as { chainView?: { verification?: string } }
    const host = JSON.parse(readFileSync(nodes[0]!.configPath, 'utf8')) as { chain: { beaconUrl?: string } }
    assert.equal(measured.chainView?.verification, 'light-client')
    viewFlags = ['--view-settings', guardianViewFile(measured), '--beacon', host.chain.beaconUrl!]
  })
  after(async () => {
    for (const proxy of proxies) await proxy.close()
    await devnet?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('guardians: keygen, a 3-of-5 set, the node escrows its generation, every guardian verifies its share', async () => {
    xPubBefore = await registry.xPub()
    sealkeyBefore = (await sealkey(nodes[0]!)).key
    assert.equal((await sealkey(nodes[1]!)).key, sealkeyBefore)
    const pubkeys: Hex[] = []
    for (let i = 1; i <= 5; i++) {
      const file = join(dir, `guardian-${i}.key`)
      const made = await run((out, err) => runGuardian(['keygen', '--key-file', file, '--json'], out, err))
      assert.equal(made.code, 0, made.err)
      pubkeys.push((JSON.parse(made.out) as { pubkey64: Hex }).pubkey64)
      guardianFiles.push(file)
    }
    await owner(generationCalldata.setGuardians(`0x${pubkeys.map((k) => k.slice(2)).join('')}`, 3))

    const token = join(nodes[0]!.dir, 'host.token')
    const published = await run((out, err) => runEscrow('escrow', ['publish', '--node', nodes[0]!.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(published.code, 0, published.err)
    const answer = JSON.parse(published.out) as { threshold: number; count: number; generations: { generation: number; status: string }[] }
    assert.deepEqual([answer.threshold, answer.count], [3, 5])
    assert.deepEqual(answer.generations.map((g) => [g.generation, g.status]), [[1, 'published']])
    // Again: nothing new to escrow.
    const again = await run((out, err) => runEscrow('escrow', ['publish', '--node', nodes[1]!.hostUrl, '--token-file', join(nodes[1]!.dir, 'host.token'), '--json'], {}, out, err))
    assert.deepEqual((JSON.parse(again.out) as typeof answer).generations.map((g) => [g.generation, g.status]), [[1, 'escrowed']])
    const status = await run((out, err) => runEscrow('escrow', ['status', '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry], {}, out, err))
    assert.equal(status.code, 0, status.err)
    assert.match(status.out, /active guardian set 1: 3 of 5/)
    assert.match(status.out, /generation 1 \(0x[0-9a-fA-F]{40}\): escrowed to set 1/)

    for (const [i, file] of guardianFiles.entries()) {
      const verified = await run((out, err) => runGuardian(['verify', '--guardian-key-file', file, '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry, ...viewFlags], out, err))
      assert.equal(verified.code, 0, verified.err)
      assert.match(verified.out, new RegExp(`generation 1: share ${i + 1} of guardian set 1 matches`))
    }
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
  })

  test('two released shares leave the recovery pending; the third restores the same xPub and sealkeys', async () => {
    const token = join(fresh.dir, 'host.token')
    for (const i of [1, 3]) {
      const released = await release(i)
      assert.equal(released.code, 0, released.err)
      assert.deepEqual((JSON.parse(released.out) as { generations: { status: string }[] }).generations.map((g) => g.status), ['released'])
    }
    const pending = await run((out, err) => runEscrow('recover', [freshKey, '--node', fresh.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(pending.code, 1, pending.err)
    const state = JSON.parse(pending.out) as { state: string; generations: { valid: number[]; needed: number }[] }
    assert.equal(state.state, 'pending')
    assert.deepEqual(state.generations.map((g) => [g.valid, g.needed]), [[[1, 3], 3]])
    assert.notEqual(await fetch(`${fresh.podUrl}/sealkey`, asPod('app')).then((r) => r.status), 200, 'not ready with two shares')

    const third = await release(5)
    assert.equal(third.code, 0, third.err)
    const done = await run((out, err) => runEscrow('recover', [freshKey, '--node', fresh.hostUrl, '--token-file', token, '--json'], {}, out, err))
    assert.equal(done.code, 0, done.err + done.out)
    const recovered = JSON.parse(done.out) as { state: string; xPub: Address; recovered: number[] }
    assert.equal(recovered.state, 'recovered')
    assert.equal(recovered.xPub.toLowerCase(), xPubBefore.toLowerCase())
    assert.deepEqual(recovered.recovered, [1])
    await waitUntilReady(fresh)
    assert.equal((await sealkey(fresh)).key, sealkeyBefore, 'the same sealkey as before the disaster')
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
    assert.equal((await sealkey(next)).key, sealkeyBefore)
  })
})
