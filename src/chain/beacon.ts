// Fetching blobs back (docs/protocol.md#actors-and-trust, docs/protocol.md#wire-formats, docs/protocol.md#limits). Blob
// sources are untrusted transport: RPC and beacon nodes may lie, so `fetchVerifiedBlobs` recomputes each blob's KZG
// commitment and accepts it only if `0x01 ‖ sha256(commitment)[1:]` equals the versioned hash recorded on chain.
// Nothing else should read a `BlobSource` directly.
//
// What the endpoints return (checked against anvil 1.7.1 and the beacon-APIs spec):
// - `GET /eth/v1/beacon/blobs/{block_id}?versioned_hashes=0x…&versioned_hashes=0x…` (post-Fulu `getBlobs`):
//   `{"execution_optimistic", "finalized", "data": ["0x<blob hex>", …]}`, blobs in the block's commitment order. A
//   beacon node takes a slot and the hashes as a repeated parameter (Grandine answers 400 to a comma-joined list);
//   only supernodes and semi-supernodes can serve it. anvil serves the route on its RPC port with an EL block number
//   (or hash), takes the hashes comma-separated only (a repeated parameter keeps only the last), answers 404 for an
//   unknown block and `"data":[]` for an unknown hash. Some providers' older `blobs` route answers with sidecar
//   objects instead of strings; both shapes are read.
// - `GET /eth/v1/beacon/blob_sidecars/{slot}` (pre-Fulu, deprecated): `{"data": [{"index", "blob", "kzg_commitment",
//   "kzg_proof", "signed_block_header", "kzg_commitment_inclusion_proof"}, …]}`. anvil and newer nodes answer 410.
// - `GET /eth/v1/beacon/genesis`: `{"data": {"genesis_time": "<decimal seconds>", …}}`; `GET /eth/v1/config/spec`:
//   `{"data": {"SECONDS_PER_SLOT": "12", "SLOTS_PER_EPOCH": "32", "FULU_FORK_EPOCH", "DEPOSIT_CHAIN_ID", …}}`,
//   every value a decimal string; `GET /eth/v1/beacon/headers/head`: the head slot.
// - anvil JSON-RPC `anvil_getBlobByHash [versionedHash]`: the blob as 0x-hex, or null.
import { createHash } from 'node:crypto'
import { bytesToHex, hexToBytes, isHex, type Hex } from 'viem'
import {
  BeaconChainMismatchError,
  BeaconNotSupernodeError,
  BlobHashMismatchError,
  BlobNotFoundError,
  BlobsPrunedError,
  BlobSourceError,
} from './errors.ts'
import { blobToCommitment, commitmentToVersionedHash } from './kzg.ts'
import { readBoundedBody } from '../net/boundedBody.ts'

// Re-exported for callers that take the fetch and its failure modes from one module; errors.ts is their home.
export { BeaconChainMismatchError, BeaconNotSupernodeError, BlobHashMismatchError, BlobNotFoundError, BlobsPrunedError, BlobSourceError }

const BYTES_PER_BLOB = 131072
/** Most distinct versioned hashes one fetch may ask for (a transaction carries at most 6 blobs). */
export const MAX_VERSIONED_HASHES_PER_FETCH = 64

export type FetchBlobsParameters = {
  /** The execution block that included the blob transaction. */
  blockNumber: bigint
  blockHash: Hex
  /** Its timestamp (seconds): a beacon node is asked by slot = (timestamp − genesis_time) / secondsPerSlot. */
  blockTimestamp: bigint
  versionedHashes: readonly Hex[]
}

/**
 * Transport for blobs. `fetchBlobs` returns the blobs the source claims carry the requested versioned hashes, in
 * any order; it verifies nothing. Read blobs only through `fetchVerifiedBlobs`.
 */
export interface BlobSource {
  fetchBlobs(parameters: FetchBlobsParameters): Promise<Uint8Array[]>
}

export type HttpSourceOptions = {
  /** Per request, body included. Default 30 s. */
  timeoutMs?: number
  /** A larger response is cut off and refused. Default 32 MiB: a full block of 21 blobs as JSON is ~5.6 MB. */
  maxResponseBytes?: number
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch
}

export type BeaconSourceOptions = HttpSourceOptions & {
  /** The execution chain id this beacon node must follow (its spec's DEPOSIT_CHAIN_ID); checked on first use. */
  chainId?: number
  /** The beacon genesis time of the network (a preset of src/chain/networks.ts); checked on first use when given. */
  genesisTime?: number
}

/**
 * Returns the blobs for `versionedHashes`, in that order, each checked against its hash by KZG commitment.
 * A missing blob is a `BlobNotFoundError`; a source that served blobs of which none matches a wanted hash is a
 * `BlobHashMismatchError`; transport failures are `BlobSourceError`.
 */
export async function fetchVerifiedBlobs(source: BlobSource, parameters: FetchBlobsParameters): Promise<Uint8Array[]> {
  const wanted = parameters.versionedHashes.map((hash, i) => normaliseVersionedHash(hash, i))
  const distinct = [...new Set(wanted)]
  if (distinct.length === 0 || distinct.length > MAX_VERSIONED_HASHES_PER_FETCH)
    throw new RangeError(`ask for 1 to ${MAX_VERSIONED_HASHES_PER_FETCH} versioned hashes, got ${distinct.length}`)
  const served = await source.fetchBlobs({ ...parameters, versionedHashes: distinct })
  const found = new Map<Hex, Uint8Array>()
  const unmatched: string[] = []
  const seen = new Set<string>()
  // A commitment costs ~30-60 ms: a source that floods junk gets a bounded number of them checked.
  const maxChecks = 2 * distinct.length + 4
  for (const blob of served) {
    if (found.size === distinct.length || seen.size === maxChecks) break
    // The same bytes served twice (e.g. by two routes) are committed to once.
    const digest = blob instanceof Uint8Array ? createHash('sha256').update(blob).digest('hex') : 'not bytes'
    if (seen.has(digest)) continue
    seen.add(digest)
    const hash = versionedHashOf(blob)
    if (hash !== undefined && distinct.includes(hash)) found.set(hash, blob.slice())
    else unmatched.push(hash ?? 'invalid')
  }
  const missing = distinct.find((hash) => !found.has(hash))
  if (missing !== undefined) {
    if (unmatched.length > 0) throw new BlobHashMismatchError(missing, unmatched)
    throw new BlobNotFoundError(missing)
  }
  return wanted.map((hash) => found.get(hash)!)
}

/** The versioned hash a blob commits to, or undefined when it is not a valid blob (wrong size, field element ≥ p). */
export function versionedHashOf(blob: Uint8Array): Hex | undefined {
  if (!(blob instanceof Uint8Array) || blob.length !== BYTES_PER_BLOB) return undefined
  try {
    return bytesToHex(commitmentToVersionedHash(blobToCommitment(blob)))
  } catch {
    return undefined
  }
}

/** anvil's own blob routes on its RPC port: the beacon-shaped REST route by block number, then `anvil_getBlobByHash`. */
export function anvilBlobSource(rpcUrl: string, options: HttpSourceOptions = {}): BlobSource {
  const http = createHttpClient(rpcUrl, options)
  return {
    async fetchBlobs({ blockNumber, versionedHashes }) {
      const path = `/eth/v1/beacon/blobs/${blockNumber}`
      const response = await http.get(path, `versioned_hashes=${versionedHashes.join(',')}`)
      let blobs: Uint8Array[] = []
      if (response.status === 200) blobs = selectClaimed(parseBlobItems(response.json, path), versionedHashes)
      else if (response.status !== 404) throw statusError(path, response.status)
      if (blobs.length >= versionedHashes.length) return blobs
      // The block number may be stale (reorg) or the route may not know it: anvil also looks blobs up by hash.
      for (const hash of versionedHashes) {
        const blob = await http.rpc('anvil_getBlobByHash', [hash])
        if (blob === null) continue
        blobs.push(parseBlobHex(blob, '/ (anvil_getBlobByHash)'))
      }
      return blobs
    },
  }
}

/** What a beacon node says about its chain (`/eth/v1/beacon/genesis`, `/eth/v1/config/spec`), read once. */
export type BeaconChainConfig = {
  genesisTime: bigint
  secondsPerSlot: bigint
  slotsPerEpoch: bigint
  /** Undefined for a node that knows no Fulu (pre-PeerDAS): it serves only `blob_sidecars`. */
  fuluForkEpoch: bigint | undefined
  /** Epochs blobs are kept after their block (MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS, or the blob one pre-Fulu). */
  retentionEpochs: bigint
  depositChainId: string | undefined
}

const FAR_FUTURE_EPOCH = 2n ** 64n - 1n

/**
 * A beacon node (or provider) by its REST base URL; credentials in the URL become a Basic Authorization header.
 *
 * The block's slot is found from the block's own timestamp and the node's chain (genesis time and SECONDS_PER_SLOT
 * from `/eth/v1/beacon/genesis` and `/eth/v1/config/spec`, never built in): consensus sets every execution timestamp
 * to `genesis_time + slot × SECONDS_PER_SLOT`, so skipped (missed) slots change nothing. Counting blocks would.
 *
 * Fulu nodes are asked `GET /eth/v1/beacon/blobs/{slot}?versioned_hashes=…&versioned_hashes=…` (a repeated
 * parameter, as the beacon-APIs define it: Grandine refuses a comma-joined list with 400). Nodes whose spec has no
 * Fulu fork are asked `GET /eth/v1/beacon/blob_sidecars/{slot}` (deprecated, and answered 410 by newer nodes).
 * The answers that matter get their own errors: a node that is not a supernode (`BeaconNotSupernodeError`: Lighthouse
 * 500 "Insufficient data columns", Prysm 404 "does not custody") and a block older than the retention window
 * (`BlobsPrunedError`, pointing to archives and peers; Lighthouse answers 404 there, Prysm an empty list).
 */
export function beaconBlobSource(beaconUrl: string, options: BeaconSourceOptions = {}): BlobSource & { config(): Promise<BeaconChainConfig> } {
  const http = createHttpClient(beaconUrl, options)
  let configPromise: Promise<BeaconChainConfig> | undefined

  async function readConfig(): Promise<BeaconChainConfig> {
    const genesisPath = '/eth/v1/beacon/genesis'
    const genesis = await http.get(genesisPath)
    if (genesis.status !== 200) throw statusError(genesisPath, genesis.status)
    const time = (genesis.json as { data?: { genesis_time?: unknown } } | null)?.data?.genesis_time
    if (typeof time !== 'string' || !/^\d{1,20}$/.test(time)) throw malformed(genesisPath, 'data.genesis_time is not a decimal string')
    const specPath = '/eth/v1/config/spec'
    const spec = await http.get(specPath)
    if (spec.status !== 200) throw statusError(specPath, spec.status)
    const data = (spec.json as { data?: Record<string, unknown> } | null)?.data
    if (typeof data !== 'object' || data === null) throw malformed(specPath, '`data` is not an object')
    const number = (key: string, required: boolean): bigint | undefined => {
      const value = data[key]
      if (value === undefined && !required) return undefined
      if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) throw malformed(specPath, `${key} is not a decimal string`)
      return BigInt(value)
    }
    const secondsPerSlot = number('SECONDS_PER_SLOT', true)!
    const slotsPerEpoch = number('SLOTS_PER_EPOCH', true)!
    if (secondsPerSlot === 0n || slotsPerEpoch === 0n) throw malformed(specPath, 'SECONDS_PER_SLOT and SLOTS_PER_EPOCH must be positive')
    const fulu = number('FULU_FORK_EPOCH', false)
    const fuluForkEpoch = fulu === undefined || fulu >= FAR_FUTURE_EPOCH ? undefined : fulu
    const retentionEpochs =
      (fuluForkEpoch !== undefined ? number('MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS', false) : undefined) ??
      number('MIN_EPOCHS_FOR_BLOB_SIDECARS_REQUESTS', false) ??
      4096n
    const depositChainId = typeof data.DEPOSIT_CHAIN_ID === 'string' ? data.DEPOSIT_CHAIN_ID : undefined
    if (options.genesisTime !== undefined && BigInt(time) !== BigInt(options.genesisTime))
      throw new BeaconChainMismatchError(`genesis_time ${options.genesisTime}`, `genesis_time ${time}`)
    if (options.chainId !== undefined && depositChainId !== String(options.chainId))
      throw new BeaconChainMismatchError(`DEPOSIT_CHAIN_ID ${options.chainId}`, depositChainId === undefined ? 'no DEPOSIT_CHAIN_ID' : `DEPOSIT_CHAIN_ID ${depositChainId}`)
    return { genesisTime: BigInt(time), secondsPerSlot, slotsPerEpoch, fuluForkEpoch, retentionEpochs, depositChainId }
  }

  function config(): Promise<BeaconChainConfig> {
    configPromise ??= readConfig()
    // A failed lookup is not cached: the next fetch asks again.
    return configPromise.catch((error) => {
      configPromise = undefined
      throw error
    })
  }

  /** The head slot, to tell a pruned block from a missing one. */
  async function headSlot(): Promise<bigint | undefined> {
    const response = await http.get('/eth/v1/beacon/headers/head').catch(() => undefined)
    const slot = (response?.json as { data?: { header?: { message?: { slot?: unknown } } } } | undefined)?.data?.header?.message?.slot
    return typeof slot === 'string' && /^\d{1,20}$/.test(slot) ? BigInt(slot) : undefined
  }

  /** Throws `BlobsPrunedError` when `slot` lies before the node's retention window. */
  async function checkPruned(path: string, status: number | undefined, slot: bigint, chain: BeaconChainConfig): Promise<void> {
    const head = await headSlot()
    if (head === undefined) return
    const window = chain.retentionEpochs * chain.slotsPerEpoch
    if (head > window && slot < head - window)
      throw new BlobsPrunedError(path, status, { slot, headSlot: head, retentionEpochs: chain.retentionEpochs, slotsPerEpoch: chain.slotsPerEpoch })
  }

  async function fromBlobsRoute(slot: bigint, wanted: readonly Hex[], chain: BeaconChainConfig): Promise<Uint8Array[] | 'no-route'> {
    const path = `/eth/v1/beacon/blobs/${slot}`
    const response = await http.get(path, wanted.map((hash) => `versioned_hashes=${hash}`).join('&'))
    if (response.status === 200) {
      const items = parseBlobItems(response.json, path)
      // Sidecar objects name their commitment: those claiming a wanted hash are the node's answer.
      if (items.some((item) => item.claimedHash !== undefined)) return selectClaimed(items, wanted)
      // More blobs than asked: the node ignored the filter; pick the wanted ones by commitment.
      const blobs = items.length > wanted.length ? selectByCommitment(items, wanted) : items.map((item) => item.blob)
      if (blobs.length < wanted.length) await checkPruned(path, 200, slot, chain)
      return blobs
    }
    if (response.status === 500 && /insufficient data columns/i.test(response.message ?? '')) throw new BeaconNotSupernodeError(path, 500, slot)
    if (response.status === 404 && /does not custody|not custod/i.test(response.message ?? '')) throw new BeaconNotSupernodeError(path, 404, slot)
    if (response.status === 404) {
      await checkPruned(path, 404, slot, chain)
      return []
    }
    // A node that claims Fulu in its spec but does not route getBlobs yet (older builds): use blob_sidecars.
    if (response.status === 405 || response.status === 501) return 'no-route'
    throw statusError(path, response.status)
  }

  async function fromSidecarsRoute(slot: bigint, wanted: readonly Hex[], chain: BeaconChainConfig): Promise<Uint8Array[]> {
    const path = `/eth/v1/beacon/blob_sidecars/${slot}`
    const response = await http.get(path)
    if (response.status === 410)
      throw new BlobSourceError(path, 'The beacon node no longer serves blob_sidecars (deprecated since Fulu), and its spec names no Fulu fork.', 410)
    if (response.status === 404) {
      await checkPruned(path, 404, slot, chain)
      return []
    }
    if (response.status !== 200) throw statusError(path, response.status)
    const blobs = selectClaimed(parseBlobItems(response.json, path), wanted)
    if (blobs.length < wanted.length) await checkPruned(path, 200, slot, chain)
    return blobs
  }

  return {
    config,
    async fetchBlobs({ blockTimestamp, versionedHashes }) {
      const chain = await config()
      const elapsed = blockTimestamp - chain.genesisTime
      if (elapsed < 0n || elapsed % chain.secondsPerSlot !== 0n)
        throw new BlobSourceError('/eth/v1/beacon/genesis', 'Block timestamp is not a slot time of this beacon chain.', undefined, {
          metaMessages: [`block timestamp: ${blockTimestamp}`, `genesis time: ${chain.genesisTime}`, `seconds per slot: ${chain.secondsPerSlot}`],
        })
      const slot = elapsed / chain.secondsPerSlot
      if (chain.fuluForkEpoch !== undefined) {
        const blobs = await fromBlobsRoute(slot, versionedHashes, chain)
        if (blobs !== 'no-route') return blobs
      }
      return fromSidecarsRoute(slot, versionedHashes, chain)
    },
  }
}

type BlobItem = { blob: Uint8Array; claimedHash?: Hex }

/** Blobs a response presents as the wanted ones: every bare blob (filtered answer), sidecars claiming a wanted hash. */
function selectClaimed(items: readonly BlobItem[], wanted: readonly Hex[]): Uint8Array[] {
  return items.filter((item) => item.claimedHash === undefined || wanted.includes(item.claimedHash)).map((item) => item.blob)
}

/** Picks, from a whole block's blobs, those whose recomputed commitment is wanted (costs one commitment per blob). */
function selectByCommitment(items: readonly BlobItem[], wanted: readonly Hex[]): Uint8Array[] {
  const picked: Uint8Array[] = []
  for (const { blob, claimedHash } of items) {
    if (picked.length === wanted.length) break
    if (claimedHash !== undefined && !wanted.includes(claimedHash)) continue
    const hash = versionedHashOf(blob)
    if (hash !== undefined && wanted.includes(hash)) picked.push(blob)
  }
  return picked
}

/** `data` as bare blob strings (getBlobs) or sidecar objects (blob_sidecars, older getBlobs). */
function parseBlobItems(json: unknown, path: string): BlobItem[] {
  const data = (json as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) throw malformed(path, '`data` is not an array')
  return data.map((item: unknown, i): BlobItem => {
    if (typeof item === 'string') return { blob: parseBlobHex(item, path) }
    if (typeof item !== 'object' || item === null) throw malformed(path, `data[${i}] is neither a blob nor a sidecar`)
    const { blob, kzg_commitment: commitment } = item as { blob?: unknown; kzg_commitment?: unknown }
    if (typeof blob !== 'string') throw malformed(path, `data[${i}].blob is missing`)
    if (typeof commitment !== 'string' || commitment.length !== 2 + 96 || !isHex(commitment, { strict: true }))
      throw malformed(path, `data[${i}].kzg_commitment is not 48 bytes of hex`)
    return {
      blob: parseBlobHex(blob, path),
      claimedHash: bytesToHex(commitmentToVersionedHash(hexToBytes(commitment as Hex))),
    }
  })
}

function parseBlobHex(value: unknown, path: string): Uint8Array {
  if (typeof value !== 'string' || value.length !== 2 + 2 * BYTES_PER_BLOB || !isHex(value, { strict: true }))
    throw malformed(path, `a blob is not ${BYTES_PER_BLOB} bytes of 0x-hex`)
  return hexToBytes(value as Hex)
}

function normaliseVersionedHash(hash: Hex, index: number): Hex {
  if (typeof hash !== 'string' || hash.length !== 66 || !isHex(hash, { strict: true }) || !hash.startsWith('0x01'))
    throw new RangeError(`versionedHashes[${index}] is not a version-1 versioned hash (0x01 then 31 bytes)`)
  return hash.toLowerCase() as Hex
}

function malformed(path: string, detail: string): BlobSourceError {
  return new BlobSourceError(path, 'Blob source sent a malformed response.', undefined, { metaMessages: [`detail: ${detail}`] })
}

function statusError(path: string, status: number): BlobSourceError {
  return new BlobSourceError(path, 'Blob source answered with an error status.', status)
}

/** `message` is the `message` field of an error answer (`{"code","message"}`), read only to classify it. */
type HttpResponse = { status: number; json?: unknown; message?: string }

/**
 * A small JSON client for one base URL. Error messages carry only the route path (never the base URL, its
 * credentials or query, where providers put API keys), and no upstream error text.
 */
function createHttpClient(baseUrl: string, options: HttpSourceOptions) {
  const timeoutMs = options.timeoutMs ?? 30_000
  const maxResponseBytes = options.maxResponseBytes ?? 32 * 1024 * 1024
  const fetchImpl = options.fetch ?? fetch
  let base: URL
  try {
    base = new URL(baseUrl)
  } catch {
    // URL's own error quotes the input, which may hold a key.
    throw new TypeError('blob source URL is not a valid URL')
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('blob source URL must be http or https')
  const headers: Record<string, string> = { accept: 'application/json' }
  if (base.username !== '' || base.password !== '') {
    const credentials = `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`
    base.username = ''
    base.password = ''
  }
  const basePath = base.pathname.replace(/\/+$/, '')

  async function send(path: string, init: { method: 'GET' | 'POST'; query?: string; body?: string }): Promise<HttpResponse> {
    const url = new URL(base)
    url.pathname = `${basePath}${path}`
    if (init.query !== undefined) url.search = base.search ? `${base.search}&${init.query}` : `?${init.query}`
    let response: Response
    try {
      response = await fetchImpl(url, {
        method: init.method,
        headers: init.body !== undefined ? { ...headers, 'content-type': 'application/json' } : headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (error) {
      throw transportError(path, error, timeoutMs)
    }
    if (response.status < 200 || response.status > 299) {
      // Error bodies are small ({"code","message"}); a larger one is not read.
      const text = await readBounded(response, path, 16 * 1024, timeoutMs).catch(() => '')
      let message: string | undefined
      try {
        const parsed = JSON.parse(text) as { message?: unknown }
        if (typeof parsed?.message === 'string') message = parsed.message
      } catch {
        message = undefined
      }
      return { status: response.status, ...(message !== undefined ? { message } : {}) }
    }
    const text = await readBounded(response, path, maxResponseBytes, timeoutMs)
    try {
      return { status: response.status, json: JSON.parse(text) }
    } catch {
      throw malformed(path, 'the body is not JSON')
    }
  }

  return {
    get: (path: string, query?: string) => send(path, { method: 'GET', ...(query !== undefined ? { query } : {}) }),
    /** One JSON-RPC call on the base URL; returns `result`. */
    async rpc(method: string, params: unknown[]): Promise<unknown> {
      const path = `/ (${method})`
      const response = await send('', { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
      if (response.status !== 200) throw statusError(path, response.status)
      const body = response.json as { result?: unknown; error?: { code?: unknown } } | null
      if (body === null || typeof body !== 'object') throw malformed(path, 'not a JSON-RPC response')
      if (body.error !== undefined)
        throw new BlobSourceError(path, 'Blob source answered with a JSON-RPC error.', undefined, {
          metaMessages: [`code: ${String(body.error?.code)}`],
        })
      if (!('result' in body)) throw malformed(path, 'no result')
      return body.result
    },
  }
}

async function readBounded(response: Response, path: string, maxBytes: number, timeoutMs: number): Promise<string> {
  const body = await readBoundedBody(response, maxBytes, {
    tooLarge: () => new BlobSourceError(path, 'Blob source response is too large.', response.status, { metaMessages: [`limit: ${maxBytes} bytes`] }),
    broken: (error) => transportError(path, error, timeoutMs),
  })
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
}

function transportError(path: string, error: unknown, timeoutMs: number): BlobSourceError {
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'TimeoutError' || name === 'AbortError')
    return new BlobSourceError(path, 'Blob source timed out.', undefined, { metaMessages: [`timeout: ${timeoutMs} ms`] })
  // Only the error code (ECONNREFUSED, UND_ERR_…) is kept: messages and causes may quote the URL.
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause
  const code = typeof cause?.code === 'string' ? cause.code : typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined
  return new BlobSourceError(path, 'Blob source request failed.', undefined, { metaMessages: code ? [`code: ${code}`] : [] })
}
