// The devnet's beacon light-client server: a SIMULATOR (anvil has no beacon chain; docs/protocol.md#verified-chain-view).
// It follows an anvil RPC and serves what a real beacon node serves a light client, built from anvil's blocks by
// beaconChain.ts and signed by a devnet sync committee, so that devnet nodes run the same light-client code as on
// mainnet, bootstrapping from this server's checkpoint root.
//
// Design (each choice written down because the devnet depends on it):
// - Slots: one beacon slot per anvil block, `slot = anchorSlot + (number − anchorNumber)`. anvil gives many blocks
//   the same timestamp and tests move its clock (evm_increaseTime), so time cannot number slots. The anchor is
//   anvil's head when the server starts; blocks before it are not on the beacon chain. `anchorSlot` (default 32,
//   not 0: the spec treats a finalized header at slot 0 as the zero header) lets tests start near a period
//   boundary (8192 slots) or a fork epoch.
// - Finality: block i's state names block i − `finalityDepth` (default 2) as finalized; a finality update uses the
//   head as attested block and head − depth as finalized, signed at head slot + 1 by that slot's committee.
// - Progress: anvil mines only on transactions, so a block holding a node's freshness mark would never get depth
//   successors. When a finality update is asked for and a block the server did not mine itself is not yet
//   finalized, the server mines the missing empty blocks (`anvil_mine`) first: finality catches up with every block
//   others made at the moment someone asks, and nothing is mined while nobody asks or all is final. Cost: `depth`
//   empty blocks per burst of activity. `mineToFinalize: false` turns this off (finality then follows whatever
//   blocks appear).
// - Reorgs (evm_revert in tests): the server re-follows anvil from the fork point; a finalized block can thus be
//   replaced, which a real chain never does. Clients see a later finalized header of the new branch once it is
//   longer. A revert below the anchor cannot be represented and is an error.
// - Requests are served one at a time, so concurrent clients never mine twice for the same block.
import { serve, type ServerType } from '@hono/node-server'
import type { BeaconConfig } from '@lodestar/config'
import { Hono } from 'hono'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes, numberToHex, type Hex } from 'viem'
import { beaconConfigOf, DEVNET_FORK_VERSIONS, devnetChain, type DevnetChainSpec, type LightClientChain } from '../chain/lightClient/chains.ts'
import {
  buildBeaconBlock,
  devnetCommittee,
  executionPayloadHeader,
  lightClientBootstrap,
  lightClientFinalityUpdate,
  lightClientOptimisticUpdate,
  lightClientUpdate,
  syncPeriodOf,
  toVersionedJson,
  type DevnetBeaconBlock,
  type ExecutionBlock,
} from './beaconChain.ts'

export type VersionedJson = { version: string; data: unknown }

/** What the HTTP layer serves; tests wrap it to serve tampered data through the same routes. */
export type LightClientDataSource = {
  genesis(): Promise<{ genesis_time: string; genesis_validators_root: Hex; genesis_fork_version: Hex }>
  bootstrap(blockRoot: Hex): Promise<VersionedJson | null>
  updates(startPeriod: number, count: number): Promise<VersionedJson[]>
  finalityUpdate(): Promise<VersionedJson | null>
  optimisticUpdate(): Promise<VersionedJson | null>
}

export type DevnetBeaconOptions = {
  /** anvil JSON-RPC URL to follow. */
  rpcUrl: string
  host?: string
  /** 0 (default) picks a free port. */
  port?: number
  /** 32 random bytes by default; the committee keys and the genesis validators root derive from it. */
  seed?: Hex
  /** Overrides the root derived from the seed (tests: two chains that differ only in their keys). */
  genesisValidatorsRoot?: Hex
  anchorSlot?: number
  finalityDepth?: number
  mineToFinalize?: boolean
  /** Fork schedule: Electra from this epoch (default 0), Fulu from this epoch (default 0; null = never). */
  electraForkEpoch?: number
  fuluForkEpoch?: number | null
  logger?: { warn(obj: object, msg: string): void }
}

export type DevnetBeacon = {
  /** Beacon node base URL for `chain.lightClient.beaconUrl`. */
  url: string
  /** Root of the anchor block's beacon header: the checkpoint nodes bootstrap from. */
  checkpointRoot: Hex
  /** The devnet chain as a measured setting (JSON) and as the light client takes it. */
  chainSpec: DevnetChainSpec
  chain: LightClientChain
  anchor: { blockNumber: bigint; blockHash: Hex; slot: number }
  follower: DevnetBeaconFollower
  stop(): Promise<void>
}

/** Starts the devnet beacon server on anvil's current head. See the module comment for how it maps and finalizes. */
export async function startDevnetBeacon(options: DevnetBeaconOptions): Promise<DevnetBeacon> {
  const follower = await createDevnetBeaconFollower(options)
  const server = await serveLightClientData(follower.source, { host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  options.logger?.warn(
    { url: server.url, checkpointRoot: follower.checkpointRoot, genesisValidatorsRoot: follower.chainSpec.genesisValidatorsRoot },
    `DEVNET BEACON CHAIN (simulator): light-client data for anvil ${options.rpcUrl} is signed by a devnet sync committee; its checkpoint ${follower.checkpointRoot.slice(0, 18)}… is a devnet trust root`,
  )
  return {
    url: server.url,
    checkpointRoot: follower.checkpointRoot,
    chainSpec: follower.chainSpec,
    chain: follower.chain,
    anchor: follower.anchor,
    follower,
    stop: server.close,
  }
}

type Record_ = { number: bigint; hash: Hex; root: Uint8Array; slot: number; block: DevnetBeaconBlock | undefined; transactions: number; minedByServer: boolean }

/** Newest blocks that keep their built beacon block in memory (finality and optimistic updates read the newest few). */
const KEEP_FULL = 64

export type DevnetBeaconFollower = {
  checkpointRoot: Hex
  chainSpec: DevnetChainSpec
  chain: LightClientChain
  config: BeaconConfig
  seed: Uint8Array
  finalityDepth: number
  anchor: { blockNumber: bigint; blockHash: Hex; slot: number }
  source: LightClientDataSource
  /** Follows anvil to its head (and mines to finalize when asked); returns the head's beacon block and the count from the anchor. */
  sync(options?: { finalize?: boolean }): Promise<{ head: DevnetBeaconBlock; blocks: number }>
  /** Empty blocks the server mined so far, and beacon blocks built (for cost figures). */
  counters(): { minedBlocks: number; builtBlocks: number }
}

export async function createDevnetBeaconFollower(options: DevnetBeaconOptions): Promise<DevnetBeaconFollower> {
  const rpc = createRpc(options.rpcUrl)
  const seed = options.seed ? hexToBytes(options.seed) : crypto.getRandomValues(new Uint8Array(32))
  if (seed.length !== 32) throw new TypeError('seed must be 32 bytes')
  const anchorSlot = options.anchorSlot ?? 32
  const depth = options.finalityDepth ?? 2
  if (!Number.isSafeInteger(anchorSlot) || anchorSlot < 1) throw new RangeError('anchorSlot must be an integer ≥ 1')
  if (!Number.isSafeInteger(depth) || depth < 1) throw new RangeError('finalityDepth must be an integer ≥ 1')
  const mineToFinalize = options.mineToFinalize ?? true

  const head = await rpc.block('latest')
  const chainSpec: DevnetChainSpec = {
    genesisTime: Math.max(0, Number(BigInt(head.timestamp)) - anchorSlot * 12),
    genesisValidatorsRoot: options.genesisValidatorsRoot ?? bytesToHex(sha256(new Uint8Array([...new TextEncoder().encode('keymanager devnet genesis validators root'), ...seed]))),
    electraForkEpoch: options.electraForkEpoch ?? 0,
    fuluForkEpoch: options.fuluForkEpoch === undefined ? 0 : options.fuluForkEpoch,
  }
  const chain = devnetChain(chainSpec)
  const config = beaconConfigOf(chain)
  const anchorNumber = BigInt(head.number)
  const slotOf = (number: bigint) => anchorSlot + Number(number - anchorNumber)

  // Every block from the anchor keeps a slim record (number, hashes, root); only the newest `KEEP_FULL` keep their
  // built beacon block (branches, headers), so a long-running devnet does not grow by kilobytes per block. An older
  // block is rebuilt from anvil on demand: its parent and finalized roots are in the slim records.
  const records: Record_[] = []
  const byRoot = new Map<string, number>()
  let minedBlocks = 0
  let builtBlocks = 0

  function build(index: number, block: ExecutionBlock): DevnetBeaconBlock {
    const slot = slotOf(BigInt(block.number))
    const period = syncPeriodOf(slot)
    const finalized = index === 0 ? { root: new Uint8Array(32), slot: 0 } : records[Math.max(0, index - depth)]!
    builtBlocks++
    return buildBeaconBlock({
      config,
      genesisTime: chainSpec.genesisTime,
      slot,
      parentRoot: index === 0 ? new Uint8Array(32) : records[index - 1]!.root,
      execution: executionPayloadHeader(block),
      finalized: { root: finalized.root, slot: finalized.slot },
      currentCommittee: devnetCommittee(seed, period),
      nextCommittee: devnetCommittee(seed, period + 1),
    })
  }

  function append(block: ExecutionBlock, minedByServer: boolean): void {
    const index = records.length
    const beacon = build(index, block)
    records.push({ number: BigInt(block.number), hash: block.hash, root: beacon.root, slot: beacon.slot, block: beacon, transactions: block.transactions.length, minedByServer })
    byRoot.set(bytesToHex(beacon.root), index)
    const old = records[index - KEEP_FULL]
    if (old && index - KEEP_FULL > 0) old.block = undefined
  }

  async function full(index: number): Promise<DevnetBeaconBlock> {
    const record = records[index]!
    if (record.block) return record.block
    const block = await rpc.block(record.number)
    if (block.hash !== record.hash) throw new Error(`anvil block ${record.number} changed under the devnet beacon server`)
    return build(index, block)
  }

  append(head, false)
  const checkpointRoot = bytesToHex(records[0]!.root)

  /** Brings `records` to anvil's head, re-following from the fork point after a reorg. */
  async function follow(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const latest = await rpc.block('latest')
      const headNumber = BigInt(latest.number)
      if (headNumber < anchorNumber) throw new Error(`anvil's head ${headNumber} is below the devnet beacon anchor ${anchorNumber} (reverted past the server's start)`)
      // Walk back to the newest block both sides agree on.
      let top = records.length - 1
      while (top >= 0) {
        const record = records[top]!
        if (record.number <= headNumber) {
          const onChain = record.number === headNumber ? latest : await rpc.block(record.number)
          if (onChain.hash === record.hash) break
        }
        top--
      }
      if (top < 0) throw new Error(`anvil no longer has the devnet beacon anchor block ${anchorNumber} (${records[0]!.hash})`)
      for (const removed of records.splice(top + 1)) byRoot.delete(bytesToHex(removed.root))
      for (let i = Math.max(1, top - KEEP_FULL + 1); i <= top; i++) records[i]!.block ??= await full(i)
      const from = records[top]!.number + 1n
      if (from > headNumber) return
      const blocks = await rpc.blocks(from, headNumber)
      let consistent = true
      for (const block of blocks) {
        if (block.parentHash !== records[records.length - 1]!.hash) {
          consistent = false // anvil moved under us (a reorg between two reads): follow again
          break
        }
        append(block, false)
      }
      if (consistent) return
    }
    throw new Error('anvil kept reorganising while the devnet beacon server followed it')
  }

  async function mineToFinality(): Promise<void> {
    if (!mineToFinalize) return
    let target = records.length - 1
    while (target > 0 && records[target]!.minedByServer) target--
    if (target === 0) return // the anchor is the checkpoint itself
    const missing = target + depth - (records.length - 1)
    if (missing <= 0) return
    const before = records.length
    await rpc.send('anvil_mine', [numberToHex(missing)])
    minedBlocks += missing
    await follow()
    // The empty blocks just mined are ours (not targets for finality); a block with transactions someone else got
    // mined in between is not.
    let marked = 0
    for (let i = records.length - 1; i >= before && marked < missing; i--) {
      if (records[i]!.transactions === 0) {
        records[i]!.minedByServer = true
        marked++
      }
    }
  }

  // One request at a time: follow, mine and sign never interleave.
  let queue: Promise<unknown> = Promise.resolve()
  function exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task)
    queue = run.catch(() => {})
    return run
  }

  const signing = (signatureSlot: number) => ({ config, signatureSlot, committee: devnetCommittee(seed, syncPeriodOf(signatureSlot)) })

  async function sync({ finalize = false }: { finalize?: boolean } = {}): Promise<{ head: DevnetBeaconBlock; blocks: number }> {
    return exclusive(async () => {
      await follow()
      if (finalize) await mineToFinality()
      return { head: records[records.length - 1]!.block!, blocks: records.length }
    })
  }

  /** Runs `task` after following anvil, inside the same turn of the queue. */
  function afterSync<T>(task: () => Promise<T>, finalize = false): Promise<T> {
    return exclusive(async () => {
      await follow()
      if (finalize) await mineToFinality()
      return task()
    })
  }

  const source: LightClientDataSource = {
    async genesis() {
      return { genesis_time: String(chainSpec.genesisTime), genesis_validators_root: chainSpec.genesisValidatorsRoot, genesis_fork_version: DEVNET_FORK_VERSIONS.genesis }
    },
    bootstrap: (blockRoot) =>
      afterSync(async () => {
        const index = byRoot.get(blockRoot.toLowerCase())
        if (index === undefined) return null
        const block = await full(index)
        return toVersionedJson(block.fork, 'LightClientBootstrap', lightClientBootstrap(block))
      }),
    updates: (startPeriod, count) =>
      afterSync(async () => {
        const out: VersionedJson[] = []
        for (let period = startPeriod; period < startPeriod + count; period++) {
          // The best update of a period: its newest block (not the anchor) signed within the same period.
          let index = -1
          for (let i = records.length - 1; i >= 1; i--) {
            const slot = records[i]!.slot
            if (syncPeriodOf(slot) === period && syncPeriodOf(slot + 1) === period) {
              index = i
              break
            }
            if (syncPeriodOf(slot) < period) break
          }
          if (index < 0) break
          const attested = await full(index)
          const finalized = await full(Math.max(0, index - depth))
          out.push(toVersionedJson(attested.fork, 'LightClientUpdate', lightClientUpdate(attested, finalized, signing(attested.slot + 1))))
        }
        return out
      }),
    finalityUpdate: () =>
      afterSync(async () => {
        if (records.length < 2) return null
        const attested = await full(records.length - 1)
        const finalized = await full(Math.max(0, records.length - 1 - depth))
        return toVersionedJson(attested.fork, 'LightClientFinalityUpdate', lightClientFinalityUpdate(attested, finalized, signing(attested.slot + 1)))
      }, true),
    optimisticUpdate: () =>
      afterSync(async () => {
        const attested = await full(records.length - 1)
        return toVersionedJson(attested.fork, 'LightClientOptimisticUpdate', lightClientOptimisticUpdate(attested, signing(attested.slot + 1)))
      }),
  }

  return {
    checkpointRoot,
    chainSpec,
    chain,
    config,
    seed,
    finalityDepth: depth,
    anchor: { blockNumber: anchorNumber, blockHash: head.hash, slot: anchorSlot },
    source,
    sync,
    counters: () => ({ minedBlocks, builtBlocks }),
  }
}

/** Serves a `LightClientDataSource` on the beacon-APIs routes a light client uses, plus `/eth/v1/beacon/genesis`. */
export async function serveLightClientData(source: LightClientDataSource, { host = '127.0.0.1', port = 0 }: { host?: string; port?: number } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono()
  const answer = (value: VersionedJson | null, missing: string) => (value ? Response.json(value) : Response.json({ code: 404, message: missing }, { status: 404 }))
  app.get('/eth/v1/beacon/genesis', async (c) => c.json({ data: await source.genesis() }))
  app.get('/eth/v1/beacon/light_client/bootstrap/:root', async (c) => {
    const root = c.req.param('root')
    if (!/^0x[0-9a-fA-F]{64}$/.test(root)) return c.json({ code: 400, message: 'block_root must be 32 bytes of 0x-hex' }, 400)
    return answer(await source.bootstrap(root as Hex), 'no bootstrap for this block root')
  })
  app.get('/eth/v1/beacon/light_client/updates', async (c) => {
    const start = Number(c.req.query('start_period'))
    const count = Number(c.req.query('count'))
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(count) || count < 1 || count > 128) {
      return c.json({ code: 400, message: 'start_period must be ≥ 0 and count 1…128' }, 400)
    }
    return c.json(await source.updates(start, count))
  })
  app.get('/eth/v1/beacon/light_client/finality_update', async () => answer(await source.finalityUpdate(), 'no finality update yet'))
  app.get('/eth/v1/beacon/light_client/optimistic_update', async () => answer(await source.optimisticUpdate(), 'no optimistic update yet'))
  app.onError((error, c) => c.json({ code: 500, message: error.message.slice(0, 300) }, 500))
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s))
    s.once('error', reject)
  })
  const address = server.address() as { port: number }
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/** Minimal JSON-RPC over fetch, with batches for block ranges (one round trip per 256 blocks). */
function createRpc(url: string) {
  let id = 0
  async function post(body: unknown): Promise<unknown> {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
    if (!response.ok) throw new Error(`anvil RPC answered HTTP ${response.status}`)
    return response.json()
  }
  function result(reply: unknown, method: string): unknown {
    const r = reply as { result?: unknown; error?: { message?: string } }
    if (r.error || r.result === undefined || r.result === null) throw new Error(`anvil RPC ${method}: ${r.error?.message ?? 'no result'}`)
    return r.result
  }
  return {
    /** A call whose answer is not needed (anvil_mine answers null). */
    async send(method: string, params: unknown[]): Promise<void> {
      const reply = (await post({ jsonrpc: '2.0', id: ++id, method, params })) as { error?: { message?: string } }
      if (reply.error) throw new Error(`anvil RPC ${method}: ${reply.error.message ?? 'error'}`)
    },
    async block(tag: 'latest' | bigint): Promise<ExecutionBlock> {
      return result(await post({ jsonrpc: '2.0', id: ++id, method: 'eth_getBlockByNumber', params: [tag === 'latest' ? tag : numberToHex(tag), false] }), 'eth_getBlockByNumber') as ExecutionBlock
    },
    async blocks(from: bigint, to: bigint): Promise<ExecutionBlock[]> {
      const out: ExecutionBlock[] = []
      for (let start = from; start <= to; start += 256n) {
        const end = start + 255n < to ? start + 255n : to
        const batch = []
        for (let n = start; n <= end; n++) batch.push({ jsonrpc: '2.0', id: ++id, method: 'eth_getBlockByNumber', params: [numberToHex(n), false] })
        const replies = (await post(batch)) as { id: number }[]
        if (!Array.isArray(replies)) throw new Error('anvil RPC: batch answer is not a list')
        replies.sort((a, b) => a.id - b.id)
        for (const reply of replies) out.push(result(reply, 'eth_getBlockByNumber') as ExecutionBlock)
      }
      return out
    },
  }
}
