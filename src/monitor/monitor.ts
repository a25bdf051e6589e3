// The operator's view of one node: what the status page shows and what the state gauges export, gathered in one
// place (`snapshot()`), plus the background refresh of what costs a call (gas balance, platform self-check) and the
// alerts derived from it.
//
// Everything here is information for the operator, read from the node's own state and from the RPC (the chain head
// and the gas balance are the RPC's word, labelled as such). No decision about the master secret reads any of it.
import type { Logger } from 'pino'
import type { Address, Hex } from 'viem'
import type { KeymanagerNode } from '../node/node.ts'
import type { BlobArchive } from '../store/blobArchive.ts'
import type { CursorStore } from '../store/cursor.ts'
import type { OutboxEntry, OutboxStore } from '../store/outbox.ts'
import { TCB_STATUS_BITS } from '../tee/types.ts'
import type { Alert, Alerts } from './alerts.ts'
import type { Metrics } from './metrics.ts'
import type { PlatformCheckResult } from './platform.ts'

/** Most pending requests listed on the page (all are counted). */
const MAX_PENDING_LISTED = 20

export type OutboxView = {
  account: Address
  entries: {
    id: number
    nonce: number
    label: string
    status: OutboxEntry['status']
    txHash: Hex | null
    maxFeePerGas: string
    maxPriorityFeePerGas: string
    maxFeePerBlobGas: string | null
    ageSeconds: number
    broadcastBlock: string | null
    stuck: boolean
  }[]
}

export type StatusSnapshot = {
  /** Unix seconds (host clock) the snapshot was taken. */
  takenAt: number
  /** The node's own `/status` (docs/protocol.md#http-api): state, xPub, generation, decisions, and whatever it grows. */
  node: Awaited<ReturnType<KeymanagerNode['status']>>
  chain: {
    /** Latest block the RPC reported (unverified). */
    head: string | null
    watcherCursor: string | null
    watcherLagBlocks: number | null
    /** Newest block the node's chain view vouches for (docs/protocol.md#verified-chain-view): finalized and verified in light-client mode. */
    verifiedHead: string | null
    /** Blocks between the RPC's head and the verified head (0 when the watcher's last head is older); null until both are known. */
    finalityLagBlocks: number | null
    /** Host clock minus the verified head's timestamp (seconds): how old the newest verified block is; null until there is one. */
    finalityLagSeconds: number | null
  }
  peers: { url: string }[]
  pending: { count: number; listed: { requestId: string; requester: Address; blockNumber: string }[] }
  outbox: OutboxView | null
  blobArchive: { blobs: number; bytes: number }
  platform: PlatformCheckResult | null
  gas: { account: Address; balanceWei: string | null } | null
  alerts: Alert[]
}

export type MonitorDeps = {
  metrics: Metrics
  node: Pick<KeymanagerNode, 'status' | 'state' | 'generation'>
  cursor: CursorStore
  blobs: BlobArchive
  /** The outbox table and the gas key's address; absent when the node has no gas key. */
  outbox?: { store: OutboxStore; account: Address; bumpAfterBlocks: number } | undefined
  getBalance?: ((address: Address) => Promise<bigint>) | undefined
  checkPlatform(): Promise<PlatformCheckResult>
  alerts: Alerts
  peers: { url: string }[]
  logger: Logger
  /** Unix seconds. */
  now(): number
  /** How often the gas balance is read and the platform checked. Defaults: 30 s and 10 min. */
  gasIntervalMs?: number
  platformIntervalMs?: number
}

export function createMonitor(deps: MonitorDeps) {
  const { metrics } = deps
  let head: bigint | null = null
  let platform: PlatformCheckResult | null = null
  let balance: bigint | undefined
  const timers: NodeJS.Timeout[] = []
  let stopped = false

  function outboxView(): OutboxView | null {
    if (!deps.outbox) return null
    const { store, account, bumpAfterBlocks } = deps.outbox
    const now = deps.now()
    const entries = store.open(account).map((entry) => ({
      id: entry.id,
      nonce: entry.nonce,
      label: entry.label,
      status: entry.status,
      txHash: entry.txHashes.at(-1) ?? null,
      maxFeePerGas: entry.params.maxFeePerGas,
      maxPriorityFeePerGas: entry.params.maxPriorityFeePerGas,
      maxFeePerBlobGas: entry.params.maxFeePerBlobGas ?? null,
      ageSeconds: Math.max(0, now - entry.createdAt),
      broadcastBlock: entry.broadcastBlock?.toString() ?? null,
      stuck: head !== null && entry.broadcastBlock !== null && head - entry.broadcastBlock >= BigInt(bumpAfterBlocks),
    }))
    return { account, entries }
  }

  /** Sets the state gauges from what the node and its stores hold now (run at every scrape). */
  function updateGauges(snapshot: StatusSnapshot) {
    const { node } = snapshot
    metrics.ready.set(node.state === 'ready' ? 1 : 0)
    metrics.generation.set(node.generation)
    for (const state of ['uninitialized', 'bootstrapping', 'registering', 'ready']) metrics.state.set({ state }, node.state === state ? 1 : 0)
    const entries = snapshot.outbox?.entries ?? []
    metrics.outboxDepth.set(entries.length)
    metrics.outboxOldestAge.set(entries.reduce((oldest, e) => Math.max(oldest, e.ageSeconds), 0))
    metrics.outboxStuck.set(entries.filter((e) => e.stuck).length)
    if (snapshot.chain.head !== null) metrics.chainHead.set(Number(snapshot.chain.head))
    if (snapshot.chain.watcherCursor !== null) metrics.watcherCursor.set(Number(snapshot.chain.watcherCursor))
    if (snapshot.chain.watcherLagBlocks !== null) metrics.watcherLag.set(snapshot.chain.watcherLagBlocks)
    if (snapshot.chain.verifiedHead !== null) metrics.verifiedHead.set(Number(snapshot.chain.verifiedHead))
    if (snapshot.chain.finalityLagBlocks !== null) metrics.finalityLag.set(snapshot.chain.finalityLagBlocks)
    if (snapshot.chain.finalityLagSeconds !== null) metrics.finalityLagSeconds.set(snapshot.chain.finalityLagSeconds)
    metrics.pendingRequests.set(snapshot.pending.count)
    metrics.blobArchiveBlobs.set(snapshot.blobArchive.blobs)
    metrics.blobArchiveBytes.set(snapshot.blobArchive.bytes)
    if (platform?.ok) {
      const { report } = platform
      if (report.collateralExpiresAt !== null) metrics.collateralExpiry.set(report.collateralExpiresAt - snapshot.takenAt)
      for (const status of [...Object.keys(TCB_STATUS_BITS), 'Revoked']) metrics.tcbStatus.set({ status }, report.status === status ? 1 : 0)
      if (report.tcbEvaluationDataNumber !== null) metrics.tcbEvaluationNumber.set(report.tcbEvaluationDataNumber)
      metrics.platformCheckTime.set(report.checkedAt)
    }
    if (balance !== undefined) metrics.gasBalance.set(Number(balance))
  }

  async function snapshot(): Promise<StatusSnapshot> {
    const node = await deps.node.status()
    const cursor = deps.cursor.cursor()?.number ?? null
    const pending = deps.cursor.pendingRequests()
    const takenAt = deps.now()
    // The chain view's status: null head until its first verified header (the serve loop refreshes it periodically).
    const verified = node.chainView.head
    const verifiedHead = verified ? BigInt(verified.blockNumber) : null
    return {
      takenAt,
      node,
      chain: {
        head: head?.toString() ?? null,
        watcherCursor: cursor?.toString() ?? null,
        watcherLagBlocks: head !== null && cursor !== null ? Math.max(0, Number(head - cursor)) : null,
        verifiedHead: verifiedHead?.toString() ?? null,
        // The watcher's head and the view's header are read at different moments: the view can be a block past the
        // last head the watcher saw, which is no lag at all.
        finalityLagBlocks: head !== null && verifiedHead !== null ? Math.max(0, Number(head - verifiedHead)) : null,
        finalityLagSeconds: verified ? Math.max(0, takenAt - verified.timestamp) : null,
      },
      peers: deps.peers,
      pending: {
        count: pending.length,
        listed: pending
          .slice(-MAX_PENDING_LISTED)
          .map((r) => ({ requestId: r.requestId.toString(), requester: r.requester, blockNumber: r.blockNumber.toString() })),
      },
      outbox: outboxView(),
      blobArchive: deps.blobs.stats(),
      platform,
      gas: deps.outbox ? { account: deps.outbox.account, balanceWei: balance?.toString() ?? null } : null,
      alerts: deps.alerts.list(),
    }
  }

  async function refreshGas() {
    if (!deps.outbox || !deps.getBalance) return deps.alerts.gas(undefined)
    try {
      balance = await deps.getBalance(deps.outbox.account)
      deps.alerts.gas(balance)
    } catch (error) {
      deps.logger.debug({ err: { message: (error as Error).message } }, 'gas balance not read')
    }
  }

  async function refreshPlatform() {
    platform = await deps.checkPlatform()
    deps.alerts.platform(platform)
  }

  function every(ms: number, task: () => Promise<void>) {
    const run = () => {
      if (stopped) return
      task()
        .catch((error: Error) => deps.logger.warn({ err: { message: error.message } }, 'monitor refresh failed'))
        .finally(() => {
          if (!stopped) timers.push(setTimeout(run, ms).unref())
        })
    }
    run()
  }

  // At each scrape the state gauges are set from one snapshot; concurrent scrapes share it.
  let collecting: Promise<void> | undefined
  metrics.onScrape(() => {
    collecting ??= snapshot()
      .then(updateGauges)
      .finally(() => {
        collecting = undefined
      })
    return collecting
  })

  return {
    /** The watcher's head (its `onHead` hook): for lag and stuck transactions. */
    onHead(block: bigint) {
      head = block
    },
    snapshot,
    refreshGas,
    refreshPlatform,
    /** Starts the periodic refreshes (the first of each runs now). */
    start() {
      every(deps.gasIntervalMs ?? 30_000, refreshGas)
      every(deps.platformIntervalMs ?? 600_000, refreshPlatform)
    },
    stop() {
      stopped = true
      for (const timer of timers) clearTimeout(timer)
    },
  }
}
export type Monitor = ReturnType<typeof createMonitor>
