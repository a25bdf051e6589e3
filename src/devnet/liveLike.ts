// The devnet's live-like mode (docs/protocol.md#blob-transactions, docs/protocol.md#limits): a strict RPC proxy and a
// beacon server in front of anvil that answer the way public providers and real beacon nodes do since Fusaka, so the
// devnet meets the refusals a live network gives. A simulator, clearly named as such: no live network is reachable
// from the machines this project is tested on, so these answers are taken from the clients' sources and docs:
// - RPC (reth 1.x): a v0 blob sidecar after Osaka is refused with "unexpected eip-4844 sidecar after osaka";
//   `eth_getLogs` over more than `--rpc.max-blocks-per-filter` blocks with "query exceeds max block range N"; a
//   provider over its request rate answers JSON-RPC error -32005 (Infura's and Alchemy's code for rate limits).
// - Beacon (beacon-APIs v3 `getBlobs`): `versioned_hashes` as a repeated parameter (Grandine answers 400 to a
//   comma-joined list); a node that is not a supernode answers 500 "Insufficient data columns" (Lighthouse) or 404
//   "does not custody" (Prysm); blobs older than MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS epochs are pruned;
//   `blob_sidecars` answers 410 (deprecated since Fulu).
// The beacon chain of this simulator is anvil's own: live-like mode sets anvil's block timestamp interval to
// SECONDS_PER_SLOT, so block n is slot n and `(timestamp − genesis_time) / SECONDS_PER_SLOT` finds it, as on a real
// chain (a real chain also has missed slots; `src/chain/beacon.test.ts` covers those).
import { createServer, type Server } from 'node:http'
import { startRpcProxy, type JsonRpcCall, type RpcProxy } from './rpcProxy.ts'
import { unwrapBlobTransaction } from '../chain/blobTransaction.ts'
import type { Hex } from 'viem'

/** reth's message for a v0 sidecar sent after Osaka (crates/transaction-pool, `Eip4844PoolTransactionError`). */
export const RETH_V0_AFTER_OSAKA = 'unexpected eip-4844 sidecar after osaka'
export const RATE_LIMITED = { code: -32005, message: 'rate limit exceeded: too many requests' }

export type StrictRpcOptions = {
  upstream: string
  /** Widest `eth_getLogs` range answered, in blocks. Default 1,000 (reth's default `--rpc.max-blocks-per-filter` is 100,000; public endpoints cap far lower). */
  maxLogRange?: number
  /** Calls per second across all clients (a token bucket of this size, refilled continuously). Default 200. */
  requestsPerSecond?: number
  /** The bucket's clock, milliseconds (default Date.now): tests hold it still to send a burst that is one. */
  now?: () => number
}

export type StrictRpc = RpcProxy & {
  /** What the proxy refused, by reason. */
  refused: { v0Sidecar: number; logRange: number; rateLimited: number }
  /** The widest `eth_getLogs` range asked so far, in blocks. */
  widestLogRange: bigint
}

async function upstreamCall(upstream: string, method: string, params: unknown[]): Promise<unknown> {
  const answer = (await (
    await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  ).json()) as { result?: unknown }
  return answer.result
}

/** A JSON-RPC proxy in front of anvil that refuses what post-Osaka reth and public providers refuse. */
export async function startStrictRpc(options: StrictRpcOptions): Promise<StrictRpc> {
  const maxLogRange = BigInt(options.maxLogRange ?? 1000)
  const rate = options.requestsPerSecond ?? 200
  const clock = options.now ?? Date.now
  let tokens = rate
  let refilled = clock()
  const refused = { v0Sidecar: 0, logRange: 0, rateLimited: 0 }
  let widestLogRange = 0n
  let proxy: RpcProxy | undefined

  async function blockOf(tag: unknown): Promise<bigint> {
    if (typeof tag === 'string' && /^0x[0-9a-f]+$/i.test(tag)) return BigInt(tag)
    if (tag === 'earliest') return 0n
    return BigInt((await upstreamCall(proxy!.upstream, 'eth_blockNumber', [])) as Hex)
  }

  async function request(call: JsonRpcCall) {
    const now = clock()
    tokens = Math.min(rate, tokens + ((now - refilled) / 1000) * rate)
    refilled = now
    if (tokens < 1) {
      refused.rateLimited++
      return { error: RATE_LIMITED }
    }
    tokens -= 1
    if (call.method === 'eth_sendRawTransaction') {
      const raw = call.params?.[0]
      if (typeof raw === 'string' && raw.startsWith('0x03')) {
        let version: number | undefined
        try {
          version = unwrapBlobTransaction(raw as Hex).sidecars.version
        } catch {
          version = undefined
        }
        if (version === 0) {
          refused.v0Sidecar++
          return { error: { code: -32003, message: RETH_V0_AFTER_OSAKA } }
        }
      }
    }
    if (call.method === 'eth_getLogs') {
      const filter = (call.params?.[0] ?? {}) as { fromBlock?: unknown; toBlock?: unknown; blockHash?: unknown }
      if (filter.blockHash === undefined) {
        const [from, to] = await Promise.all([blockOf(filter.fromBlock ?? 'latest'), blockOf(filter.toBlock ?? 'latest')])
        const span = to - from + 1n
        if (span > widestLogRange) widestLogRange = span
        if (span > maxLogRange) {
          refused.logRange++
          return { error: { code: -32602, message: `query exceeds max block range ${maxLogRange}` } }
        }
      }
    }
    return undefined
  }

  proxy = await startRpcProxy({ upstream: options.upstream, hooks: { request } })
  return Object.assign(proxy, {
    refused,
    get widestLogRange() {
      return widestLogRange
    },
  })
}

/** How the simulated beacon node answers `getBlobs`. */
export type BeaconMode = 'supernode' | 'lighthouse-not-supernode' | 'prysm-not-supernode'

export type LiveBeaconOptions = {
  /** anvil's RPC URL: blocks, timestamps and blobs (`/eth/v1/beacon/blobs/{blockNumber}`) come from there. */
  anvilRpcUrl: string
  chainId: number
  secondsPerSlot?: number
  slotsPerEpoch?: number
  /** Epochs a block's blobs are served after it (MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS). Default 4096. */
  retentionEpochs?: number
  mode?: BeaconMode
}

export type LiveBeacon = {
  url: string
  mode: BeaconMode
  /** Requests by kind of answer. */
  answered: { blobs: number; commaJoined: number; notSupernode: number; pruned: number; sidecars410: number }
  close(): Promise<void>
}

/**
 * Sets anvil's block timestamp interval to `secondsPerSlot` so that block n sits at slot n (call before the
 * devnet's first transaction).
 */
export async function alignAnvilToSlots(anvilRpcUrl: string, secondsPerSlot: number): Promise<void> {
  await upstreamCall(anvilRpcUrl, 'anvil_setBlockTimestampInterval', [secondsPerSlot])
}

/** A beacon node simulator serving anvil's blobs by slot, with a real node's refusals. */
export async function startLiveBeacon(options: LiveBeaconOptions): Promise<LiveBeacon> {
  const secondsPerSlot = BigInt(options.secondsPerSlot ?? 12)
  const slotsPerEpoch = BigInt(options.slotsPerEpoch ?? 32)
  const retentionEpochs = BigInt(options.retentionEpochs ?? 4096)
  const answered = { blobs: 0, commaJoined: 0, notSupernode: 0, pruned: 0, sidecars410: 0 }
  const rpc = (method: string, params: unknown[]) => upstreamCall(options.anvilRpcUrl, method, params)
  const genesisTime = BigInt(((await rpc('eth_getBlockByNumber', ['0x0', false])) as { timestamp: Hex }).timestamp)
  const head = async () => {
    const block = (await rpc('eth_getBlockByNumber', ['latest', false])) as { number: Hex; timestamp: Hex }
    return { number: BigInt(block.number), slot: (BigInt(block.timestamp) - genesisTime) / secondsPerSlot }
  }
  /** The block at `slot`, by binary search over anvil's timestamps; undefined for an empty (missed) slot. */
  async function blockAtSlot(slot: bigint): Promise<bigint | undefined> {
    const want = genesisTime + slot * secondsPerSlot
    let [lo, hi] = [0n, (await head()).number]
    while (lo <= hi) {
      const mid = (lo + hi) / 2n
      const ts = BigInt(((await rpc('eth_getBlockByNumber', [`0x${mid.toString(16)}`, false])) as { timestamp: Hex }).timestamp)
      if (ts === want) return mid
      if (ts < want) lo = mid + 1n
      else hi = mid - 1n
    }
    return undefined
  }

  const beacon = { mode: options.mode ?? ('supernode' as BeaconMode) }
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))

  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://beacon')
      const path = url.pathname
      if (path === '/eth/v1/beacon/genesis')
        return json(res, 200, { data: { genesis_time: genesisTime.toString(), genesis_validators_root: `0x${'00'.repeat(32)}`, genesis_fork_version: '0x10000038' } })
      if (path === '/eth/v1/config/spec')
        return json(res, 200, {
          data: {
            CONFIG_NAME: 'keymanager-live-like-devnet',
            DEPOSIT_CHAIN_ID: String(options.chainId),
            SECONDS_PER_SLOT: secondsPerSlot.toString(),
            SLOTS_PER_EPOCH: slotsPerEpoch.toString(),
            ELECTRA_FORK_EPOCH: '0',
            FULU_FORK_EPOCH: '0',
            MIN_EPOCHS_FOR_BLOB_SIDECARS_REQUESTS: retentionEpochs.toString(),
            MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS: retentionEpochs.toString(),
          },
        })
      if (path === '/eth/v1/beacon/headers/head') {
        const { slot } = await head()
        return json(res, 200, { data: { root: `0x${'00'.repeat(32)}`, canonical: true, header: { message: { slot: slot.toString() } } } })
      }
      if (path.startsWith('/eth/v1/beacon/blob_sidecars/')) {
        answered.sidecars410++
        return json(res, 410, { code: 410, message: 'blob_sidecars is deprecated since Fulu: use /eth/v1/beacon/blobs' })
      }
      const match = /^\/eth\/v1\/beacon\/blobs\/(\d{1,20})$/.exec(path)
      if (!match) return json(res, 404, { code: 404, message: 'route not found' })
      const hashes = url.searchParams.getAll('versioned_hashes')
      if (hashes.some((hash) => !/^0x[0-9a-fA-F]{64}$/.test(hash))) {
        answered.commaJoined++
        return json(res, 400, { code: 400, message: 'invalid query parameter versioned_hashes: expected a 32-byte hex hash per parameter' })
      }
      const slot = BigInt(match[1]!)
      if (beacon.mode === 'lighthouse-not-supernode') {
        answered.notSupernode++
        return json(res, 500, { code: 500, message: 'Insufficient data columns to reconstruct blobs: required 64, but only 8 were found.' })
      }
      if (beacon.mode === 'prysm-not-supernode') {
        answered.notSupernode++
        return json(res, 404, { code: 404, message: 'node does not custody enough data columns to reconstruct blobs; start it with --supernode' })
      }
      const current = await head()
      if (slot + retentionEpochs * slotsPerEpoch < current.slot) {
        answered.pruned++
        return json(res, 404, { code: 404, message: 'Blobs not available: slot is outside the data availability window' })
      }
      const number = await blockAtSlot(slot)
      if (number === undefined) return json(res, 404, { code: 404, message: 'Block not found' })
      // anvil serves blobs by EL block number and takes the hashes comma-joined.
      const query = hashes.length > 0 ? `?versioned_hashes=${hashes.join(',')}` : ''
      const upstream = await fetch(new URL(`/eth/v1/beacon/blobs/${number}${query}`, options.anvilRpcUrl))
      const body = (await upstream.json()) as { data?: unknown }
      answered.blobs++
      return json(res, upstream.status, { execution_optimistic: false, finalized: false, data: body.data ?? [] })
    } catch (error) {
      if (!res.headersSent) json(res, 500, { code: 500, message: `simulator: ${(error as Error).message}` })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return Object.assign(beacon, {
    url: `http://127.0.0.1:${port}`,
    answered,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  })
}
