// The freshness rule on a real anvil (docs/protocol.md#verified-chain-view): a decision waits for a verified view
// that proves its own mark; a held-back view, a mark never sent, or a replayed mark of another decision do not pass.
// Headers come from test/unverifiedHeaders.ts, a test double for the light client.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { keccak256, type Hex } from 'viem'
import { startAnvil, type Anvil } from '../../devnet/anvil.ts'
import { clientsFor, deployRegistryFixture, fundedAccount, type RegistryFixture } from '../../../test/registryFixture.ts'
import { unverifiedAnvilHeaders, type UnverifiedHeaderSource } from '../../../test/unverifiedHeaders.ts'
import { createChainView } from './chainView.ts'
import { ChainViewError } from './errors.ts'
import { createFreshness } from './freshness.ts'

describe('freshness marks', () => {
  let anvil: Anvil
  let fixture: RegistryFixture
  let headers: UnverifiedHeaderSource
  let freshness: ReturnType<typeof createFreshness>
  let send: (mark: Hex) => Promise<bigint>

  before(async () => {
    anvil = await startAnvil()
    fixture = await deployRegistryFixture(anvil.rpcUrl)
    const { publicClient, walletFor } = clientsFor(anvil.rpcUrl)
    const codeHash = keccak256((await publicClient.getCode({ address: fixture.address }))!)
    headers = unverifiedAnvilHeaders(anvil.rpcUrl)
    const view = createChainView({ mode: 'light-client', headers, rpc: publicClient, registry: fixture.address, registryCodeHash: codeHash, logger: pino({ level: 'silent' }) })
    freshness = createFreshness({ view, timeoutMs: 1500, pollMs: 50 })
    const wallet = walletFor(await fundedAccount(anvil.rpcUrl))
    // anvil_setBalance changes the state under the latest block without a new header: mine one, so that proofs at the
    // newest block match its state root (anvil's quirk; a real chain has no such call).
    await clientsFor(anvil.rpcUrl).testClient.mine({ blocks: 1 })
    send = async (mark) => {
      const hash = await wallet.sendTransaction({ to: fixture.address, data: fixture.registry.calldata.markFresh(mark) })
      return (await publicClient.waitForTransactionReceipt({ hash })).blockNumber
    }
  })
  after(async () => {
    await anvil?.stop()
  })

  test('default: the view that proves the mark is at or after the block holding it', async () => {
    const pending = freshness.newMark()
    assert.equal(await freshness.check(pending), undefined, 'not on chain yet')
    const block = await send(pending.mark)
    const fresh = await freshness.await(pending, block)
    assert.equal(fresh.markedAt, block)
    assert.ok(fresh.header.blockNumber >= block)
    assert.equal(fresh.mark, pending.mark)
    assert.notEqual(freshness.newMark().mark, pending.mark)
  })

  test('error: a view held back before the mark times out as stale_chain_view', async () => {
    await headers.latest()
    headers.freeze()
    try {
      const pending = freshness.newMark()
      const block = await send(pending.mark)
      await assert.rejects(freshness.await(pending, block), (error: unknown) => {
        assert.ok(error instanceof ChainViewError)
        assert.equal(error.reason, 'stale_chain_view')
        assert.match(error.message, /did not reach this decision's freshness mark/)
        return true
      })
    } finally {
      headers.release()
    }
  })

  test('error: a mark that was never sent, or another decision\'s mark, does not make a view fresh', async () => {
    const mine = freshness.newMark()
    const theirs = freshness.newMark()
    await send(theirs.mark)
    // The RPC's hint says "mined" for a mark that is not: the wait still ends only on the proven slot.
    await assert.rejects(freshness.await(mine, 0n), (error: unknown) => error instanceof ChainViewError && error.reason === 'stale_chain_view')
    assert.ok(freshness.expired(mine))
    assert.ok((await freshness.check(theirs)) !== undefined)
    assert.equal(await freshness.check(mine), undefined)
  })

  test('default: requireFreshView makes a mark, has it sent, and resolves to a view that proves it', async () => {
    const sent: Hex[] = []
    const fresh = await freshness.requireFreshView(async (mark) => {
      sent.push(mark)
      return send(mark)
    })
    assert.equal(sent.length, 1)
    assert.equal(fresh.mark, sent[0])
    assert.ok(fresh.markedAt > 0n && fresh.header.blockNumber >= fresh.markedAt)
    // A sender that never gets the mark on chain (the host dropped it): stale_chain_view, never a view.
    await assert.rejects(
      freshness.requireFreshView(async () => undefined),
      (error: unknown) => error instanceof ChainViewError && error.reason === 'stale_chain_view',
    )
  })

  test('default: hostMark hands the host one mark per purpose until the view proves it, then the view once', async () => {
    const first = await freshness.hostMark('help')
    assert.ok('needsMark' in first)
    const again = await freshness.hostMark('help')
    assert.deepEqual(again, first, 'the same mark while it is not on chain')
    const other = await freshness.hostMark('rotate')
    assert.ok('needsMark' in other && other.needsMark !== first.needsMark, 'each purpose has its own mark')
    await send(first.needsMark)
    let fresh: Awaited<ReturnType<typeof freshness.hostMark>> = first
    for (let i = 0; i < 20 && 'needsMark' in fresh; i++) {
      await new Promise((r) => setTimeout(r, 50))
      fresh = await freshness.hostMark('help')
    }
    assert.ok(!('needsMark' in fresh), 'the view proves the mark')
    assert.equal(fresh.mark, first.needsMark)
    // Single use: the next decision gets a new mark.
    const next = await freshness.hostMark('help')
    assert.ok('needsMark' in next && next.needsMark !== first.needsMark)
  })

  test('default: a mark made ahead serves its purpose\'s next decision once; a failed or expired one is replaced; minBlock holds the view back', async () => {
    const sentNow: Hex[] = []
    const sendNow = async (mark: Hex) => {
      sentNow.push(mark)
      return send(mark)
    }
    let ahead: Hex | undefined
    await freshness.markAhead('help', async (mark) => {
      ahead = mark
      // Mined before the next send: one wallet, one nonce at a time.
      return { mined: Promise.resolve(await send(mark)) }
    })
    // A second call while it is pending makes no other mark.
    await freshness.markAhead('help', async () => assert.fail('a mark is already pending'))
    // Another purpose does not take it.
    const rotate = await freshness.requireFreshView(sendNow, { purpose: 'rotate' })
    assert.notEqual(rotate.mark, ahead)
    assert.equal(sentNow.length, 1)
    const fresh = await freshness.requireFreshView(sendNow, { purpose: 'help' })
    assert.equal(fresh.mark, ahead, 'the mark made ahead')
    assert.equal(sentNow.length, 1, 'no new mark sent')
    // Single use: the next decision makes its own.
    const next = await freshness.requireFreshView(sendNow, { purpose: 'help' })
    assert.notEqual(next.mark, ahead)
    assert.equal(sentNow.length, 2)
    // Its transaction failed: a new mark at decision time.
    await freshness.markAhead('help', async () => ({ mined: Promise.reject(new Error('dropped')) }))
    const afterFailure = await freshness.requireFreshView(sendNow, { purpose: 'help' })
    assert.equal(sentNow.length, 3)
    assert.equal(afterFailure.mark, sentNow[2])
    // Made ahead and never proven within timeoutMs (the host never sent it): dropped for a new one.
    let unsent: Hex | undefined
    await freshness.markAhead('help', async (mark) => {
      unsent = mark
      return { mined: Promise.resolve(1n) }
    })
    await new Promise((r) => setTimeout(r, 1600))
    const afterExpiry = await freshness.requireFreshView(sendNow, { purpose: 'help' })
    assert.notEqual(afterExpiry.mark, unsent)
    assert.equal(sentNow.length, 4)
    // A decision that also reads a fact the RPC places at a later block waits until the view reaches it.
    const head = await clientsFor(anvil.rpcUrl).publicClient.getBlockNumber({ cacheTime: 0 })
    const later = freshness.requireFreshView(sendNow, { minBlock: head + 3n })
    await new Promise((r) => setTimeout(r, 200))
    await clientsFor(anvil.rpcUrl).testClient.mine({ blocks: 3 })
    assert.ok((await later).header.blockNumber >= head + 3n)
    await assert.rejects(
      freshness.requireFreshView(sendNow, { minBlock: head + 1000n }),
      (error: unknown) => error instanceof ChainViewError && error.reason === 'stale_chain_view',
    )
  })
})
