// Prometheus metrics of one sidecar (docs/protocol.md#http-api `GET /metrics`), with prom-client: every metric lives in
// this node's own Registry (not prom-client's global one: tests run several nodes in one process), and the exposition
// is prom-client's. Gauges whose value is read from state (outbox, cursor, archive, platform check) are filled by
// the monitor (monitor.ts) in their `collect()`, at scrape time; counters and the histogram are fed by the wrappers
// in instrument.ts where the events happen.
//
// Label values come from closed sets (decision reasons, route patterns, status codes, tx labels, blob sources), never
// from request input: a client cannot grow the number of series.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

export const METRIC_PREFIX = 'keymanager_'

/** Alert names (monitor/alerts.ts): each is a label value of `keymanager_alert_active`. */
export const ALERT_NAMES = ['collateral_expiring', 'tcb_evaluation_number_new', 'tcb_status_not_up_to_date', 'platform_check_failed', 'gas_balance_low'] as const
export type AlertName = (typeof ALERT_NAMES)[number]

export function createMetrics(options: { processMetrics?: boolean } = {}) {
  const registry = new Registry()
  // process_* and nodejs_* (CPU, memory, event-loop lag, handles): what every Node.js dashboard expects.
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry })
  const p = METRIC_PREFIX
  const registers = [registry]
  let beforeScrape: (() => Promise<void>) | undefined
  // A gauge read from state: prom-client collects every metric of a scrape concurrently, so each of them waits for the
  // same refresh (the monitor shares one snapshot between the calls of one scrape).
  function stateGauge<L extends string = string>(config: { name: string; help: string; labelNames?: readonly L[] }) {
    return new Gauge<L>({ ...config, registers, collect: () => beforeScrape?.() })
  }

  const metrics = {
    registry,
    /** Runs `fn` at each scrape before the exposition is written (the monitor sets the state gauges there). */
    onScrape(fn: () => Promise<void>) {
      beforeScrape = fn
    },
    ready: stateGauge({ name: `${p}ready`, help: '1 when the node holds the master secret' }),
    generation: stateGauge({ name: `${p}generation`, help: 'master secret generation held (0 before bootstrap)' }),
    state: stateGauge({ name: `${p}node_state`, help: '1 for the state the node is in', labelNames: ['state'] as const }),
    decisions: new Counter({
      name: `${p}onboarding_decisions_total`,
      help: 'onboarding requests judged as a helper, by decision and refusal reason ("none" when not refused)',
      labelNames: ['decision', 'reason'] as const,
      registers,
    }),
    // Durations in one unlabelled histogram, outcomes in a counter: a label per rejection reason would multiply the
    // 14 bucket series by every reason.
    quoteVerification: new Histogram({
      name: `${p}quote_verification_seconds`,
      help: 'DCAP verification of a quote (peers and the platform self-check), collateral fetch included',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    quoteVerifications: new Counter({
      name: `${p}quote_verifications_total`,
      help: 'quote verifications by outcome: "ok" or the rejection reason',
      labelNames: ['outcome'] as const,
      registers,
    }),
    outboxDepth: stateGauge({ name: `${p}outbox_depth`, help: 'transactions signed or sent and not yet mined' }),
    outboxOldestAge: stateGauge({
      name: `${p}outbox_oldest_age_seconds`,
      help: 'age of the oldest transaction in the outbox not yet mined (0 when empty)',
    }),
    outboxStuck: stateGauge({
      name: `${p}outbox_stuck_txs`,
      help: 'outbox transactions broadcast more than bumpAfterBlocks blocks ago and still not mined',
    }),
    chainHead: stateGauge({ name: `${p}chain_head_block`, help: 'latest block number the RPC reported to the watcher (unverified)' }),
    watcherCursor: stateGauge({ name: `${p}watcher_cursor_block`, help: 'last block whose registry events the watcher processed' }),
    watcherLag: stateGauge({ name: `${p}watcher_lag_blocks`, help: 'chain head minus watcher cursor' }),
    verifiedHead: stateGauge({
      name: `${p}verified_head_block`,
      help: 'newest block the verified chain view vouches for (light-client mode: finalized, hash-checked)',
    }),
    finalityLag: stateGauge({ name: `${p}finality_lag_blocks`, help: 'chain head (RPC) minus the verified head block (0 when the view is ahead of the last head seen)' }),
    finalityLagSeconds: stateGauge({
      name: `${p}finality_lag_seconds`,
      help: "host clock minus the verified head's block timestamp: how old the newest verified block is",
    }),
    pendingRequests: stateGauge({ name: `${p}pending_requests`, help: 'onboarding requests seen on chain and not yet onboarded' }),
    blobFetches: new Counter({
      name: `${p}blob_fetches_total`,
      help: 'blob fetches by source (archive, anvil, beacon, peer) and result (ok, or the failure)',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    blobArchiveBytes: stateGauge({ name: `${p}blob_archive_bytes`, help: 'bytes of blobs kept in the node archive' }),
    blobArchiveBlobs: stateGauge({ name: `${p}blob_archive_blobs`, help: 'blobs kept in the node archive' }),
    gasUsed: new Counter({
      name: `${p}gas_used_total`,
      help: 'execution gas used by mined transactions this node sent, by transaction label',
      labelNames: ['label'] as const,
      registers,
    }),
    blobGasUsed: new Counter({
      name: `${p}blob_gas_used_total`,
      help: 'blob gas used by mined transactions this node sent, by transaction label',
      labelNames: ['label'] as const,
      registers,
    }),
    onboardingsPaid: new Counter({
      name: `${p}onboardings_paid_total`,
      help: 'onboardings this node paid for in mined transactions, by role: newcomer (its requestOnboard), helper (requests its fulfillOnboard answered); gas per onboarding = gas_used_total of requestOnboard + confirmOnboard, or fulfillOnboard + markFresh, / this',
      labelNames: ['role'] as const,
      registers,
    }),
    feesPaid: new Counter({
      name: `${p}fees_paid_wei_total`,
      help: 'fees paid by mined transactions this node sent, in wei, by kind (execution, blob)',
      labelNames: ['kind'] as const,
      registers,
    }),
    gasBalance: stateGauge({ name: `${p}gas_balance_wei`, help: 'balance of the gas key, in wei (RPC reading)' }),
    collateralExpiry: stateGauge({
      name: `${p}collateral_expiry_seconds`,
      help: "seconds until this platform's DCAP collateral expires (earliest nextUpdate); negative once expired",
    }),
    tcbStatus: stateGauge({ name: `${p}tcb_status`, help: "1 for this platform's TCB status", labelNames: ['status'] as const }),
    tcbEvaluationNumber: stateGauge({
      name: `${p}tcb_evaluation_data_number`,
      help: "tcbEvaluationDataNumber of this platform's TCB info",
    }),
    platformCheckTime: stateGauge({
      name: `${p}platform_check_timestamp_seconds`,
      help: 'unix time of the last successful platform check (own quote verified)',
    }),
    podRequests: new Counter({
      name: `${p}pod_requests_total`,
      help: 'pod API requests by route pattern and HTTP status',
      labelNames: ['route', 'status'] as const,
      registers,
    }),
    alertActive: new Gauge({ name: `${p}alert_active`, help: '1 while the alert is active', labelNames: ['alert'] as const, registers }),
  }
  for (const alert of ALERT_NAMES) metrics.alertActive.set({ alert }, 0)
  return metrics
}
export type Metrics = ReturnType<typeof createMetrics>
