// The consensus half of the verified chain view (docs/protocol.md#verified-chain-view): a sync-committee light client on
// lodestar's spec-level `LightclientSpec`, with forced updates off and our own clock. We do not use the `Lightclient`
// class: it hard-codes `ALLOW_FORCED_UPDATES = true` (a valid update with a single signer may then install the next
// sync committee once UPDATE_TIMEOUT passes, so one colluding member plus the host could replace the committee) and
// reads `Date.now()`, which the host sets.
//
// What a `VerifiedHeader` from here rests on: the measured checkpoint root and chain config, and 2/3 of the sync
// committee. Every committee after the checkpoint's is adopted only from an update that ≥ 2/3 of the previous committee
// signed, whose branch proves it in the attested state, and that carries a finality proof. The finalized header moves
// only with ≥ 2/3 of 512 signers. The execution payload header (block hash, state root, number, timestamp) is proven
// against the beacon body root by the library's `isValidLightClientHeader`, for the bootstrap header and for every
// attested and finalized header of every update. Freshness is not guaranteed here: a beacon node can withhold updates
// and keep us on an old header; the chain view's freshness rule turns that into a refusal, never into acting on it.
import type { PublicKey } from '@chainsafe/bls/types'
import type { BeaconConfig } from '@lodestar/config'
import { LightclientSpec } from '@lodestar/light-client/spec'
import { computeSyncPeriodAtSlot, deserializeSyncCommittee } from '@lodestar/light-client/utils'
import { ForkName, isForkPostElectra, NEXT_SYNC_COMMITTEE_DEPTH, NEXT_SYNC_COMMITTEE_DEPTH_ELECTRA } from '@lodestar/params'
import { ssz, type LightClientBootstrap, type LightClientHeader, type LightClientUpdate } from '@lodestar/types'
import { bytesToHex, hexToBytes, isHex, type Hex } from 'viem'
import type { SealProvider } from '../../secret/seal.ts'
import type { LightClientStoreTable } from '../../store/lightClientStore.ts'
import { beaconConfigOf, epochAtSlot, type LightClientChain } from './chains.ts'
import { LightClientError, type LightClientErrorReason } from './errors.ts'
import { decodeSealedStore, encodeSealedStore, LIGHT_CLIENT_STORE_SEAL_LABEL } from './sealedStore.ts'
import { createLightClientTransport, MAX_PERIODS_PER_REQUEST, type LightClientFork, type Versioned } from './transport.ts'
import type { HeaderSource, VerifiedHeader } from './types.ts'

import { validateLightClientBootstrap } from './lodestarBootstrap.ts'

/** Tolerance of the wall clock, as lodestar's `MAX_CLOCK_DISPARITY_SEC`: a beacon node a few seconds ahead still syncs. */
const MAX_CLOCK_DISPARITY_SECONDS = 10
/** Optimistic headers remembered for the devnet confirmations option. */
const OPTIMISTIC_HISTORY = 64

export type LightClientLogger = {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

export type LightClientOptions = {
  /** Measured: fork schedule, versions, genesis validators root. */
  chain: LightClientChain
  /** Measured: beacon block root the client bootstraps from. */
  checkpointRoot: Hex
  /** Host setting, untrusted: where light-client data comes from. */
  beaconUrl: string
  /**
   * Devnet only, off by default. When set to N, `latest()` may return a header that is not finalized: the newest
   * optimistic header (signed by more than half of the best participation seen, per the spec's optimistic rule) that
   * has at least N newer optimistic slots above it. Refused on any chain that is not a devnet, and logged at start.
   */
  optimisticConfirmations?: number
  /** Where the store is kept between restarts: the node's SQLite table, sealed by its seal provider. */
  persistence?: { table: LightClientStoreTable; seal: SealProvider }
  /** A pino logger fits; every call is `(fields, message)`. */
  logger?: LightClientLogger
  fetch?: typeof fetch
  timeoutMs?: number
  /** Host clock, milliseconds (default `Date.now`): liveness only, see `currentSlot`. */
  now?: () => number
}

export type HeaderSummary = { slot: number; beaconRoot: Hex; blockNumber: string; blockHash: Hex; timestamp: number }

export type LightClientStatus = {
  network: string
  devnet: boolean
  checkpointRoot: Hex
  beaconUrl: string
  /** Where the verified state came from at start: a bootstrap, or the sealed store. */
  source: 'bootstrap' | 'sealed-store' | null
  finalized: HeaderSummary | null
  /** The newest optimistic header (informational; used for decisions only with `optimisticConfirmations`). */
  optimistic: HeaderSummary | null
  optimisticConfirmations: number | null
  /** Sync committee period of the finalized header, and the periods whose committees are known. */
  committeePeriod: number | null
  knownCommitteePeriods: number[]
  /** Host clock (ms) when the finalized header last moved; when the last sync attempt ended. */
  lastUpdateAt: number | null
  lastSyncAt: number | null
  /** Host clock minus the finalized execution timestamp, seconds (informational: the host sets the clock). */
  lagSeconds: number | null
  /** Wall-clock slot minus the finalized slot; null on chains without a wall clock (devnets). */
  lagSlots: number | null
  lastError: { reason: LightClientErrorReason | 'internal'; message: string; at: number } | null
  /** Why a sealed store found at start was not used, if one was refused. */
  refusedStore: string | null
}

export type LightClientHeaderSource = HeaderSource & {
  /** Fetches and verifies updates; throws a `LightClientError` on any failure (`latest()` then serves the last verified header). */
  sync(): Promise<VerifiedHeader>
  status(): LightClientStatus
  /** The chain this client follows (a measured setting). */
  readonly chain: LightClientChain
}

export function createLightClientHeaderSource(options: LightClientOptions): LightClientHeaderSource {
  const { chain, logger } = options
  if (!isHex(options.checkpointRoot) || hexToBytes(options.checkpointRoot).length !== 32) throw new TypeError('checkpointRoot must be 32 bytes of 0x-hex')
  const checkpointRoot = options.checkpointRoot.toLowerCase() as Hex
  const confirmations = options.optimisticConfirmations
  if (confirmations !== undefined) {
    if (!chain.devnet) throw new TypeError(`optimisticConfirmations is a devnet-only option; the ${chain.network} light client acts on finalized headers only`)
    if (!Number.isSafeInteger(confirmations) || confirmations < 0) throw new TypeError('optimisticConfirmations must be an integer ≥ 0')
  }
  const config = beaconConfigOf(chain)
  const transport = createLightClientTransport({ url: options.beaconUrl, ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) })
  const now = options.now ?? Date.now
  const persistence = options.persistence && options.persistence.seal.persistent ? options.persistence : undefined

  if (chain.devnet) {
    logger?.warn(
      { checkpointRoot, genesisValidatorsRoot: chain.genesisValidatorsRoot },
      `TRUSTING A DEVNET SYNC COMMITTEE: the light client follows a devnet beacon chain from checkpoint ${checkpointRoot.slice(0, 18)}…; its committee is a simulator's keys, not Ethereum's validators (devnets only)`,
    )
  }
  if (confirmations !== undefined) {
    logger?.warn({ optimisticConfirmations: confirmations }, `OPTIMISTIC HEADERS (devnet only): decisions may use headers ${confirmations} slots deep that are NOT finalized`)
  }

  let spec: LightclientSpec | undefined
  let source: LightClientStatus['source'] = null
  let refusedStore: string | null = null
  let lastUpdateAt: number | null = null
  let lastSyncAt: number | null = null
  let lastError: LightClientStatus['lastError'] = null
  let lastWarned: string | undefined
  let dirty = false
  const optimisticHistory: LightClientHeader[] = []
  let running: Promise<VerifiedHeader> | undefined

  const events = {
    allowForcedUpdates: false,
    onSetFinalizedHeader: () => {
      dirty = true
      lastUpdateAt = now()
    },
    onSetOptimisticHeader: (header: LightClientHeader) => {
      optimisticHistory.push(header)
      if (optimisticHistory.length > OPTIMISTIC_HISTORY) optimisticHistory.shift()
    },
  }

  /**
   * The spec's `current_slot`. lodestar's processLightClientUpdate reads it once: an update whose signature slot is
   * after it is refused (forced updates, its only other use, are off). So the clock decides liveness, never safety:
   * a host clock set in the future lets through updates "from the future", and those still need the signatures of a
   * committee we adopted through ≥ 2/3-signed handoffs (a period we hold no committee for is refused outright); a
   * clock set in the past makes us refuse current updates, which is withholding, caught by the freshness rule.
   * Devnet slots count anvil blocks, not seconds, so a devnet has no wall clock to compare with (`slotClock: 'none'`).
   */
  function currentSlot(): number {
    if (chain.slotClock === 'none') return Number.MAX_SAFE_INTEGER
    return Math.floor((now() / 1000 + MAX_CLOCK_DISPARITY_SECONDS - chain.genesisTime) / (config.SECONDS_PER_SLOT ?? 12))
  }

  /** A slot in a fork scheduled after what this build verifies is refused by name. */
  function checkSupported(slot: number, what: string): void {
    if (epochAtSlot(slot) >= chain.unsupportedFromEpoch) {
      throw new LightClientError('unknown_fork', `${what} at slot ${slot} is in fork ${chain.unsupportedForkName}, which this client cannot verify`, {
        metaMessages: [`${chain.unsupportedForkName} starts at epoch ${chain.unsupportedFromEpoch} on ${chain.network}`],
      })
    }
  }

  /** The fork an answer names must be the one our config has at the slot its type is chosen by. */
  function checkFork(fork: ForkName, slot: number, what: string): void {
    checkSupported(slot, what)
    const expected = config.getForkName(slot)
    if (fork !== expected) {
      throw new LightClientError('fork_mismatch', `${what} is labelled ${fork}, but slot ${slot} is in ${expected} on ${chain.network}`)
    }
  }

  function invalid(what: string, error: unknown): LightClientError {
    if (error instanceof LightClientError) return error
    const message = error instanceof Error ? error.message : String(error)
    return new LightClientError('invalid_update', `${what} refused: ${message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)}`, { cause: error })
  }

  function restore(): LightclientSpec | undefined {
    if (!persistence) return undefined
    const row = persistence.table.get()
    if (!row) return undefined
    try {
      let plaintext: Uint8Array
      try {
        plaintext = persistence.seal.unseal(row.sealed, LIGHT_CLIENT_STORE_SEAL_LABEL)
      } catch (error) {
        throw new LightClientError('sealed_store', `sealed light-client store does not unseal: ${error instanceof Error ? error.message : String(error)}`)
      }
      const saved = decodeSealedStore(plaintext)
      if (saved.genesisValidatorsRoot !== chain.genesisValidatorsRoot.toLowerCase() || saved.network !== chain.network) {
        throw new LightClientError('sealed_store', `sealed light-client store is for another chain (${saved.network} ${saved.genesisValidatorsRoot.slice(0, 10)}…)`)
      }
      if (saved.checkpointRoot !== checkpointRoot) {
        // A new image with a newer checkpoint: start again from it, as a fresh node would.
        logger?.info({ stored: saved.checkpointRoot, measured: checkpointRoot }, 'light client: measured checkpoint changed; bootstrapping from it instead of the sealed store')
        return undefined
      }
      checkFork(saved.finalized.fork, saved.finalized.header.beacon.slot, 'sealed finalized header')
      const committees = saved.committees.map(({ period, committee }) => ({ period, fast: deserializeSyncCommittee(committee) }))
      const first = saved.committees[0]!
      const restored = new LightclientSpec(
        config,
        events,
        // The constructor reads only the header and the committee (it verifies nothing: this is our own sealed state).
        { header: saved.finalized.header, currentSyncCommittee: first.committee, currentSyncCommitteeBranch: [] } as unknown as LightClientBootstrap,
      )
      restored.store.syncCommittees.clear()
      for (const { period, fast } of committees) restored.store.syncCommittees.set(period, fast)
      // A host that rolls the database back to an older sealed store (it holds the sealing key's output, not the key)
      // only makes this view older: every header after it still needs 2/3 of a committee we adopted through signed
      // handoffs from the measured checkpoint, and the chain view's freshness rule refuses to act on an old view.
      source = 'sealed-store'
      logger?.info({ finalizedSlot: saved.finalized.header.beacon.slot, periods: saved.committees.map((c) => c.period) }, 'light client resumed from its sealed store')
      return restored
    } catch (error) {
      const reason = error instanceof LightClientError ? error.shortMessage : `sealed light-client store does not decode: ${error instanceof Error ? error.message : String(error)}`
      refusedStore = reason
      logger?.error({ reason }, 'light client: sealed store REFUSED; bootstrapping again from the measured checkpoint')
      return undefined
    }
  }

  async function bootstrap(): Promise<LightclientSpec> {
    const { fork, data } = await transport.bootstrap(checkpointRoot)
    const root = bytesToHex(ssz.phase0.BeaconBlockHeader.hashTreeRoot(data.header.beacon))
    if (root !== checkpointRoot) {
      throw new LightClientError('bootstrap_root_mismatch', `bootstrap is for block ${root}, not the measured checkpoint ${checkpointRoot}`, {
        metaMessages: [`beacon node: ${transport.url}`, `bootstrap slot: ${data.header.beacon.slot}`],
      })
    }
    checkFork(fork, data.header.beacon.slot, 'bootstrap')
    try {
      validateLightClientBootstrap(config, hexToBytes(checkpointRoot), data)
    } catch (error) {
      throw new LightClientError('invalid_bootstrap', `bootstrap refused: ${error instanceof Error ? error.message : String(error)}`, { metaMessages: [`beacon node: ${transport.url}`] })
    }
    const created = new LightclientSpec(config, events, data)
    source = 'bootstrap'
    dirty = true
    lastUpdateAt = now()
    logger?.info({ slot: data.header.beacon.slot, checkpointRoot }, 'light client bootstrapped from the measured checkpoint')
    return created
  }

  async function initialized(): Promise<LightclientSpec> {
    if (spec) return spec
    spec = restore() ?? (await bootstrap())
    persist()
    return spec
  }

  /** Learns the committees up to `period` from the beacon node's period updates (each signed by the one before). */
  async function catchUp(s: LightclientSpec, period: number): Promise<void> {
    if (s.store.syncCommittees.has(period)) return
    const known = [...s.store.syncCommittees.keys()].filter((p) => p < period)
    if (known.length === 0) throw new LightClientError('invalid_update', `no known sync committee before period ${period}`)
    let from = Math.max(...known)
    while (from < period) {
      const count = Math.min(MAX_PERIODS_PER_REQUEST, period - from)
      const updates = await transport.updates(from, count)
      if (updates.length === 0) throw new LightClientError('invalid_update', `beacon node has no update for sync committee period ${from}`)
      for (const update of updates) processUpdate(s, update)
      from += count
    }
  }

  function processUpdate(s: LightclientSpec, { fork, data }: Versioned<LightClientUpdate>): void {
    checkFork(fork, data.attestedHeader.beacon.slot, 'period update')
    checkSupported(data.signatureSlot, 'period update signature')
    // lodestar keys a next committee by the update's signature period and adopts it for the period after. The spec
    // reads it as the attested state's next committee, for the attested period + 1. They differ when the attested
    // header is in the period before the signature (a boundary update): lodestar would install the current committee
    // as the next one and stall. Such an update keeps its finality and loses its committee.
    const update =
      computeSyncPeriodAtSlot(data.attestedHeader.beacon.slot) === computeSyncPeriodAtSlot(data.signatureSlot)
        ? data
        : {
            ...data,
            nextSyncCommittee: ssz.altair.SyncCommittee.defaultValue(),
            nextSyncCommitteeBranch: Array.from({ length: isForkPostElectra(fork) ? NEXT_SYNC_COMMITTEE_DEPTH_ELECTRA : NEXT_SYNC_COMMITTEE_DEPTH }, () => new Uint8Array(32)),
          }
    try {
      s.onUpdate(currentSlot(), update)
    } catch (error) {
      throw invalid(`period update (signature slot ${data.signatureSlot})`, error)
    }
  }

  async function syncNow(): Promise<VerifiedHeader> {
    const s = await initialized()
    try {
      return await advance(s)
    } finally {
      // What verified before a failure (a period update, say) is kept across a restart too.
      try {
        persist()
      } catch (error) {
        logger?.error({ error: error instanceof Error ? error.message : String(error) }, 'light client: could not write its sealed store')
      }
    }
  }

  async function advance(s: LightclientSpec): Promise<VerifiedHeader> {
    const { fork, data } = await transport.finalityUpdate()
    checkFork(fork, data.attestedHeader.beacon.slot, 'finality update')
    checkSupported(data.signatureSlot, 'finality update signature')
    if (data.finalizedHeader.beacon.slot > s.store.finalizedHeader.beacon.slot || confirmations !== undefined) {
      // Refused here already (the spec would refuse it too) so that a future signature slot sends us after no updates.
      if (data.signatureSlot > currentSlot()) throw invalid('finality update', new Error(`update slot ${data.signatureSlot} must not be in the future`))
      await catchUp(s, computeSyncPeriodAtSlot(data.signatureSlot))
      try {
        s.onFinalityUpdate(currentSlot(), data)
      } catch (error) {
        throw invalid(`finality update (signature slot ${data.signatureSlot})`, error)
      }
    }
    if (confirmations !== undefined) {
      const optimistic = await transport.optimisticUpdate()
      checkFork(optimistic.fork, optimistic.data.attestedHeader.beacon.slot, 'optimistic update')
      checkSupported(optimistic.data.signatureSlot, 'optimistic update signature')
      if (optimistic.data.attestedHeader.beacon.slot > s.store.optimisticHeader.beacon.slot) {
        await catchUp(s, computeSyncPeriodAtSlot(optimistic.data.signatureSlot))
        try {
          s.onOptimisticUpdate(currentSlot(), optimistic.data)
        } catch (error) {
          throw invalid(`optimistic update (signature slot ${optimistic.data.signatureSlot})`, error)
        }
      }
    }
    return current(s)
  }

  function current(s: LightclientSpec): VerifiedHeader {
    const finalized = s.store.finalizedHeader
    if (confirmations !== undefined) {
      const head = s.store.optimisticHeader.beacon.slot
      const deep = optimisticHistory.filter((h) => h.beacon.slot <= head - confirmations && h.beacon.slot > finalized.beacon.slot).at(-1)
      if (deep) return toVerified(deep, false)
    }
    return toVerified(finalized, true)
  }

  function persist(): void {
    if (!persistence || !spec || !dirty) return
    const header = spec.store.finalizedHeader
    const plaintext = encodeSealedStore({
      network: chain.network,
      genesisValidatorsRoot: chain.genesisValidatorsRoot.toLowerCase() as Hex,
      checkpointRoot,
      finalized: { fork: config.getForkName(header.beacon.slot) as LightClientFork, header },
      committees: [...spec.store.syncCommittees.entries()].sort(([a], [b]) => a - b).map(([period, fast]) => ({ period, committee: serializeCommittee(fast) })),
    })
    persistence.table.put({ sealed: persistence.seal.seal(plaintext, LIGHT_CLIENT_STORE_SEAL_LABEL), finalizedSlot: header.beacon.slot, updatedAt: now() })
    dirty = false
  }

  async function sync(): Promise<VerifiedHeader> {
    // One sync at a time: concurrent callers share it.
    running ??= syncNow().finally(() => {
      running = undefined
      lastSyncAt = now()
    })
    try {
      const header = await running
      lastError = null
      lastWarned = undefined
      return header
    } catch (error) {
      lastError = {
        reason: error instanceof LightClientError ? error.reason : 'internal',
        message: error instanceof LightClientError ? error.shortMessage : error instanceof Error ? error.message : String(error),
        at: now(),
      }
      throw error
    }
  }

  return Object.freeze({
    chain,
    sync,
    /**
     * The latest verified header after trying to fetch updates. When the beacon node fails or lies, the last verified
     * header is served (it is still verified; how old it may be is the freshness rule's call) and the failure is in
     * `status().lastError`. Before anything is verified, it throws.
     */
    async latest(): Promise<VerifiedHeader> {
      try {
        return await sync()
      } catch (error) {
        if (!spec) throw error
        // Once per distinct failure, not once per poll.
        if (lastError && lastError.message !== lastWarned) {
          lastWarned = lastError.message
          logger?.warn({ reason: lastError.reason, error: lastError.message }, 'light client: update refused or unavailable; serving the last verified header')
        }
        return current(spec)
      }
    },
    status(): LightClientStatus {
      const finalized = spec?.store.finalizedHeader
      const optimistic = spec?.store.optimisticHeader
      const wallSlot = chain.slotClock === 'wall' ? Math.floor((now() / 1000 - chain.genesisTime) / (config.SECONDS_PER_SLOT ?? 12)) : null
      return {
        network: chain.network,
        devnet: chain.devnet,
        checkpointRoot,
        beaconUrl: transport.url,
        source,
        finalized: finalized ? summary(finalized) : null,
        optimistic: optimistic ? summary(optimistic) : null,
        optimisticConfirmations: confirmations ?? null,
        committeePeriod: finalized ? computeSyncPeriodAtSlot(finalized.beacon.slot) : null,
        knownCommitteePeriods: spec ? [...spec.store.syncCommittees.keys()].sort((a, b) => a - b) : [],
        lastUpdateAt,
        lastSyncAt,
        lagSeconds: finalized ? Math.round(now() / 1000) - executionOf(finalized).timestamp : null,
        lagSlots: finalized && wallSlot !== null ? wallSlot - finalized.beacon.slot : null,
        lastError,
        refusedStore,
      }
    },
  })
}

function executionOf(header: LightClientHeader): { blockNumber: number; blockHash: Uint8Array; stateRoot: Uint8Array; timestamp: number } {
  const execution = (header as { execution?: { blockNumber: number; blockHash: Uint8Array; stateRoot: Uint8Array; timestamp: number } }).execution
  if (!execution) throw new LightClientError('unknown_fork', `header at slot ${header.beacon.slot} carries no execution payload header`)
  return execution
}

function toVerified(header: LightClientHeader, finalized: boolean): VerifiedHeader {
  const execution = executionOf(header)
  return {
    slot: BigInt(header.beacon.slot),
    beaconRoot: bytesToHex(ssz.phase0.BeaconBlockHeader.hashTreeRoot(header.beacon)),
    blockNumber: BigInt(execution.blockNumber),
    blockHash: bytesToHex(execution.blockHash),
    stateRoot: bytesToHex(execution.stateRoot),
    timestamp: BigInt(execution.timestamp),
    finalized,
  }
}

function summary(header: LightClientHeader): HeaderSummary {
  const v = toVerified(header, true)
  return { slot: header.beacon.slot, beaconRoot: v.beaconRoot, blockNumber: v.blockNumber.toString(), blockHash: v.blockHash, timestamp: Number(v.timestamp) }
}

function serializeCommittee(fast: { pubkeys: PublicKey[]; aggregatePubkey: PublicKey }) {
  return { pubkeys: fast.pubkeys.map((p) => p.toBytes()), aggregatePubkey: fast.aggregatePubkey.toBytes() }
}
