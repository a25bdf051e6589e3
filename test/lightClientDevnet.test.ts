// The light client against a real anvil and the devnet beacon server (docs/protocol.md#verified-chain-view): anvil block →
// signed light-client data → LightclientSpec → a verified header whose block hash and state root are anvil's; how the
// server finalizes; a second anvil as a fork signed outside the committee; a restart from the sealed store on real
// SQLite; the committee rotating and Fulu activating on a followed anvil.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { LightClientError } from '../src/chain/lightClient/errors.ts'
import { createLightClientHeaderSource } from '../src/chain/lightClient/lightClient.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { startDevnetBeacon, type DevnetBeacon } from '../src/devnet/beaconServer.ts'
import { devFileSealProvider } from '../src/secret/seal.ts'
import { openDatabase } from '../src/store/database.ts'
import { createLightClientStoreTable } from '../src/store/lightClientStore.ts'
import { clientsFor, fundedAccount } from './registryFixture.ts'
import { silentLogger } from './lightClientFixtures.ts'

const cleanups: (() => Promise<void> | void)[] = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function anvilWithBeacon(options: Partial<Parameters<typeof startDevnetBeacon>[0]> = {}): Promise<{ anvil: Anvil; beacon: DevnetBeacon; send(): Promise<{ blockNumber: bigint; blockHash: Hex }> }> {
  const anvil = await startAnvil()
  cleanups.push(() => anvil.stop())
  const beacon = await startDevnetBeacon({ rpcUrl: anvil.rpcUrl, ...options })
  cleanups.push(() => beacon.stop())
  const { publicClient, walletFor } = clientsFor(anvil.rpcUrl)
  const wallet = walletFor(await fundedAccount(anvil.rpcUrl))
  return {
    anvil,
    beacon,
    async send() {
      const hash = await wallet.sendTransaction({ to: wallet.account.address, value: 1n })
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      return { blockNumber: receipt.blockNumber, blockHash: receipt.blockHash }
    },
  }
}

describe('light client on the devnet beacon server', () => {
  let net: Awaited<ReturnType<typeof anvilWithBeacon>>
  before(async () => {
    net = await anvilWithBeacon()
  })

  test('default: an anvil block comes back as a verified header with anvil’s block hash and state root', async () => {
    const lc = createLightClientHeaderSource({ chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger })
    const sent = await net.send()
    const header = await lc.latest()
    const block = await clientsFor(net.anvil.rpcUrl).publicClient.getBlock({ blockNumber: sent.blockNumber })
    assert.equal(header.finalized, true)
    assert.equal(header.blockNumber, block.number)
    assert.equal(header.blockHash, block.hash)
    assert.equal(header.stateRoot, block.stateRoot)
    assert.equal(header.timestamp, block.timestamp)
    assert.equal(header.slot, BigInt(net.beacon.anchor.slot) + block.number - net.beacon.anchor.blockNumber)
    const status = lc.status()
    assert.equal(status.finalized?.blockHash, block.hash)
    assert.equal(status.lastError, null)
  })

  test('finality: the server mines the depth blocks a block needs only when asked, and never for its own blocks', async () => {
    const lc = createLightClientHeaderSource({ chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger })
    await lc.latest()
    const { publicClient, testClient } = clientsFor(net.anvil.rpcUrl)
    const mined = () => net.beacon.follower.counters().minedBlocks
    const head = await publicClient.getBlockNumber()
    const before = mined()
    await lc.latest()
    await lc.latest()
    assert.equal(mined(), before, 'nothing new: nothing mined')
    assert.equal(await publicClient.getBlockNumber(), head)

    const sent = await net.send()
    assert.equal((await lc.latest()).blockNumber, sent.blockNumber)
    assert.equal(mined(), before + net.beacon.follower.finalityDepth)

    // Blocks a test mines itself are finalized the same way.
    await testClient.mine({ blocks: 5 })
    const top = await publicClient.getBlockNumber()
    assert.equal((await lc.latest()).blockNumber, top)
  })

  test('reorg: after evm_revert the server follows the new branch, and the client moves on once it is longer', async () => {
    const lc = createLightClientHeaderSource({ chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger })
    const { publicClient, testClient } = clientsFor(net.anvil.rpcUrl)
    const snapshot = await testClient.snapshot()
    const old = await net.send()
    assert.equal((await lc.latest()).blockHash, old.blockHash)
    await testClient.revert({ id: snapshot })
    await testClient.mine({ blocks: 6 })
    const header = await lc.latest()
    const block = await publicClient.getBlock({ blockNumber: header.blockNumber })
    assert.equal(header.blockHash, block.hash, 'the verified header is on the new branch')
    assert.ok(header.blockNumber > old.blockNumber)
  })
})

describe('light client: a second anvil as a fork', () => {
  test('security: a fork served with light-client data signed by keys outside the committee is refused', async () => {
    const honest = await anvilWithBeacon({ seed: `0x${'01'.repeat(32)}` })
    // Same devnet chain (validators root, forks, slots) but its own committee: an attacker's chain.
    const fork = await anvilWithBeacon({ seed: `0x${'02'.repeat(32)}`, genesisValidatorsRoot: honest.beacon.chainSpec.genesisValidatorsRoot })
    const dir = mkdtempSync(join(tmpdir(), 'km-lc-fork-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const persistence = { table: createLightClientStoreTable(openDatabase(join(dir, 'node.sqlite'))), seal: devFileSealProvider(dir) }
    const options = { chain: honest.beacon.chain, checkpointRoot: honest.beacon.checkpointRoot, logger: silentLogger, persistence }

    const sent = await honest.send()
    const lc = createLightClientHeaderSource({ ...options, beaconUrl: honest.beacon.url })
    assert.equal((await lc.latest()).blockHash, sent.blockHash)

    // The host now points the node at the fork (holding, say, its own allow-list entry).
    await fork.send()
    await fork.send()
    const misled = createLightClientHeaderSource({ ...options, beaconUrl: fork.beacon.url })
    await assert.rejects(misled.sync(), (error: unknown) => error instanceof LightClientError && error.reason === 'invalid_update' && /Invalid aggregate signature/.test(error.message))
    assert.equal((await misled.latest()).blockHash, sent.blockHash, 'the node stays on the verified chain')

    // A fresh node sent to the fork for its bootstrap finds no such checkpoint there.
    const fresh = createLightClientHeaderSource({ chain: honest.beacon.chain, checkpointRoot: honest.beacon.checkpointRoot, beaconUrl: fork.beacon.url, logger: silentLogger })
    await assert.rejects(fresh.latest(), (error: unknown) => error instanceof LightClientError && error.reason === 'beacon_unavailable' && /HTTP 404/.test(error.message))
  })
})

describe('light client: restart, rotation and a fork on a followed anvil', () => {
  test('restart: a node resumes from its sealed store in SQLite, without a new bootstrap', async () => {
    const net = await anvilWithBeacon()
    const dir = mkdtempSync(join(tmpdir(), 'km-lc-restart-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const open = () => ({ table: createLightClientStoreTable(openDatabase(join(dir, 'node.sqlite'))), seal: devFileSealProvider(dir) })
    const options = { chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger }
    const first = await net.send()
    assert.equal((await createLightClientHeaderSource({ ...options, persistence: open() }).latest()).blockHash, first.blockHash)

    const restarted = createLightClientHeaderSource({ ...options, persistence: open() })
    const second = await net.send()
    assert.equal((await restarted.sync()).blockHash, second.blockHash)
    assert.equal(restarted.status().source, 'sealed-store')
  })

  test('rotation and fork: committee 1 from slot 8192 and Fulu from epoch 256, on anvil blocks', async () => {
    const net = await anvilWithBeacon({ anchorSlot: 8188, electraForkEpoch: 0, fuluForkEpoch: 256 })
    const lc = createLightClientHeaderSource({ chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger })
    const first = await net.send() // slot 8189; finality mines 8190, 8191 and is signed at 8192 by committee 1
    assert.equal((await lc.latest()).blockHash, first.blockHash)
    assert.deepEqual(lc.status().knownCommitteePeriods, [0, 1])
    assert.equal(lc.status().committeePeriod, 0)
    const second = await net.send() // slot 8192: period 1, Fulu
    const header = await lc.sync()
    assert.equal(header.blockHash, second.blockHash)
    assert.equal(header.slot, 8192n)
    assert.equal(lc.status().committeePeriod, 1)
    const served = (await (await fetch(`${net.beacon.url}/eth/v1/beacon/light_client/finality_update`)).json()) as { version: string }
    assert.equal(served.version, 'fulu')

    // 100 blocks later a new node still gets period 0's update: the server rebuilds blocks it no longer keeps.
    const { publicClient, testClient } = clientsFor(net.anvil.rpcUrl)
    await testClient.mine({ blocks: 100 })
    const fresh = createLightClientHeaderSource({ chain: net.beacon.chain, checkpointRoot: net.beacon.checkpointRoot, beaconUrl: net.beacon.url, logger: silentLogger })
    const top = await fresh.sync()
    assert.equal(top.blockHash, (await publicClient.getBlock({ blockNumber: top.blockNumber })).hash)
    assert.deepEqual(fresh.status().knownCommitteePeriods, [0, 1])
  })
})
