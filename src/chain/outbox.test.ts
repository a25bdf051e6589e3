// The crash-safe outbox against a real anvil (no mocks): nonces across a crash between storing and broadcasting, fee
// bumps of stuck plain and blob transactions, and receipts taken away by reorgs (evm_snapshot / evm_revert).
// Each test runs its own anvil: automine, block gas limit and base fee are changed per test.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import pino from 'pino'
import { encodeFunctionData, hexToBytes, parseEventLogs, parseGwei, TransactionReceiptNotFoundError, type Address, type Hex } from 'viem'
import type { PrivateKeyAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { openDatabase, type Db } from '../store/database.ts'
import { createOutboxStore } from '../store/outbox.ts'
import { startAnvil, type Anvil } from '../devnet/anvil.ts'
import { buildBlobSidecars, signBlobTransaction, unwrapBlobTransaction } from './blobTransaction.ts'
import { keyManagerAbi } from './keyManagerArtifact.ts'
import { CELLS_PER_EXT_BLOB } from './kzg.ts'
import { createOutbox, type FeeCaps } from './outbox.ts'
import { blobOf, clientsFor, deployRegistryFixture, fundedAccount, hookedPublicClient } from '../../test/registryFixture.ts'

type LogLine = { level: number; msg: string; [key: string]: unknown }

const SINK: Address = '0x000000000000000000000000000000000000dEaD'

let anvil: Anvil
let clients: ReturnType<typeof clientsFor>
const open: Db[] = []

beforeEach(async () => {
  anvil = await startAnvil({ chainId: foundry.id })
  clients = clientsFor(anvil.rpcUrl)
})
afterEach(async () => {
  for (const db of open.splice(0)) if (db.open) db.close()
  await anvil?.stop()
})

function dataDir() {
  return join(mkdtempSync(join(tmpdir(), 'km-outbox-')), 'keymanager.sqlite')
}

/** An outbox over the SQLite file at `path` (opened afresh, as a restarted process would). */
function outboxAt(path: string, account: PrivateKeyAccount, options: { afterPersist?: () => void; reorgDepth?: number; feeCaps?: FeeCaps } = {}) {
  const db = openDatabase(path)
  open.push(db)
  const lines: LogLine[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) })
  const outbox = createOutbox({
    walletClient: clients.walletFor(account),
    publicClient: clients.publicClient,
    store: createOutboxStore(db),
    logger,
    now: () => Math.floor(Date.now() / 1000),
    bumpAfterBlocks: 3,
    pollIntervalMs: 20,
    ...options,
  })
  return { outbox, db, lines, count: (msg: string) => lines.filter((l) => l.msg === msg).length }
}

async function receiptOrUndefined(hash: Hex) {
  return clients.publicClient.getTransactionReceipt({ hash }).catch((error: unknown) => {
    if (error instanceof TransactionReceiptNotFoundError) return undefined
    throw error
  })
}

async function head() {
  return clients.publicClient.getBlockNumber({ cacheTime: 0 })
}

describe('createOutbox', () => {
  test('default: consecutive nonces from 0; each receipt tracked under its hash', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), account)
    const sent = []
    for (let i = 0; i < 3; i++) sent.push(await outbox.send({ label: `t${i}`, to: SINK, data: '0x' }))
    for (const { id, hash } of sent) assert.equal((await outbox.waitForReceipt(id)).hash, hash)
    assert.deepEqual(
      outbox.entries().map((e) => [e.nonce, e.status, e.minedHash]),
      sent.map((s, i) => [i, 'mined', s.hash]),
    )
    for (const [i, { hash }] of sent.entries()) assert.equal((await clients.publicClient.getTransaction({ hash })).nonce, i)
    assert.deepEqual(outbox.entriesLabelled('t1').map((e) => e.nonce), [1], 'one label’s entries only')
    assert.deepEqual(outbox.openEntries(), [], 'nothing open once all are mined')
  })

  test('crash: a tx stored but never broadcast is broadcast on start; no nonce reused or skipped', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const path = dataDir()
    const first = outboxAt(path, account, {
      afterPersist: () => {
        throw new Error('process killed between storing and broadcasting')
      },
    })
    // t0 goes through a clean outbox first, then the process "dies" right after storing t1.
    const clean = outboxAt(path, account)
    const t0 = await clean.outbox.send({ label: 't0', to: SINK, data: '0x' })
    await clean.outbox.waitForReceipt(t0.id)
    await assert.rejects(first.outbox.send({ label: 't1', to: SINK, data: '0x01' }), /process killed/)
    first.db.close()
    clean.db.close()

    const stored = createOutboxStore(openDatabase(path)).all(account.address)
    assert.deepEqual(
      stored.map((e) => [e.nonce, e.label, e.status]),
      [
        [0, 't0', 'mined'],
        [1, 't1', 'signed'],
      ],
    )
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }), 1, 'the chain never saw t1')

    const restarted = outboxAt(path, account)
    await restarted.outbox.start()
    const t2 = await restarted.outbox.send({ label: 't2', to: SINK, data: '0x02' })
    await restarted.outbox.waitForReceipt(t2.id)
    const t1 = await restarted.outbox.waitForReceipt(stored[1]!.id)
    assert.equal(t1.hash, stored[1]!.txHashes[0], 'the stored signed tx itself was broadcast, not a new one')
    const entries = restarted.outbox.entries()
    assert.deepEqual(
      entries.map((e) => [e.nonce, e.label, e.status]),
      [
        [0, 't0', 'mined'],
        [1, 't1', 'mined'],
        [2, 't2', 'mined'],
      ],
    )
    for (const e of entries) assert.equal((await clients.publicClient.getTransaction({ hash: e.minedHash! })).nonce, e.nonce)
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address }), 3)
  })

  test('default: a nonce the key spent outside the outbox is skipped, not reused', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), account)
    await outbox.waitForReceipt((await outbox.send({ label: 'a', to: SINK, data: '0x' })).id)
    const elsewhere = await clients.walletFor(account).sendTransaction({ to: SINK, value: 1n })
    await clients.publicClient.waitForTransactionReceipt({ hash: elsewhere })
    const b = await outbox.send({ label: 'b', to: SINK, data: '0x' })
    await outbox.waitForReceipt(b.id)
    assert.deepEqual(
      outbox.entries().map((e) => e.nonce),
      [0, 2],
    )
  })

  test('fee bump: a tx priced under a base-fee spike is replaced with the same nonce and higher fees; the receipt is tracked under the new hash', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox, count } = outboxAt(dataDir(), account)
    await clients.testClient.setAutomine(false)
    const { id, hash: first } = await outbox.send({ label: 'stuck', to: SINK, data: '0x' })
    const original = await clients.publicClient.getTransaction({ hash: first })
    // The base fee jumps far above the tx's fee cap: it cannot be mined, and anvil evicts it from its pool.
    await clients.testClient.request({ method: 'anvil_setNextBlockBaseFeePerGas', params: [`0x${parseGwei('100').toString(16)}`] } as never)
    await clients.testClient.mine({ blocks: 3 })
    await outbox.tick()
    assert.equal(await receiptOrUndefined(first), undefined)
    assert.equal(count('stuck transaction replaced with higher fees'), 1)

    const entry = outbox.entries()[0]!
    assert.equal(entry.txHashes.length, 2)
    const replacement = await clients.publicClient.getTransaction({ hash: entry.txHashes[1]! })
    assert.equal(replacement.nonce, original.nonce)
    assert.ok(replacement.maxFeePerGas! * 10n >= original.maxFeePerGas! * 11n, 'fee cap +10% at least (geth price bump)')
    assert.ok(replacement.maxPriorityFeePerGas! * 10n >= original.maxPriorityFeePerGas! * 11n, 'tip +10% at least')
    assert.ok(replacement.maxFeePerGas! > (await clients.publicClient.getBlock()).baseFeePerGas!, 'priced over the current base fee')

    await clients.testClient.mine({ blocks: 1 })
    const receipt = await outbox.waitForReceipt(id)
    assert.equal(receipt.hash, entry.txHashes[1], 'tracked under the new hash')
    assert.equal(receipt.status, 'success')
    assert.equal(outbox.entries()[0]!.minedHash, entry.txHashes[1])
    assert.equal(await receiptOrUndefined(first), undefined, 'the first hash never mined')
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address }), 1)
  })

  test('fee bump: a blob tx stuck in the pool is replaced with at least twice each fee cap, blob fee included', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), account)
    await clients.testClient.setAutomine(false)
    const { id, hash: first } = await outbox.send({ label: 'blob', to: SINK, data: '0x', blobs: [blobOf('stuck blob')] })
    const original = await clients.publicClient.getTransaction({ hash: first })
    // Blocks too small for it (congestion): it stays in the pool, unmined, for 3 blocks.
    await clients.testClient.request({ method: 'evm_setBlockGasLimit', params: ['0x5208'] } as never)
    await clients.testClient.mine({ blocks: 3 })
    assert.equal((await clients.publicClient.getTransaction({ hash: first })).blockNumber, null, 'still pending in the pool')
    await clients.testClient.request({ method: 'evm_setBlockGasLimit', params: [`0x${(30_000_000).toString(16)}`] } as never)
    await outbox.tick()

    const entry = outbox.entries()[0]!
    assert.equal(entry.txHashes.length, 2)
    const replacement = await clients.publicClient.getTransaction({ hash: entry.txHashes[1]! })
    assert.equal(replacement.nonce, original.nonce)
    assert.deepEqual(replacement.blobVersionedHashes, original.blobVersionedHashes, 'the same blobs')
    // geth's blob pool takes a replacement only with every fee cap at least doubled (anvil takes any increase).
    assert.ok(replacement.maxFeePerBlobGas! >= 2n * original.maxFeePerBlobGas!, 'blob fee cap doubled')
    assert.ok(replacement.maxFeePerGas! >= 2n * original.maxFeePerGas!, 'fee cap doubled')
    assert.ok(replacement.maxPriorityFeePerGas! >= 2n * original.maxPriorityFeePerGas!, 'tip doubled')

    await clients.testClient.mine({ blocks: 1 })
    const receipt = await outbox.waitForReceipt(id)
    assert.equal(receipt.hash, entry.txHashes[1])
    assert.equal(await receiptOrUndefined(first), undefined, 'the replaced tx never mined')
    const mined = await clients.publicClient.getTransaction({ hash: receipt.hash })
    assert.deepEqual(mined.blobVersionedHashes, original.blobVersionedHashes)
  })

  test('fee caps: a tx is signed at no more than the caps, and a stuck tx is not bumped past them (it waits at its fees)', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    // Under the market's estimate (anvil: base fee ≤ 1 gwei × 1.2 + 1 gwei tip; blob base fee 1 wei × 2), at or over the base fees.
    const caps = { maxFeePerGas: parseGwei('1.5'), maxFeePerBlobGas: 1n }
    const { outbox, count } = outboxAt(dataDir(), account, { feeCaps: caps })
    await clients.testClient.setAutomine(false)
    const { id, hash: first } = await outbox.send({ label: 'capped', to: SINK, data: '0x', blobs: [blobOf('capped blob')] })
    const original = await clients.publicClient.getTransaction({ hash: first })
    assert.equal(original.maxFeePerGas, caps.maxFeePerGas)
    assert.ok(original.maxPriorityFeePerGas! <= original.maxFeePerGas!)
    assert.equal(original.maxFeePerBlobGas, caps.maxFeePerBlobGas)
    // Stuck for 3 blocks: a bump would need every fee doubled, which the caps forbid.
    await clients.testClient.request({ method: 'evm_setBlockGasLimit', params: ['0x5208'] } as never)
    await clients.testClient.mine({ blocks: 3 })
    await clients.testClient.request({ method: 'evm_setBlockGasLimit', params: [`0x${(30_000_000).toString(16)}`] } as never)
    await outbox.tick()
    await outbox.tick()
    assert.equal(outbox.entries()[0]!.txHashes.length, 1, 'not replaced')
    assert.equal(count('stuck transaction not replaced: higher fees would pass the fee caps; it waits at its fees'), 1, 'said once')
    await clients.testClient.mine({ blocks: 1 })
    assert.equal((await outbox.waitForReceipt(id)).hash, first)
  })

  test('error: a gas key too poor for the worst case of a tx says so before anything is signed or sent', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    await clients.testClient.setBalance({ address: account.address, value: 1000n })
    const { outbox } = outboxAt(dataDir(), account)
    await assert.rejects(outbox.send({ label: 'requestOnboard', to: SINK, data: '0x', blobs: [blobOf('no funds')] }), (error: Error) => {
      // anvil refuses at estimation (it checks the balance there); a node that estimates without it is refused by the
      // outbox's own check: both say the same.
      assert.match(
        error.message,
        new RegExp(
          `^the gas key ${account.address} holds 1000 wei; requestOnboard (may cost up to \\d+ wei \\(gas \\d+ × max fee \\d+ \\+ blob gas 131072 × max blob fee \\d+\\)|cannot pay its gas at max fee \\d+ and blob gas 131072 × max blob fee \\d+ \\(the RPC refused to estimate it\\)): fund it, nothing was sent$`,
        ),
      )
      return true
    })
    assert.deepEqual(outbox.entries(), [], 'nothing stored')
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }), 0, 'nothing sent')
  })

  test('error: a tx that would revert is refused before it is signed, its custom error named in one readable line', async () => {
    const fixture = await deployRegistryFixture(anvil.rpcUrl)
    const stranger = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), stranger)
    const data = encodeFunctionData({ abi: keyManagerAbi, functionName: 'setBootstrapper', args: [SINK] })
    await assert.rejects(outbox.send({ label: 'setBootstrapper', to: fixture.address, data }), (error: Error) => {
      // The node's own message carries the revert bytes as raw characters; the outbox names the decoded error instead.
      assert.equal(error.message, `setBootstrapper would revert: KeyManagerUnauthorizedAccount("${stranger.address}")`)
      return true
    })
    assert.deepEqual(outbox.entries(), [], 'nothing stored')
  })

  test('upgrade: a blob tx an older build stored as v0 is re-wrapped as v1 on start, same hash, and mined', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const path = dataDir()
    // The database as the previous build left it (before the sidecar_version migration), holding a v0 blob tx that was
    // signed and stored but not broadcast when the process stopped.
    const old = openDatabase(path, { upTo: 4 })
    const blob = blobOf('signed before the upgrade')
    const params = {
      chainId: foundry.id,
      to: SINK,
      data: '0x' as Hex,
      gas: '100000',
      maxFeePerGas: parseGwei('20').toString(),
      maxPriorityFeePerGas: parseGwei('1').toString(),
      maxFeePerBlobGas: '1000',
    }
    const fields = { ...params, nonce: 0, gas: 100_000n, maxFeePerGas: parseGwei('20'), maxPriorityFeePerGas: parseGwei('1'), maxFeePerBlobGas: 1000n }
    const v0 = await signBlobTransaction(account, fields, buildBlobSidecars([blob], 0))
    old
      .prepare(
        `INSERT INTO outbox (account, nonce, label, params, blobs, raw_tx, tx_hashes, status, created_at, updated_at)
         VALUES (?, 0, 'requestOnboard', ?, ?, ?, ?, 'signed', 1, 1)`,
      )
      .run(account.address.toLowerCase(), JSON.stringify(params), Buffer.from(hexToBytes(blob)), v0.raw, JSON.stringify([v0.hash]))
    old.close()

    const { outbox, count } = outboxAt(path, account)
    assert.equal(outbox.entries()[0]!.sidecarVersion, 0, 'the migration marks stored blob txs as v0')
    await outbox.start()
    const entry = outbox.entries()[0]!
    assert.equal(entry.sidecarVersion, 1)
    assert.equal(unwrapBlobTransaction(entry.rawTx).sidecars.version, 1)
    assert.equal(unwrapBlobTransaction(entry.rawTx).sidecars.proofs.length, CELLS_PER_EXT_BLOB)
    assert.deepEqual(entry.txHashes, [v0.hash], 'same canonical tx, same hash')
    assert.equal(count('blob transaction re-wrapped for the current sidecar version'), 1)
    const receipt = await outbox.waitForReceipt(entry.id)
    assert.equal(receipt.hash, v0.hash)
    assert.equal(receipt.status, 'success')
  })

  test('default: a nonce taken by another tx of the key is given up (dropped) once it stays so for bumpAfterBlocks blocks', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), account)
    await clients.testClient.setAutomine(false)
    const { id, hash } = await outbox.send({ label: 'ours', to: SINK, data: '0x' })
    const ours = await clients.publicClient.getTransaction({ hash })
    // Someone else holding the key replaces it in the pool at the same nonce.
    const theirs = await clients.walletFor(account).sendTransaction({
      to: SINK,
      value: 1n,
      nonce: ours.nonce,
      maxFeePerGas: ours.maxFeePerGas! * 2n,
      maxPriorityFeePerGas: ours.maxPriorityFeePerGas! * 2n,
    })
    await clients.testClient.mine({ blocks: 1 })
    assert.ok(await receiptOrUndefined(theirs))
    await outbox.tick()
    assert.equal(outbox.entries()[0]!.status, 'sent', 'not given up on a first look')
    await clients.testClient.mine({ blocks: 3 })
    await outbox.tick()
    assert.equal(outbox.entries()[0]!.status, 'dropped')
    await assert.rejects(outbox.waitForReceipt(id), /was dropped/)
    assert.equal(await receiptOrUndefined(hash), undefined)
  })

  test('default: a receipt the RPC has not indexed yet (nonce already used) is not taken for a nonce lost to another tx', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    let lagging = false
    const publicClient = hookedPublicClient(anvil.rpcUrl, (method) => (lagging && method === 'eth_getTransactionReceipt' ? { result: null } : undefined))
    const db = openDatabase(dataDir())
    open.push(db)
    const outbox = createOutbox({
      walletClient: clients.walletFor(account),
      publicClient,
      store: createOutboxStore(db),
      logger: pino({ level: 'silent' }),
      now: () => Math.floor(Date.now() / 1000),
      pollIntervalMs: 20,
    })
    await clients.testClient.setAutomine(false)
    const { id, hash } = await outbox.send({ label: 'lagging', to: SINK, data: '0x' })
    await clients.testClient.mine({ blocks: 1 })
    lagging = true // the nonce is used on chain, the receipt is not served yet
    await outbox.tick()
    assert.equal(outbox.entries()[0]!.status, 'sent')
    lagging = false
    assert.equal((await outbox.waitForReceipt(id)).hash, hash)
    assert.equal(outbox.entries()[0]!.status, 'mined')
  })

  test('reorg: a mined tx whose block is reorged away goes back to pending, is broadcast again and re-mined', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox, count } = outboxAt(dataDir(), account)
    const snapshot = await clients.testClient.snapshot()
    const { id, hash } = await outbox.send({ label: 'reorged', to: SINK, data: '0x' })
    const before = await outbox.waitForReceipt(id)
    await clients.testClient.revert({ id: snapshot })
    await clients.testClient.mine({ blocks: 2 }) // the old block's height now holds another block
    assert.notEqual((await clients.publicClient.getBlock({ blockNumber: before.blockNumber })).hash, outbox.entries()[0]!.minedBlockHash)

    await outbox.tick()
    assert.equal(count('reorg removed a mined transaction; it is pending again'), 1)
    await outbox.waitForReceipt(id)
    const entry = outbox.entries()[0]!
    assert.equal(entry.status, 'mined')
    assert.equal(entry.minedHash, hash, 'the same signed tx, mined again')
    assert.equal(entry.minedBlock, before.blockNumber + 2n)
    assert.equal(entry.minedBlockHash, (await clients.publicClient.getBlock({ blockNumber: entry.minedBlock! })).hash)
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address }), 1)
  })

  test('reorg: a tx reorged away under more blocks than reorgDepth still goes back to pending (its nonce is unused on chain)', async () => {
    const account = await fundedAccount(anvil.rpcUrl)
    const { outbox } = outboxAt(dataDir(), account, { reorgDepth: 2 })
    const snapshot = await clients.testClient.snapshot()
    const first = await outbox.send({ label: 'reorged', to: SINK, data: '0x' })
    await outbox.waitForReceipt(first.id)
    await clients.testClient.revert({ id: snapshot })
    await clients.testClient.mine({ blocks: 6 }) // deeper than reorgDepth below the head
    await outbox.tick()
    await outbox.waitForReceipt(first.id, 10_000)
    const next = await outbox.send({ label: 'next', to: SINK, data: '0x' })
    await outbox.waitForReceipt(next.id, 10_000)
    for (const e of outbox.entries()) {
      assert.equal(e.status, 'mined')
      assert.equal(e.minedBlockHash, (await clients.publicClient.getBlock({ blockNumber: e.minedBlock! })).hash, `${e.label} is mined on the canonical chain`)
    }
    assert.equal(await clients.publicClient.getTransactionCount({ address: account.address }), 2)
  })

  test('reorg: a replayed tx that depends on another sender’s reorged tx waits for it instead of reverting', async () => {
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [newcomerGas, helperGas] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    const newcomer = outboxAt(dataDir(), newcomerGas)
    const helper = outboxAt(dataDir(), helperGas)
    const snapshot = await clients.testClient.snapshot()
    const request = await newcomer.outbox.send({ label: 'requestOnboard', to: fx.address, ...(await fx.requestOnboardCall()) })
    const requested = await clients.publicClient.getTransactionReceipt({ hash: (await newcomer.outbox.waitForReceipt(request.id)).hash })
    const [event] = parseEventLogs({ abi: keyManagerAbi, logs: requested.logs, eventName: 'OnboardRequested', strict: true })
    const requestId = (event!.args as { requestId: bigint }).requestId
    const fulfil = await helper.outbox.send({ label: 'fulfillOnboard', to: fx.address, ...fx.fulfillCall([requestId]) })
    assert.equal((await helper.outbox.waitForReceipt(fulfil.id)).status, 'success')

    await clients.testClient.revert({ id: snapshot })
    await clients.testClient.mine({ blocks: 2 })
    // The helper's node notices first: replaying its fulfil now would revert (the request is not on chain yet).
    await helper.outbox.tick()
    assert.equal(await clients.publicClient.getTransactionCount({ address: helperGas.address }), 0, 'the fulfil is held, not sent to revert')
    await newcomer.outbox.tick() // the request is replayed
    await newcomer.outbox.waitForReceipt(request.id)
    assert.equal((await fx.registry.getRequest(requestId)).status, 'pending')
    await helper.outbox.tick()
    await helper.outbox.waitForReceipt(fulfil.id)
    const entry = helper.outbox.entries()[0]!
    assert.equal(entry.status, 'mined')
    assert.equal(entry.receiptStatus, 'success')
    assert.equal((await fx.registry.getRequest(requestId)).status, 'fulfilled')
    assert.equal(await clients.publicClient.getTransactionCount({ address: helperGas.address }), 1, 'one fulfil transaction on the canonical chain')
  })

  /** A helper's fulfil mined and then reorged away with the request it answers, whose sender never replays it. */
  async function orphanedFulfil() {
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [newcomerGas, helperGas] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    const newcomer = outboxAt(dataDir(), newcomerGas)
    const helper = outboxAt(dataDir(), helperGas)
    const snapshot = await clients.testClient.snapshot()
    const request = await newcomer.outbox.send({ label: 'requestOnboard', to: fx.address, ...(await fx.requestOnboardCall()) })
    const requested = await clients.publicClient.getTransactionReceipt({ hash: (await newcomer.outbox.waitForReceipt(request.id)).hash })
    const [event] = parseEventLogs({ abi: keyManagerAbi, logs: requested.logs, eventName: 'OnboardRequested', strict: true })
    const fulfil = await helper.outbox.send({ label: 'fulfillOnboard', to: fx.address, ...fx.fulfillCall([(event!.args as { requestId: bigint }).requestId]) })
    await helper.outbox.waitForReceipt(fulfil.id)
    await clients.testClient.revert({ id: snapshot })
    await clients.testClient.mine({ blocks: 2 })
    const sent = () => clients.publicClient.getTransactionCount({ address: helperGas.address })
    await helper.outbox.tick() // held: the newcomer's node is gone, its request never comes back
    assert.equal(await sent(), 0)
    return { helper, fulfil, sent }
  }

  /** The held fulfil went out (and reverted), and the key is free for the next tx. */
  async function assertSentAnyway({ helper, fulfil, sent }: Awaited<ReturnType<typeof orphanedFulfil>>) {
    assert.equal((await helper.outbox.waitForReceipt(fulfil.id)).status, 'reverted')
    assert.equal(await sent(), 1, 'the nonce is used')
    const next = await helper.outbox.send({ label: 'next', to: SINK, data: '0x' })
    assert.equal((await helper.outbox.waitForReceipt(next.id, 10_000)).status, 'success', 'later txs of the key are not stuck behind it')
    assert.deepEqual(
      helper.outbox.entries().map((e) => [e.nonce, e.status, e.receiptStatus]),
      [
        [0, 'mined', 'reverted'],
        [1, 'mined', 'success'],
      ],
    )
    assert.ok(
      helper.lines.some((l) => l.level >= 40 && /would still revert/.test(l.msg)),
      'the revert is announced',
    )
  }

  test('reorg: a replayed tx whose precondition never comes back is sent after reorgDepth blocks, so its nonce is not blocked forever', async () => {
    const orphan = await orphanedFulfil()
    for (let i = 0; i < 4; i++) await orphan.helper.outbox.tick()
    assert.equal(await orphan.sent(), 0, 'polls alone do not end the hold: too few blocks for the other senders to replay in')
    await clients.testClient.mine({ blocks: 12 }) // reorgDepth (default)
    await orphan.helper.outbox.tick()
    await assertSentAnyway(orphan)
  })

  test('reorg: a burst of blocks within one poll does not end the hold; it ends after bumpAfterBlocks polls', async () => {
    const orphan = await orphanedFulfil()
    await clients.testClient.mine({ blocks: 12 })
    await orphan.helper.outbox.tick()
    await orphan.helper.outbox.tick()
    assert.equal(await orphan.sent(), 0, 'the other senders had no poll of their own to replay in yet')
    await orphan.helper.outbox.tick()
    await assertSentAnyway(orphan)
  })
})
