// The chain watcher against a real anvil (no mocks): a persisted cursor resumed after a restart, confirmations,
// reorgs made with evm_snapshot/evm_revert, and an RPC outage made by stopping anvil and starting it again from its
// `--state` file on the same port. Where a reorg or an RPC failure must land at an exact moment of a pass, the
// client's transport runs a hook before forwarding one request to anvil; anvil still answers every request.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { createPublicClient, custom, http, numberToHex, type PublicClient } from 'viem'
import { foundry } from 'viem/chains'
import { openDatabase } from '../store/database.ts'
import { createCursorStore, type WatchedEvent } from '../store/cursor.ts'
import { startAnvil, type Anvil } from '../devnet/anvil.ts'
import { createChainWatcher } from './watcher.ts'
import { chainFor, clientsFor, deployRegistryFixture, fundedAccount, hookedPublicClient } from '../../test/registryFixture.ts'

type LogLine = { level: number; msg: string; [key: string]: unknown }

function capturingLogger() {
  const lines: LogLine[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) })
  return { logger, lines, count: (msg: string) => lines.filter((l) => l.msg === msg).length }
}

/** Resolves once `condition()` holds; fails after `timeoutMs` with `what`. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function requestIds(events: WatchedEvent[]) {
  return events.flatMap((e) => (e.kind === 'OnboardRequested' ? [e.request.requestId] : []))
}

async function drain(watcher: { poll(): Promise<boolean> }) {
  while (await watcher.poll());
}

describe('createChainWatcher', () => {
  let anvil: Anvil

  before(async () => {
    anvil = await startAnvil({ chainId: foundry.id })
  })
  after(async () => {
    await anvil?.stop()
  })

  test('default: every event is processed once, in order, across a restart (cursor persisted and resumed)', async () => {
    const { publicClient, testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [a, b, c] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    const r1 = await fx.requestOnboard(a)
    await testClient.mine({ blocks: 2 })
    const r2 = await fx.requestOnboard(b)

    const dbPath = join(mkdtempSync(join(tmpdir(), 'km-watcher-')), 'keymanager.sqlite')
    const seen: WatchedEvent[] = []
    const { logger } = capturingLogger()
    const options = { publicClient, registry: fx.address, fromBlock: fx.fromBlock, logger, onEvents: (e: WatchedEvent[]) => void seen.push(...e) }
    let db = openDatabase(dbPath)
    // One block per pass, so that the process can die with r1 processed and r2 not.
    const first = createChainWatcher({ ...options, store: createCursorStore(db), maxRange: 1 })
    while ((createCursorStore(db).cursor()?.number ?? -1n) < r1.blockNumber) await first.poll()
    assert.deepEqual(requestIds(seen), [r1.requestId])
    db.close() // the process dies here: no stop(), nothing flushed on the way out

    const r3 = await fx.requestOnboard(c) // mined while the node is down
    db = openDatabase(dbPath)
    const store = createCursorStore(db)
    assert.equal(store.cursor()!.number, r1.blockNumber, 'the cursor survived the restart')
    const second = createChainWatcher({ ...options, store })
    await drain(second)
    db.close()

    assert.deepEqual(requestIds(seen), [r1.requestId, r2.requestId, r3.requestId], 'none processed twice, none skipped')
    const head = await publicClient.getBlock({ blockTag: 'latest' })
    db = openDatabase(dbPath)
    const reopened = createCursorStore(db)
    assert.deepEqual(reopened.cursor(), { number: head.number, hash: head.hash })
    assert.deepEqual(
      reopened.requests().map((r) => [r.requestId, r.requester]),
      [r1, r2, r3].map((r) => [r.requestId, r.requester]),
    )
    db.close()
  })

  test('default: an event is processed only once it is `confirmations` blocks deep', async () => {
    const { publicClient, testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const store = createCursorStore(openDatabase(':memory:'))
    const seen: WatchedEvent[] = []
    const watcher = createChainWatcher({
      publicClient,
      registry: fx.address,
      fromBlock: fx.fromBlock,
      store,
      logger: capturingLogger().logger,
      confirmations: 3,
      onEvents: (e) => void seen.push(...e),
    })
    await testClient.mine({ blocks: 3 })
    const request = await fx.requestOnboard(await fundedAccount(anvil.rpcUrl))
    for (let depth = 0n; depth < 3n; depth++) {
      await drain(watcher)
      const head = await publicClient.getBlockNumber({ cacheTime: 0 })
      assert.equal(head, request.blockNumber + depth)
      assert.equal(store.cursor()!.number, head - 3n, 'the cursor stays 3 blocks behind the head')
      assert.deepEqual(requestIds(seen), [], `not processed at depth ${depth}`)
      await testClient.mine({ blocks: 1 })
    }
    await drain(watcher)
    assert.equal(store.cursor()!.number, request.blockNumber)
    assert.deepEqual(requestIds(seen), [request.requestId], 'processed once 3 blocks are on top of it')
  })

  test('bounded: catching up 2,500 blocks, no eth_getLogs spans more than 1,000 blocks (the default), and events in every range are found', async () => {
    const { testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [a, b] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    const r1 = await fx.requestOnboard(a)
    await testClient.mine({ blocks: 2500 })
    const r2 = await fx.requestOnboard(b)
    const ranges: bigint[] = []
    const publicClient = hookedPublicClient(anvil.rpcUrl, (method, params) => {
      if (method !== 'eth_getLogs') return
      const [filter] = params as [{ fromBlock: string; toBlock: string }]
      ranges.push(BigInt(filter.toBlock) - BigInt(filter.fromBlock) + 1n)
    })
    const store = createCursorStore(openDatabase(':memory:'))
    const watcher = createChainWatcher({ publicClient, registry: fx.address, fromBlock: fx.fromBlock, store, logger: capturingLogger().logger })
    await drain(watcher)
    assert.ok(ranges.length >= 3, `${ranges.length} ranges`)
    assert.ok(ranges.every((n) => n <= 1000n), `ranges: ${ranges.join(', ')}`)
    assert.deepEqual(store.requests().map((r) => r.requestId), [r1.requestId, r2.requestId])
  })

  test('reorg: a replaced block is detected, the cursor rolls back to the last matching block and the range is processed again', async () => {
    const { publicClient, testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [a, b, helper] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    const store = createCursorStore(openDatabase(':memory:'))
    const seen: WatchedEvent[] = []
    const log = capturingLogger()
    const watcher = createChainWatcher({ publicClient, registry: fx.address, fromBlock: fx.fromBlock, store, logger: log.logger, onEvents: (e) => void seen.push(...e) })
    await drain(watcher)
    const fork = store.cursor()!
    const snapshot = await testClient.snapshot()

    const x = await fx.requestOnboard(a)
    const fulfilled = await fx.fulfill(helper, [x.requestId])
    await drain(watcher)
    assert.equal(store.request(x.requestId)!.requester, x.requester)
    assert.equal(store.request(x.requestId)!.onboardedBlock, fulfilled.blockNumber)
    // What completing needs is kept with the request: the answer's blob hash, index and block.
    const answer = store.request(x.requestId)!.onboarded!
    assert.deepEqual([answer.index, answer.blockNumber, answer.transactionHash], [0n, fulfilled.blockNumber, fulfilled.hash])
    assert.match(answer.responseBlobHash, /^0x01[0-9a-f]{62}$/)
    assert.equal(store.latestRequestBy(x.requester)!.requestId, x.requestId)
    const before = store.cursor()!

    // Another history from the fork point: another requester gets the same id, nobody fulfils it, and the new chain
    // is longer than the old one, so that no height still has its old hash.
    await testClient.revert({ id: snapshot })
    const y = await fx.requestOnboard(b)
    assert.equal(y.requestId, x.requestId)
    await testClient.mine({ blocks: 3 })
    for (let n = fork.number + 1n; n <= before.number; n++) {
      assert.notEqual((await publicClient.getBlock({ blockNumber: n })).hash, n === x.blockNumber ? x.blockHash : before.hash)
    }

    await drain(watcher)
    assert.equal(watcher.reorgs, 1)
    const rollback = log.lines.filter((l) => l.msg === 'chain reorganised: rolling back the watcher cursor')
    assert.deepEqual(
      rollback.map((l) => [l.from, l.to]),
      [[before.number.toString(), fork.number.toString()]],
      'rolled back to the last block both histories share',
    )
    const request = store.request(y.requestId)!
    assert.equal(request.requester, y.requester, 'the request is the canonical one')
    assert.equal(request.pubkey64, y.pubkey64)
    assert.equal(request.onboardedBlock, null, 'the Onboarded event of the old history is forgotten')
    assert.equal(request.onboarded, null)
    assert.equal(store.latestRequestBy(x.requester), undefined, 'the old requester is gone with its history')
    assert.equal(store.latestRequestBy(y.requester)!.requestId, y.requestId)
    assert.deepEqual(
      store.pendingRequests().map((r) => r.requestId),
      [y.requestId],
    )
    const head = await publicClient.getBlock({ blockTag: 'latest' })
    assert.deepEqual(store.cursor(), { number: head.number, hash: head.hash })
    assert.deepEqual(
      seen.flatMap((e) => (e.kind === 'OnboardRequested' ? [e.request.requester] : [])),
      [x.requester, y.requester],
      'each history processed once',
    )

    // Processing the same blocks again (by request id) changes nothing.
    const rows = store.requests()
    store.rollback(fork.number)
    await drain(watcher)
    assert.deepEqual(store.requests(), rows)
  })

  test('reorg: a chain that got shorter (evm_revert, no new blocks) rolls the cursor back; later blocks are processed', async () => {
    const { publicClient, testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const store = createCursorStore(openDatabase(':memory:'))
    const watcher = createChainWatcher({ publicClient, registry: fx.address, fromBlock: fx.fromBlock, store, logger: capturingLogger().logger })
    await drain(watcher)
    const fork = store.cursor()!
    const snapshot = await testClient.snapshot()
    const x = await fx.requestOnboard(await fundedAccount(anvil.rpcUrl))
    await testClient.mine({ blocks: 2 })
    await drain(watcher)
    assert.ok(store.request(x.requestId))

    await testClient.revert({ id: snapshot })
    await drain(watcher)
    assert.equal(watcher.reorgs, 1)
    assert.deepEqual(store.cursor(), fork)
    assert.equal(store.request(x.requestId), undefined, 'the request of the lost blocks is forgotten')

    const y = await fx.requestOnboard(await fundedAccount(anvil.rpcUrl))
    await drain(watcher)
    assert.equal(store.request(y.requestId)!.requester, y.requester)
  })

  test('reorg: a reorg that lands while a range is being fetched is not stored as a continuation of the old history', async () => {
    const { testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    const [a, b] = await Promise.all([fundedAccount(anvil.rpcUrl), fundedAccount(anvil.rpcUrl)])
    let reorgAt: { block: bigint; run: () => Promise<void> } | undefined
    const publicClient = hookedPublicClient(anvil.rpcUrl, async (method, params) => {
      if (reorgAt && method === 'eth_getBlockByNumber' && (params as unknown[])[0] === numberToHex(reorgAt.block)) {
        const { run } = reorgAt
        reorgAt = undefined
        await run()
      }
    })
    const store = createCursorStore(openDatabase(':memory:'))
    const watcher = createChainWatcher({ publicClient, registry: fx.address, fromBlock: fx.fromBlock, store, logger: capturingLogger().logger })
    await drain(watcher)
    const snapshot = await testClient.snapshot()
    const x = await fx.requestOnboard(a)
    await drain(watcher)
    assert.equal(store.request(x.requestId)!.requester, x.requester)
    await testClient.mine({ blocks: 2 })

    // The next pass reads the head, checks the cursor (still canonical), then fetches the range above it: the reorg
    // happens right before it reads the range's last block.
    let y: Awaited<ReturnType<typeof fx.requestOnboard>> | undefined
    reorgAt = {
      block: x.blockNumber + 2n,
      run: async () => {
        await testClient.revert({ id: snapshot })
        y = await fx.requestOnboard(b)
        await testClient.mine({ blocks: 3 })
      },
    }
    await drain(watcher)
    assert.equal(reorgAt, undefined, 'the reorg was injected')
    assert.equal(y!.requestId, x.requestId)
    assert.equal(store.request(y!.requestId)!.requester, y!.requester, 'the canonical request replaced the lost one')
    assert.equal(watcher.reorgs, 1)
  })

  test('error: an RPC failure while looking for the fork point is retried, not taken for a reorg down to the first block', async () => {
    const { testClient } = clientsFor(anvil.rpcUrl)
    const fx = await deployRegistryFixture(anvil.rpcUrl)
    let failBlock: bigint | undefined
    const publicClient = hookedPublicClient(anvil.rpcUrl, (method, params) => {
      if (failBlock !== undefined && method === 'eth_getBlockByNumber' && (params as unknown[])[0] === numberToHex(failBlock))
        throw new Error('connection reset by peer')
    })
    const store = createCursorStore(openDatabase(':memory:'))
    const log = capturingLogger()
    const watcher = createChainWatcher({ publicClient, registry: fx.address, fromBlock: fx.fromBlock, store, logger: log.logger })
    await drain(watcher)
    const fork = store.cursor()!
    const snapshot = await testClient.snapshot()
    await fx.requestOnboard(await fundedAccount(anvil.rpcUrl))
    await testClient.mine({ blocks: 1 })
    await drain(watcher)
    const stale = store.cursor()!
    await testClient.revert({ id: snapshot })
    await testClient.mine({ blocks: 4 })

    failBlock = fork.number // the block where both histories meet cannot be read for now
    await assert.rejects(watcher.poll(), /connection reset by peer/)
    assert.deepEqual(store.cursor(), stale, 'nothing rolled back on a failed read')
    failBlock = undefined
    await drain(watcher)
    const rollback = log.lines.filter((l) => l.msg === 'chain reorganised: rolling back the watcher cursor')
    assert.deepEqual(
      rollback.map((l) => l.to),
      [fork.number.toString()],
    )
  })
})

describe('createChainWatcher: RPC outage', () => {
  test('default: anvil stopped and restarted from its state on the same port: backoff, one log line each way per outage, recovery', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'km-outage-')), 'anvil-state.json')
    let anvil = await startAnvil({ chainId: foundry.id, stateFile })
    const rpcUrl = anvil.rpcUrl
    try {
      const fx = await deployRegistryFixture(rpcUrl)
      // Every eth_blockNumber (the first call of each pass) with its time and outcome.
      const heads: { at: number; ok: boolean }[] = []
      const forward = http(rpcUrl, { retryCount: 0, timeout: 60_000 })({ chain: chainFor(rpcUrl), retryCount: 0 })
      const publicClient = createPublicClient({
        chain: chainFor(rpcUrl),
        transport: custom(
          {
            async request({ method, params }: { method: string; params: unknown }) {
              const at = performance.now()
              try {
                const result = await forward.request({ method, params } as never)
                if (method === 'eth_blockNumber') heads.push({ at, ok: true })
                return result
              } catch (error) {
                if (method === 'eth_blockNumber') heads.push({ at, ok: false })
                throw error
              }
            },
          },
          { retryCount: 0 },
        ),
      }) as PublicClient
      const log = capturingLogger()
      const seen: WatchedEvent[] = []
      const backoff = { initialMs: 40, maxMs: 320 }
      const watcher = createChainWatcher({
        publicClient,
        registry: fx.address,
        fromBlock: fx.fromBlock,
        store: createCursorStore(openDatabase(':memory:')),
        logger: log.logger,
        pollIntervalMs: 20,
        backoff,
        onEvents: (e) => void seen.push(...e),
      })
      watcher.start()
      const expected: bigint[] = []
      try {
        for (let outage = 1; outage <= 2; outage++) {
          const request = await fx.requestOnboard(await fundedAccount(rpcUrl))
          expected.push(request.requestId)
          await until(() => requestIds(seen).includes(request.requestId), `request ${request.requestId} processed`)

          await anvil.stop()
          const firstFailure = heads.length
          await until(() => heads.slice(firstFailure).filter((h) => !h.ok).length >= 6, 'six failed passes')
          assert.equal(watcher.failing, true)
          anvil = await startAnvil({ chainId: foundry.id, stateFile, port: anvil.port })
          await until(() => log.count('chain RPC reachable again') === outage, 'recovery logged')

          // Each failed pass waited at least the backoff delay: 40, 80, 160, 320, 320 ms (not the 20 ms poll interval).
          const failed = heads.slice(firstFailure).filter((h) => !h.ok)
          for (let i = 1; i < 6; i++) {
            const delay = Math.min(backoff.initialMs * 2 ** (i - 1), backoff.maxMs)
            const gap = failed[i]!.at - failed[i - 1]!.at
            assert.ok(gap >= delay - 2, `outage ${outage}: pass ${i + 1} came ${gap.toFixed(1)} ms after pass ${i}, before the ${delay} ms backoff`)
          }
          assert.equal(log.count('chain RPC failing; retrying with backoff'), outage, 'one warning per outage')
          assert.equal(log.count('chain RPC reachable again'), outage, 'one recovery line per outage')
        }
        const last = await fx.requestOnboard(await fundedAccount(rpcUrl))
        expected.push(last.requestId)
        await until(() => requestIds(seen).includes(last.requestId), 'a request after the last outage processed')
      } finally {
        await watcher.stop()
      }
      assert.deepEqual(requestIds(seen), expected, 'every request processed once across both outages')
      assert.equal(log.count('chain RPC failing; retrying with backoff'), 2)
    } finally {
      await anvil.stop()
    }
  })
})
