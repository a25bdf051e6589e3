// Follows the registry's events (docs/protocol.md#flows, docs/protocol.md#node-state "chain cursor"): `OnboardRequested`, `Onboarded`,
// `Bootstrapped`, from a persisted cursor (block number + hash), `confirmations` blocks behind the head.
// Reorgs: when the stored hash of the cursor block is no longer canonical, the watcher walks its stored hashes down
// to the last block that still matches, forgets everything above it and processes the range again; events are
// stored by request id, so processing a block twice changes nothing. RPC outages: exponential backoff, one log
// line when the outage starts and one when it ends.
import type { Logger } from 'pino'
import type { Address, Hex, PublicClient } from 'viem'
import type { CursorStore, WatchedEvent } from '../store/cursor.ts'
import { KeymanagerError } from '../errors.ts'
import { keyManagerAbi } from './keyManagerArtifact.ts'
import { DEFAULT_MAX_LOG_RANGE } from './logs.ts'

export type ChainWatcherOptions = {
  publicClient: PublicClient
  registry: Address
  /** First block to scan (the registry's deployment block). */
  fromBlock: bigint
  store: CursorStore
  logger: Logger
  /** Blocks an event must be buried under before it is processed. Default 0 (devnet automine). */
  confirmations?: number
  pollIntervalMs?: number
  /** Most blocks fetched per `eth_getLogs` (docs/protocol.md#limits). Default 1,000. */
  maxRange?: number
  backoff?: { initialMs: number; maxMs: number }
  /** Runs first in every poll with the current head (the outbox's receipt/rebroadcast pass). */
  onHead?: (head: bigint) => Promise<void>
  /** Runs after new events were stored. */
  onEvents?: (events: WatchedEvent[]) => void
}

export function createChainWatcher(options: ChainWatcherOptions) {
  const { publicClient, store, logger } = options
  const confirmations = BigInt(options.confirmations ?? 0)
  const maxRange = BigInt(options.maxRange ?? DEFAULT_MAX_LOG_RANGE)
  const pollMs = options.pollIntervalMs ?? 500
  const backoff = options.backoff ?? { initialMs: 500, maxMs: 10_000 }
  let stopped = false
  let loop: Promise<void> | undefined
  let wake: (() => void) | undefined
  let failures = 0
  let reorgs = 0

  /**
   * The canonical hash at `number`; undefined when the chain has no such block (it got shorter, anvil evm_revert).
   * Any other failure throws: a failed read is an outage to retry, never evidence of a reorg.
   */
  const hashOf = (number: bigint): Promise<Hex | undefined> =>
    publicClient.getBlock({ blockNumber: number }).then(
      (b) => b.hash,
      (error: Error) => {
        if (/not found|could not be found/i.test(error.message)) return undefined
        throw error
      },
    )

  /** If the cursor block was reorged away, rolls back to the last stored block that is still canonical. */
  async function checkReorg(): Promise<void> {
    const cursor = store.cursor()
    if (!cursor) return
    if ((await hashOf(cursor.number)) === cursor.hash) return
    let fork = options.fromBlock - 1n
    for (const block of store.blocks()) {
      if ((await hashOf(block.number)) === block.hash) {
        fork = block.number
        break
      }
    }
    reorgs++
    logger.warn({ from: cursor.number.toString(), to: fork.toString() }, 'chain reorganised: rolling back the watcher cursor')
    store.rollback(fork)
  }

  /** One pass: outbox tick, reorg check, then at most `maxRange` new blocks. True when there is more to fetch. */
  async function poll(): Promise<boolean> {
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    await options.onHead?.(head)
    await checkReorg()
    const target = head - confirmations
    const cursor = store.cursor()
    const from = cursor ? cursor.number + 1n : options.fromBlock
    if (target < from) return false
    const to = target - from + 1n > maxRange ? from + maxRange - 1n : target
    const before = await publicClient.getBlock({ blockNumber: to })
    const logs = await publicClient.getContractEvents({ address: options.registry, abi: keyManagerAbi, fromBlock: from, toBlock: to, strict: true })
    const after = await publicClient.getBlock({ blockNumber: to })
    // A reorg while the logs were fetched: the logs may mix forks; fetch again.
    if (before.hash !== after.hash) return true
    // The range must continue the stored history. A reorg that replaced the cursor block after checkReorg() looked
    // at it would otherwise be stored above the old history, and the next check (of the new cursor) would pass.
    if (cursor && (await hashOf(cursor.number)) !== cursor.hash) return true
    const events: WatchedEvent[] = []
    const eventBlocks = new Map<bigint, Hex>()
    for (const log of logs) {
      const args = log.args as Record<string, unknown>
      if (log.blockHash) eventBlocks.set(log.blockNumber, log.blockHash)
      if (log.eventName === 'OnboardRequested') {
        events.push({
          kind: 'OnboardRequested',
          request: {
            requestId: args.requestId as bigint,
            requester: args.requester as Address,
            pubkey64: args.pubkey64 as Hex,
            quoteBlobHash: args.quoteBlobHash as Hex,
            refBlockNumber: args.refBlockNumber as bigint,
            refBlockHash: args.refBlockHash as Hex,
            blockNumber: log.blockNumber,
            blockHash: log.blockHash,
            transactionHash: log.transactionHash,
          },
        })
      } else if (log.eventName === 'Onboarded') {
        events.push({
          kind: 'Onboarded',
          requestId: args.requestId as bigint,
          responseBlobHash: args.responseBlobHash as Hex,
          index: args.index as bigint,
          blockNumber: log.blockNumber,
          blockHash: log.blockHash,
          transactionHash: log.transactionHash,
        })
      } else if (log.eventName === 'Bootstrapped') {
        events.push({ kind: 'Bootstrapped', blockNumber: log.blockNumber })
      }
    }
    const evicted = store.advance({ number: to, hash: after.hash }, events, [...eventBlocks].map(([number, hash]) => ({ number, hash })))
    if (evicted) {
      // docs/protocol.md#limits: which rows go, and why a newcomer's open request is never among them.
      const { maxOpenPerRequester, maxOpenRequests } = store.caps
      const counts = { ...evicted, maxOpenPerRequester, maxOpenRequests }
      if (evicted.overCap > 0) {
        logger.warn(counts, `open-request cap exceeded: ${evicted.open} unanswered requests stored, each the only one of its requester and not yet judged (watcher.maxOpenRequests ${maxOpenRequests}); kept until judged or expired`)
      } else {
        logger.warn(counts, `open-request cap hit: ${evicted.perRequester + evicted.refused + evicted.levelled} stored requests evicted (watcher.maxOpenPerRequester ${maxOpenPerRequester}, watcher.maxOpenRequests ${maxOpenRequests}); each requester's latest kept`)
      }
    }
    if (events.length > 0) {
      logger.debug({ from: from.toString(), to: to.toString(), events: events.length }, 'registry events processed')
      options.onEvents?.(events)
    }
    return to < target
  }

  function sleep(ms: number) {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wake = undefined
        resolve()
      }
      wake = done
    })
  }

  async function run() {
    while (!stopped) {
      let more = false
      try {
        more = await poll()
        if (failures > 0) logger.info({ retries: failures }, 'chain RPC reachable again')
        failures = 0
      } catch (error) {
        if (stopped) break
        failures++
        if (failures === 1) logger.warn({ error: (error as Error).message.split('\n')[0] }, 'chain RPC failing; retrying with backoff')
      }
      if (stopped) break
      const delay = failures > 0 ? Math.min(backoff.initialMs * 2 ** (failures - 1), backoff.maxMs) : more ? 0 : pollMs
      await sleep(delay)
    }
  }

  /**
   * Resolves once the watcher has processed every block up to the head as it is now (less `confirmations`): a host
   * call that names a request the node has not seen yet waits for this instead of scanning logs itself. Rejects
   * after `timeoutMs` (the RPC may be failing).
   */
  async function sync(timeoutMs = 30_000): Promise<void> {
    const target = (await publicClient.getBlockNumber({ cacheTime: 0 })) - confirmations
    const deadline = Date.now() + timeoutMs
    while ((store.cursor()?.number ?? options.fromBlock - 1n) < target) {
      if (stopped || loop === undefined) throw new KeymanagerError('not_ready', 'the chain watcher is not running')
      if (Date.now() > deadline)
        throw new KeymanagerError('upstream_failed', `the chain watcher has not reached block ${target} within ${timeoutMs} ms (is the RPC failing?)`)
      wake?.()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  return {
    poll,
    sync,
    start() {
      loop ??= run()
    },
    /** Stops the loop; resolves once the current pass has finished. */
    async stop() {
      stopped = true
      wake?.()
      await loop
    },
    get reorgs() {
      return reorgs
    },
    get failing() {
      return failures > 0
    },
  }
}
export type ChainWatcher = ReturnType<typeof createChainWatcher>
