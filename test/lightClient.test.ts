// The light client against crafted beacon data served through the real routes (docs/protocol.md#verified-chain-view):
// the 2/3 threshold, committee rotation and the attacks on it, bad branches and signatures, forks, the clock, the
// sealed store. The same client against anvil and the devnet beacon server is in lightClientDevnet.test.ts.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { bytesToHex } from 'viem'
import { devnetChain, LIGHT_CLIENT_CHAINS } from '../src/chain/lightClient/chains.ts'
import { LightClientError } from '../src/chain/lightClient/errors.ts'
import { createLightClientHeaderSource, type LightClientOptions } from '../src/chain/lightClient/lightClient.ts'
import { LIGHT_CLIENT_STORE_SEAL_LABEL } from '../src/chain/lightClient/sealedStore.ts'
import { devnetCommittee } from '../src/devnet/beaconChain.ts'
import { createAesGcmSealer, type SealProvider } from '../src/secret/seal.ts'
import { openDatabase } from '../src/store/database.ts'
import { createLightClientStoreTable } from '../src/store/lightClientStore.ts'
import { cloneJson, craftChain, fakeExecution, flipHex, recordingLogger, scriptedBeacon, silentLogger, TEST_SPEC } from './lightClientFixtures.ts'

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const servers: { close(): Promise<void> }[] = []
after(async () => {
  for (const s of servers) await s.close()
})

async function beacon(script: Parameters<typeof scriptedBeacon>[0]) {
  const server = await scriptedBeacon(script)
  servers.push(server)
  return server
}

function refused(reason: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof LightClientError, `expected a LightClientError, got ${String(error)}`)
    assert.equal(error.reason, reason, error.message)
    if (message) assert.match(error.message, message)
    return true
  }
}

function testSeal(key = new Uint8Array(32).fill(1)): SealProvider {
  return { name: 'dev-file', persistent: true, insecure: true, ...createAesGcmSealer(key) }
}

// Period 0, slots 40…60; every block names the block two slots earlier as finalized.
const base = craftChain({ slots: range(40, 60) })
const checkpoint = base.root(40)

function client(url: string, extra: Partial<LightClientOptions> = {}) {
  return createLightClientHeaderSource({ chain: base.chain, checkpointRoot: checkpoint, beaconUrl: url, logger: silentLogger, ...extra })
}

describe('light client (crafted chain)', () => {
  test('default: bootstrap from the checkpoint, then a finality update moves the finalized header', async () => {
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const lc = client(server.url)
    const header = await lc.sync()
    const expected = fakeExecution(48)
    assert.deepEqual(header, {
      slot: 48n,
      beaconRoot: base.root(48),
      blockNumber: 48n,
      blockHash: bytesToHex(expected.blockHash),
      stateRoot: bytesToHex(expected.stateRoot),
      timestamp: BigInt(expected.timestamp),
      finalized: true,
    })
    assert.equal(lc.status().source, 'bootstrap')
    assert.equal(lc.status().finalized?.slot, 48)
    assert.equal(lc.status().committeePeriod, 0)
  })

  test('threshold: 341 of 512 signers do not finalize, 342 do', async () => {
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50, { participation: 341 })) })
    const lc = client(server.url)
    assert.equal((await lc.sync()).slot, 40n, '341 signers: a valid signature, but not 2/3: the finalized header stays at the checkpoint')
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(50, { participation: 342 }))
    assert.equal((await lc.sync()).slot, 48n)
  })

  test('error: a signature by keys outside the committee', async () => {
    const outsiders = devnetCommittee(new Uint8Array(32).fill(99), 0).secretKeys
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50, { signingKeys: outsiders })) })
    const lc = client(server.url)
    await assert.rejects(lc.sync(), refused('invalid_update', /Invalid aggregate signature/))
    assert.equal(lc.status().finalized?.slot, 40)
    assert.equal(lc.status().lastError?.reason, 'invalid_update')
  })

  test('error: a bad finality branch', async () => {
    const bad = cloneJson(base.json('LightClientFinalityUpdate', base.finality(50)))
    const data = bad.data as { finality_branch: string[] }
    data.finality_branch[3] = flipHex(data.finality_branch[3]!)
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: bad })
    await assert.rejects(client(server.url).sync(), refused('invalid_update', /Invalid finality header merkle branch/))
  })

  test('error: a bad execution branch', async () => {
    const bad = cloneJson(base.json('LightClientFinalityUpdate', base.finality(50)))
    const header = (bad.data as { finalized_header: { execution_branch: string[] } }).finalized_header
    header.execution_branch[0] = flipHex(header.execution_branch[0]!)
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: bad })
    await assert.rejects(client(server.url).sync(), refused('invalid_update', /Finalized Header is not valid Light Client Header/))
  })

  test('error: a tampered execution state root (finalized and attested headers)', async () => {
    for (const which of ['finalized_header', 'attested_header'] as const) {
      const bad = cloneJson(base.json('LightClientFinalityUpdate', base.finality(50)))
      const execution = (bad.data as Record<string, { execution: { state_root: string } }>)[which]!.execution
      execution.state_root = flipHex(execution.state_root)
      const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: bad })
      await assert.rejects(client(server.url).sync(), refused('invalid_update', /(Finalized|Attested) Header is not [vV]alid Light Client Header/))
    }
  })

  test('error: a bootstrap for another root, or with a bad committee branch', async () => {
    const other = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(41)) } })
    await assert.rejects(client(other.url).sync(), refused('bootstrap_root_mismatch', new RegExp(`not the measured checkpoint ${checkpoint}`)))

    const bad = cloneJson(base.json('LightClientBootstrap', base.bootstrap(40)))
    const data = bad.data as { current_sync_committee_branch: string[] }
    data.current_sync_committee_branch[2] = flipHex(data.current_sync_committee_branch[2]!)
    const branch = await beacon({ bootstrap: { [checkpoint]: bad } })
    await assert.rejects(client(branch.url).sync(), refused('invalid_bootstrap', /Invalid currentSyncCommittee merkle branch/))

    const missing = await beacon({})
    await assert.rejects(client(missing.url).latest(), refused('beacon_unavailable', /HTTP 404/), 'nothing verified yet: latest() has nothing to serve')
  })

  test('latest(): the last verified header while the beacon node fails or lies; the failure is in status', async () => {
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const { lines, logger } = recordingLogger()
    const lc = client(server.url, { logger })
    assert.equal((await lc.latest()).slot, 48n)
    const bad = cloneJson(base.json('LightClientFinalityUpdate', base.finality(54)))
    const aggregate = (bad.data as { sync_aggregate: { sync_committee_signature: string } }).sync_aggregate
    // Another block's signature: a valid BLS point, over the wrong message.
    aggregate.sync_committee_signature = bytesToHex(base.finality(53).syncAggregate.syncCommitteeSignature)
    server.script.finality = bad
    assert.equal((await lc.latest()).slot, 48n)
    assert.equal((await lc.latest()).slot, 48n)
    assert.equal(lc.status().lastError?.reason, 'invalid_update')
    assert.equal(lines.filter((l) => l.msg.includes('serving the last verified header')).length, 1, 'one warning per distinct failure, not per poll')
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(54))
    assert.equal((await lc.latest()).slot, 52n)
    assert.equal(lc.status().lastError, null)
  })
})

describe('light client: sync committee rotation', () => {
  // Period 0 ends at slot 8191. Block 8189 is the period's update (signed at 8190, same period).
  const slots = range(8180, 8200)
  const chain = craftChain({ slots })
  const cp = chain.root(8180)

  test('rotation: the committee of period 1 is adopted from a 2/3-signed period update, across slot 8192', async () => {
    const server = await beacon({
      bootstrap: { [cp]: chain.json('LightClientBootstrap', chain.bootstrap(8180)) },
      updates: { 0: [chain.json('LightClientUpdate', chain.period(8189))] },
      finality: chain.json('LightClientFinalityUpdate', chain.finality(8200)),
    })
    const lc = createLightClientHeaderSource({ chain: chain.chain, checkpointRoot: cp, beaconUrl: server.url, logger: silentLogger })
    const header = await lc.sync()
    assert.equal(header.slot, 8198n)
    assert.deepEqual(lc.status().knownCommitteePeriods, [0, 1])
    assert.equal(lc.status().committeePeriod, 1)
    assert.equal(server.count('updates'), 1)
  })

  test('error: a period update whose next-committee branch is bad', async () => {
    const bad = cloneJson(chain.json('LightClientUpdate', chain.period(8189)))
    const data = bad.data as { next_sync_committee_branch: string[] }
    data.next_sync_committee_branch[1] = flipHex(data.next_sync_committee_branch[1]!)
    const server = await beacon({ bootstrap: { [cp]: chain.json('LightClientBootstrap', chain.bootstrap(8180)) }, updates: { 0: [bad] }, finality: chain.json('LightClientFinalityUpdate', chain.finality(8200)) })
    const lc = createLightClientHeaderSource({ chain: chain.chain, checkpointRoot: cp, beaconUrl: server.url, logger: silentLogger })
    await assert.rejects(lc.sync(), refused('invalid_update', /Invalid next sync committee merkle branch/))
    assert.deepEqual(lc.status().knownCommitteePeriods, [0])
  })

  test('security: a one-signer update carrying a fake next committee is not adopted', async () => {
    const fake = devnetCommittee(new Uint8Array(32).fill(66), 1)
    const forged = craftChain({ slots, nextCommittee: (slot) => (slot === 8189 ? fake : undefined) })
    // One real member signs block 8189, whose state carries the fake committee with a valid branch; the fake committee
    // then signs period 1. With forced updates (the `Lightclient` class), the timeout would install it.
    const oneSigner = forged.period(8189, { participation: 1 })
    const fakeSigned = chain.finality(8200, { committee: fake })
    const server = await beacon({
      bootstrap: { [cp]: chain.json('LightClientBootstrap', chain.bootstrap(8180)) },
      updates: { 0: [forged.json('LightClientUpdate', oneSigner)] },
      finality: chain.json('LightClientFinalityUpdate', fakeSigned),
    })
    const lc = createLightClientHeaderSource({ chain: chain.chain, checkpointRoot: cp, beaconUrl: server.url, logger: silentLogger })
    await assert.rejects(lc.sync(), refused('invalid_update', /No SyncCommittee for period 1/))
    assert.deepEqual(lc.status().knownCommitteePeriods, [0])
    assert.equal(lc.status().finalized?.slot, 8180)

    // The honest period update (all 512, the real next committee) is adopted; then the real committee's update passes.
    server.script.updates = { 0: [chain.json('LightClientUpdate', chain.period(8188))] }
    server.script.finality = chain.json('LightClientFinalityUpdate', chain.finality(8200))
    assert.equal((await lc.sync()).slot, 8198n)
    assert.deepEqual(lc.status().knownCommitteePeriods, [0, 1])
    const fakePubkey = bytesToHex(fake.syncCommittee.pubkeys[0]!)
    assert.notEqual(bytesToHex(chain.committee(1).syncCommittee.pubkeys[0]!), fakePubkey)
  })

  test('a boundary update (attested in period 1, signed in period 2) keeps its finality but not its committee', async () => {
    // Attested at 16383 (period 1), signed at 16384 (period 2) by committee 2: the attested state's next committee is
    // committee 2 itself, which lodestar (keying by signature period) would install as period 3's for good.
    const long = craftChain({ slots: [...slots, ...range(16375, 16392)] })
    const server = await beacon({
      bootstrap: { [cp]: long.json('LightClientBootstrap', long.bootstrap(8180)) },
      updates: { 0: [long.json('LightClientUpdate', long.period(8189))], 1: [long.json('LightClientUpdate', long.period(8199))], 2: [long.json('LightClientUpdate', long.period(16383))] },
      finality: long.json('LightClientFinalityUpdate', long.finality(16392)),
    })
    const lc = createLightClientHeaderSource({ chain: long.chain, checkpointRoot: cp, beaconUrl: server.url, logger: silentLogger })
    assert.equal((await lc.sync()).slot, 16390n)
    assert.deepEqual(lc.status().knownCommitteePeriods, [1, 2])
    // Period 3's committee is not known from the boundary update; a finality update signed by committee 3 waits for a
    // proper period-2 update instead of failing against a wrongly installed committee.
    const later = craftChain({ slots: [...slots, ...range(16375, 16392), ...range(24570, 24580)] })
    server.script.finality = later.json('LightClientFinalityUpdate', later.finality(24580))
    await assert.rejects(lc.sync(), refused('invalid_update', /No SyncCommittee for period 3/))
    server.script.updates = { 2: [later.json('LightClientUpdate', later.period(16390))] }
    assert.equal((await lc.sync()).slot, 24578n)
    assert.deepEqual(lc.status().knownCommitteePeriods, [2, 3])
  })
})

describe('light client: forks', () => {
  // Electra from genesis, Fulu from epoch 257 (slot 8224).
  const slots = range(8215, 8235)
  const forked = craftChain({ slots, spec: { fuluForkEpoch: 257 } })
  const cp = forked.root(8215)
  const lcFor = (url: string, chain = forked.chain) => createLightClientHeaderSource({ chain, checkpointRoot: cp, beaconUrl: url, logger: silentLogger })

  test('fork: Electra data before epoch 257 and Fulu data after it both verify, each under its fork version', async () => {
    const bootstrap = forked.json('LightClientBootstrap', forked.bootstrap(8215))
    const before = forked.json('LightClientFinalityUpdate', forked.finality(8220))
    const afterFork = forked.json('LightClientFinalityUpdate', forked.finality(8230))
    assert.equal(bootstrap.version, 'electra')
    assert.equal(before.version, 'electra')
    assert.equal(afterFork.version, 'fulu')
    const server = await beacon({ bootstrap: { [cp]: bootstrap }, finality: before })
    const lc = lcFor(server.url)
    assert.equal((await lc.sync()).slot, 8218n)
    server.script.finality = afterFork
    assert.equal((await lc.sync()).slot, 8228n)
  })

  test('error: Fulu-slot data signed under the Electra fork version', async () => {
    // Signed as if Fulu had not activated: the domain is Electra's, which the client does not accept after epoch 257.
    const electraOnly = craftChain({ slots, spec: { fuluForkEpoch: null } })
    const stale = forked.finality(8230, { config: electraOnly.config })
    const server = await beacon({ bootstrap: { [cp]: forked.json('LightClientBootstrap', forked.bootstrap(8215)) }, finality: forked.json('LightClientFinalityUpdate', stale) })
    await assert.rejects(lcFor(server.url).sync(), refused('invalid_update', /Invalid aggregate signature/))
  })

  test('error: data labelled with the wrong fork', async () => {
    const server = await beacon({
      bootstrap: { [cp]: forked.json('LightClientBootstrap', forked.bootstrap(8215)) },
      finality: forked.json('LightClientFinalityUpdate', forked.finality(8230), 'electra'),
    })
    await assert.rejects(lcFor(server.url).sync(), refused('fork_mismatch', /labelled electra, but slot 8230 is in fulu/))
  })

  test('error: a fork the client does not know (by name, or scheduled past what it verifies)', async () => {
    const bootstrap = { [cp]: forked.json('LightClientBootstrap', forked.bootstrap(8215)) }
    for (const version of ['gloas', 'altair', 'fulu2']) {
      const server = await beacon({ bootstrap, finality: forked.json('LightClientFinalityUpdate', forked.finality(8230), version) })
      await assert.rejects(lcFor(server.url).sync(), refused('unknown_fork', new RegExp(`does not verify: ${version}`)))
    }
    // A chain whose next fork (here at epoch 257) is one this build cannot verify: data from it is refused by name.
    const bounded = { ...forked.chain, unsupportedFromEpoch: 257, unsupportedForkName: 'gloas' }
    const server = await beacon({ bootstrap, finality: forked.json('LightClientFinalityUpdate', forked.finality(8230)) })
    await assert.rejects(lcFor(server.url, bounded).sync(), refused('unknown_fork', /fork gloas, which this client cannot verify/))
  })
})

describe('light client: clock', () => {
  const wall = { ...base.chain, slotClock: 'wall' as const }
  const at = (slot: number) => () => (TEST_SPEC.genesisTime + slot * 12) * 1000

  test('clock: a host clock in the past only stalls; one in the future admits nothing the committee did not sign', async () => {
    const server = await beacon({ bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const past = createLightClientHeaderSource({ chain: wall, checkpointRoot: checkpoint, beaconUrl: server.url, logger: silentLogger, now: at(45) })
    await assert.rejects(past.sync(), refused('invalid_update', /must not be in the future/))
    assert.equal(past.status().finalized?.slot, 40)

    const outsiders = devnetCommittee(new Uint8Array(32).fill(98), 0).secretKeys
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(50, { signingKeys: outsiders }))
    const future = createLightClientHeaderSource({ chain: wall, checkpointRoot: checkpoint, beaconUrl: server.url, logger: silentLogger, now: at(10_000_000) })
    await assert.rejects(future.sync(), refused('invalid_update', /Invalid aggregate signature/))
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(50))
    assert.equal((await future.sync()).slot, 48n)
    assert.equal(future.status().lagSlots, 10_000_000 - 48)
  })
})

describe('light client: sealed store', () => {
  const bootstrap = { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) }

  test('restart: a node resumes from its sealed store without a new bootstrap', async () => {
    const server = await beacon({ bootstrap, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const table = createLightClientStoreTable(openDatabase(':memory:'))
    const seal = testSeal()
    const first = client(server.url, { persistence: { table, seal } })
    assert.equal((await first.sync()).slot, 48n)
    assert.equal(table.get()?.finalizedSlot, 48)
    assert.equal(server.count('bootstrap'), 1)

    const second = client(server.url, { persistence: { table, seal } })
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(56))
    assert.equal((await second.sync()).slot, 54n)
    assert.equal(second.status().source, 'sealed-store')
    assert.equal(server.count('bootstrap'), 1, 'no second bootstrap')
    assert.equal(table.get()?.finalizedSlot, 54)
  })

  test('security: a store sealed under another label or another key is refused (and the node bootstraps again)', async () => {
    const server = await beacon({ bootstrap, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const table = createLightClientStoreTable(openDatabase(':memory:'))
    const seal = testSeal()
    await client(server.url, { persistence: { table, seal } }).sync()
    const good = table.get()!
    const plaintext = seal.unseal(good.sealed, LIGHT_CLIENT_STORE_SEAL_LABEL)

    const cases = [
      { name: 'another label', sealed: seal.seal(plaintext, 'keymanager.master.v1/1') },
      { name: 'another key', sealed: testSeal(new Uint8Array(32).fill(2)).seal(plaintext, LIGHT_CLIENT_STORE_SEAL_LABEL) },
      { name: 'tampered', sealed: Uint8Array.from(good.sealed, (b, i) => (i === 40 ? b ^ 1 : b)) },
    ]
    for (const { name, sealed } of cases) {
      table.put({ sealed, finalizedSlot: 48, updatedAt: 0 })
      const before = server.count('bootstrap')
      const { lines, logger } = recordingLogger()
      const lc = client(server.url, { persistence: { table, seal }, logger })
      await lc.sync()
      assert.equal(lc.status().source, 'bootstrap', name)
      assert.match(lc.status().refusedStore ?? '', /does not unseal/, name)
      assert.equal(server.count('bootstrap'), before + 1, name)
      assert.ok(lines.some((l) => l.level === 'error' && /REFUSED/.test(l.msg)), name)
    }
  })

  test('rollback: a host that restores an older sealed store only makes the view older', async () => {
    const server = await beacon({ bootstrap, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const table = createLightClientStoreTable(openDatabase(':memory:'))
    const seal = testSeal()
    const lc = client(server.url, { persistence: { table, seal } })
    await lc.sync()
    const older = table.get()!
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(58))
    assert.equal((await lc.sync()).slot, 56n)

    table.put(older)
    server.script.finality = undefined
    const restarted = client(server.url, { persistence: { table, seal } })
    assert.equal((await restarted.latest()).slot, 48n, 'the rolled-back view is older, and still a verified header')
    server.script.finality = base.json('LightClientFinalityUpdate', base.finality(58))
    assert.equal((await restarted.latest()).slot, 56n, 'and it catches up with signed updates')
  })

  test('a store for another checkpoint is set aside for a bootstrap from the measured one', async () => {
    const server = await beacon({ bootstrap: { ...bootstrap, [base.root(44)]: base.json('LightClientBootstrap', base.bootstrap(44)) }, finality: base.json('LightClientFinalityUpdate', base.finality(50)) })
    const table = createLightClientStoreTable(openDatabase(':memory:'))
    const seal = testSeal()
    await client(server.url, { persistence: { table, seal } }).sync()
    const newer = createLightClientHeaderSource({ chain: base.chain, checkpointRoot: base.root(44), beaconUrl: server.url, logger: silentLogger, persistence: { table, seal } })
    await newer.sync()
    assert.equal(newer.status().source, 'bootstrap')
    assert.equal(newer.status().refusedStore, null)
  })
})

describe('light client: options', () => {
  test('optimistic headers: refused outside a devnet; on a devnet, loud, and only N slots deep', async () => {
    assert.throws(
      () => createLightClientHeaderSource({ chain: LIGHT_CLIENT_CHAINS.mainnet, checkpointRoot: checkpoint, beaconUrl: 'http://127.0.0.1:1', optimisticConfirmations: 2 }),
      /devnet-only option/,
    )
    const server = await beacon({
      bootstrap: { [checkpoint]: base.json('LightClientBootstrap', base.bootstrap(40)) },
      finality: base.json('LightClientFinalityUpdate', base.finality(50)),
      optimistic: base.json('LightClientOptimisticUpdate', base.optimistic(55)),
    })
    const { lines, logger } = recordingLogger()
    const lc = client(server.url, { logger, optimisticConfirmations: 3 })
    assert.ok(lines.some((l) => l.level === 'warn' && /OPTIMISTIC HEADERS \(devnet only\)/.test(l.msg)))
    const first = await lc.latest()
    assert.deepEqual([first.slot, first.finalized], [50n, false], 'head 55, three confirmations: the optimistic header at 50 (finalized: 48)')
    server.script.optimistic = base.json('LightClientOptimisticUpdate', base.optimistic(58))
    const second = await lc.latest()
    assert.deepEqual([second.slot, second.finalized], [55n, false])
  })

  test('a devnet chain is announced loudly at start', () => {
    const { lines, logger } = recordingLogger()
    client('http://127.0.0.1:1', { logger })
    assert.ok(lines.some((l) => l.level === 'warn' && /TRUSTING A DEVNET SYNC COMMITTEE/.test(l.msg) && l.msg.includes(checkpoint.slice(0, 18))))
    const quiet = recordingLogger()
    createLightClientHeaderSource({ chain: LIGHT_CLIENT_CHAINS.mainnet, checkpointRoot: checkpoint, beaconUrl: 'http://127.0.0.1:1', logger: quiet.logger })
    assert.equal(quiet.lines.length, 0)
  })

  test('error: bad options', () => {
    assert.throws(() => client('http://127.0.0.1:1', { checkpointRoot: '0x1234' }), /checkpointRoot must be 32 bytes/)
    assert.throws(() => client('ftp://example.com'), /expected http\(s\)/)
    assert.throws(() => client('http://127.0.0.1:1', { optimisticConfirmations: -1 }), /integer ≥ 0/)
    assert.throws(() => devnetChain({ ...TEST_SPEC, fuluForkEpoch: -3 }), /fuluForkEpoch/)
  })
})
