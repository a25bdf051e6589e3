// The verified chain view (docs/protocol.md#verified-chain-view): the only way a security decision reads the chain.
//
// `light-client` (the default, and the only mode outside devnet mode):
//   header  the light client's latest verified header (finalized; src/chain/lightClient) names an execution block
//           hash; the RPC's block must hash to it (blockHeader.ts) and only then are its number, timestamp and state
//           root believed (a light-client state root, when the fork still carries one, must agree);
//   state   one `eth_getProof` per read, verified from that state root (accountProof.ts): the registry's code hash
//           pinned by the measured settings, every slot proven (layout.ts, registryState.ts).
// `trusted-rpc` (devnets only; the node says so at start): the RPC's latest block and `eth_getStorageAt`, unchecked.
// Both modes decode through the same layout and answer the same typed reads, so the node has one code path.
//
// The view never goes back: a header older than one it already served is not served (a restarted light client or a
// host replaying old updates cannot move decisions into the past). Time is the header's timestamp; the host clock
// is only compared with it to warn about skew.
import type { Logger } from 'pino'
import { getAddress, numberToHex, type Address, type Hex } from 'viem'
import type { HeaderSource, VerifiedHeader } from '../lightClient/types.ts'
import { verifyRegistryProof } from './accountProof.ts'
import { verifyBlockHeader, type RpcBlockHeader } from './blockHeader.ts'
import { ChainViewError } from './errors.ts'
import { slotHex } from './layout.ts'
import { querySlots, registryState, type RegistryQuery, type RegistryState } from './registryState.ts'

export const CHAIN_VIEW_MODES = ['light-client', 'trusted-rpc'] as const
export type ChainViewMode = (typeof CHAIN_VIEW_MODES)[number]

/** A block the view vouches for: in light-client mode every field is verified. */
export type ViewHeader = {
  blockNumber: bigint
  blockHash: Hex
  stateRoot: Hex
  /** Unix seconds: "now" for every time rule of a decision made at this header. */
  timestamp: bigint
  /** Beacon slot of the light-client header; null in trusted-rpc mode. */
  slot: bigint | null
  finalized: boolean
}

/** The JSON-RPC calls the view makes (a viem client's `request`). */
export type Rpc = { request(args: { method: string; params?: unknown }): Promise<unknown> }

export type ChainViewOptions = {
  mode: ChainViewMode
  /** Verified headers (light-client mode). */
  headers?: HeaderSource
  rpc: Rpc
  registry: Address
  /** keccak256 of the registry's runtime code, from the measured settings (light-client mode). */
  registryCodeHash?: Hex
  /** The header source's own status (the light client's), shown beside the view's in `/status`. */
  headerStatus?: () => unknown
  logger: Logger
  /** Host clock in unix seconds: compared with verified time for skew warnings, never used in a decision. */
  hostNow?: () => number
  /** Host clock more than this ahead of or behind the verified head is logged (seconds). */
  skewWarningSeconds?: number
}

export type ChainView = ReturnType<typeof createChainView>

const ZERO32 = `0x${'00'.repeat(32)}`

export function createChainView(options: ChainViewOptions) {
  const { mode, rpc, logger } = options
  const registry = getAddress(options.registry)
  const hostNow = options.hostNow ?? (() => Math.floor(Date.now() / 1000))
  const skewWarning = options.skewWarningSeconds ?? 3600
  if (mode === 'light-client' && !options.headers) throw new Error('light-client mode needs a header source')
  const registryCodeHash = options.registryCodeHash ?? ''
  if (mode === 'light-client' && !/^0x[0-9a-fA-F]{64}$/.test(registryCodeHash)) throw new Error('light-client mode needs registryCodeHash: 32 bytes of hex')

  let newest: ViewHeader | undefined
  let lastError: { reason: string; message: string; at: number } | undefined
  let skewed = false

  function fail(error: unknown): never {
    const viewError =
      error instanceof ChainViewError
        ? error
        : new ChainViewError('unverified_chain', `no verified header: ${(error as Error).message?.split('\n')[0] ?? String(error)}`, { cause: error })
    lastError = { reason: viewError.reason, message: viewError.shortMessage, at: hostNow() }
    throw viewError
  }

  function noteSkew(header: ViewHeader) {
    const drift = hostNow() - Number(header.timestamp)
    const off = drift < -60 || drift > skewWarning
    if (off && !skewed) logger.warn({ hostClockMinusChain: drift, blockNumber: header.blockNumber.toString() }, 'host clock and verified chain time disagree (decisions use chain time)')
    skewed = off
  }

  function advance(header: ViewHeader): ViewHeader {
    if (newest && header.blockNumber < newest.blockNumber) return newest
    if (newest?.blockHash !== header.blockHash) noteSkew(header)
    newest = header
    lastError = undefined
    return header
  }

  async function lightClientHead(): Promise<ViewHeader> {
    let verified: VerifiedHeader
    try {
      verified = await options.headers!.latest()
    } catch (error) {
      fail(error)
    }
    if (newest && verified.blockHash.toLowerCase() === newest.blockHash) return newest
    if (newest && verified.blockNumber < newest.blockNumber) return newest
    try {
      const block = (await rpc.request({ method: 'eth_getBlockByHash', params: [verified.blockHash, false] })) as RpcBlockHeader | null
      const checked = verifyBlockHeader(block, verified.blockHash)
      if (checked.number !== verified.blockNumber || checked.timestamp !== verified.timestamp)
        throw new ChainViewError('invalid_block', `block ${verified.blockHash} is number ${checked.number} at ${checked.timestamp}, the light client says ${verified.blockNumber} at ${verified.timestamp}`)
      if (verified.stateRoot && verified.stateRoot !== ZERO32 && verified.stateRoot.toLowerCase() !== checked.stateRoot)
        throw new ChainViewError('invalid_block', `block ${verified.blockHash} has state root ${checked.stateRoot}, the light client says ${verified.stateRoot}`)
      return advance({
        blockNumber: checked.number,
        blockHash: checked.hash,
        stateRoot: checked.stateRoot,
        timestamp: checked.timestamp,
        slot: verified.slot,
        finalized: verified.finalized,
      })
    } catch (error) {
      fail(error)
    }
  }

  async function trustedHead(): Promise<ViewHeader> {
    try {
      const block = (await rpc.request({ method: 'eth_getBlockByNumber', params: ['latest', false] })) as Record<string, Hex>
      return advance({
        blockNumber: BigInt(block.number!),
        blockHash: block.hash!.toLowerCase() as Hex,
        stateRoot: block.stateRoot!,
        timestamp: BigInt(block.timestamp!),
        slot: null,
        finalized: false,
      })
    } catch (error) {
      fail(error)
    }
  }

  async function readSlots(header: ViewHeader, slots: bigint[]): Promise<Map<bigint, bigint>> {
    const block = numberToHex(header.blockNumber)
    if (mode === 'trusted-rpc') {
      const values = await Promise.all(slots.map((slot) => rpc.request({ method: 'eth_getStorageAt', params: [registry, slotHex(slot), block] })))
      return new Map(slots.map((slot, i) => [slot, BigInt((values[i] as Hex | null) ?? '0x0')]))
    }
    // By hash (EIP-1898): after a reorg the RPC cannot answer for another block of the same number; it fails instead.
    const response = await rpc.request({ method: 'eth_getProof', params: [registry, slots.map(slotHex), { blockHash: header.blockHash }] })
    return verifyRegistryProof(response as never, { stateRoot: header.stateRoot, address: registry, codeHash: registryCodeHash as Hex, slots }).values
  }

  /** The registry's state at `header`, every slot of `query` proven (light-client mode). */
  async function read(header: ViewHeader, query: RegistryQuery): Promise<RegistryState> {
    try {
      return registryState(header, query, await readSlots(header, querySlots(query)))
    } catch (error) {
      if (error instanceof ChainViewError) fail(error)
      throw error
    }
  }

  const head = mode === 'light-client' ? lightClientHead : trustedHead

  return {
    mode,
    registry,
    /** The newest header the view vouches for (light-client mode: fetches light-client updates first). */
    head,
    read,
    /** `read` at the newest header. */
    async latest(query: RegistryQuery): Promise<RegistryState> {
      return read(await head(), query)
    },
    /**
     * Waits until the view reaches block `blockNumber` (a hint from the RPC: a lie only makes this wait time out)
     * and returns that header; throws `stale_chain_view` after `timeoutMs`.
     */
    async waitForBlock(blockNumber: bigint, { timeoutMs, pollMs }: { timeoutMs: number; pollMs: number }): Promise<ViewHeader> {
      const deadline = performance.now() + timeoutMs
      let last: unknown
      for (;;) {
        try {
          const header = await head()
          if (header.blockNumber >= blockNumber) return header
        } catch (error) {
          last = error
        }
        if (performance.now() >= deadline) {
          const why = last instanceof Error ? `: ${last.message.split('\n')[0]}` : ''
          throw new ChainViewError('stale_chain_view', `the verified chain view did not reach block ${blockNumber} within ${timeoutMs} ms (at ${newest?.blockNumber ?? 'none'})${why}`)
        }
        await new Promise((r) => setTimeout(r, pollMs))
      }
    },
    /** For `/status`: mode, the newest verified block, how far behind the host clock it is, the last failure. */
    status() {
      return {
        mode,
        registryCodeHash: options.registryCodeHash ?? null,
        head: newest
          ? {
              blockNumber: newest.blockNumber.toString(),
              blockHash: newest.blockHash,
              timestamp: Number(newest.timestamp),
              slot: newest.slot?.toString() ?? null,
              finalized: newest.finalized,
            }
          : null,
        /** Host clock minus verified block time (seconds): how far behind the view is, as far as the host clock tells. */
        lagSeconds: newest ? hostNow() - Number(newest.timestamp) : null,
        lastError: lastError ?? null,
        ...(options.headerStatus ? { lightClient: options.headerStatus() } : {}),
      }
    },
  }
}
