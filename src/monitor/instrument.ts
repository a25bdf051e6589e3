// Where metric events happen, without the flows knowing about metrics: each function wraps one dependency the node
// is given (request store, quote verifier, outbox, blob archive) or one listener (pod requests), and counts what
// passes through. The wrapped object behaves exactly as the original.
import { Hono, type MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import type { Logger } from 'pino'
import { decodeFunctionData, type Hex, type PublicClient } from 'viem'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import type { Outbox } from '../chain/outbox.ts'
import type { BlobArchive } from '../store/blobArchive.ts'
import type { RequestStore } from '../store/requests.ts'
import { QuoteVerificationError, type QuoteVerifier } from '../tee/types.ts'
import type { Metrics } from './metrics.ts'

/** Counts every decision the node records (docs/protocol.md#help), by decision and refusal reason. */
export function instrumentRequestStore(store: RequestStore, metrics: Metrics): RequestStore {
  return {
    ...store,
    record(record) {
      store.record(record)
      metrics.decisions.inc({ decision: record.decision, reason: record.reason ?? 'none' })
    },
  }
}

/** Times every quote verification; the outcome label is `ok` or the verifier's rejection reason (a closed list). */
export function instrumentQuoteVerifier(verifier: QuoteVerifier, metrics: Metrics): QuoteVerifier {
  return {
    async verify(quote, options) {
      const end = metrics.quoteVerification.startTimer()
      try {
        const verified = await verifier.verify(quote, options)
        metrics.quoteVerifications.inc({ outcome: 'ok' })
        return verified
      } catch (error) {
        metrics.quoteVerifications.inc({ outcome: error instanceof QuoteVerificationError ? error.reason : 'error' })
        throw error
      } finally {
        end()
      }
    },
  }
}

type Spent = { gasUsed: bigint; blobGasUsed: bigint; feesWei: bigint }
type SpentJson = { gasUsed: string; blobGasUsed: string; feesWei: string }

/**
 * Gas the node's own mined transactions used since it started (docs/protocol.md#http-api `GET /status`), by
 * transaction label and per onboarding: as a newcomer, its `requestOnboard` and `confirmOnboard` per request it made;
 * as a helper, its `fulfillOnboard` transactions and the freshness marks (`markFresh`) its decisions waited for, divided
 * by the requests they answered (one answer and one mark may serve several). A rotation's marks carry the same label
 * and are counted there too: rotations are rare next to onboardings, and `byLabel` has the exact sums.
 * Decimal strings, in gas and wei; figures per onboarding are rounded down.
 */
export type GasSpent = {
  byLabel: Record<string, SpentJson & { txs: number }>
  perOnboarding: { asNewcomer: (SpentJson & { onboardings: number }) | null; asHelper: (SpentJson & { onboardings: number }) | null }
}

export type InstrumentedOutbox = Outbox & { gasSpent(): GasSpent }

/**
 * Adds the gas, blob gas and fees of each mined transaction the node waited for (every transaction it sends itself,
 * docs/protocol.md#node-state) to the counters and to `gasSpent()`. The receipt is read once more for its gas fields,
 * off the flow's path. The requests a `fulfillOnboard` answers are read from its own calldata, as signed.
 */
export function instrumentOutbox(outbox: Outbox, deps: { publicClient: PublicClient; metrics: Metrics; logger: Logger }): InstrumentedOutbox {
  const { publicClient, metrics, logger } = deps
  const byLabel = new Map<string, Spent & { txs: number }>()
  const onboardings = { newcomer: 0, helper: 0 }
  async function account(id: number, hash: `0x${string}`) {
    const entry = outbox.entries().find((e) => e.id === id)
    const label = entry?.label ?? 'unknown'
    const receipt = await publicClient.getTransactionReceipt({ hash })
    const blobGasUsed = receipt.blobGasUsed ?? 0n
    const spent = { gasUsed: receipt.gasUsed, blobGasUsed, feesWei: receipt.gasUsed * receipt.effectiveGasPrice + blobGasUsed * (receipt.blobGasPrice ?? 0n) }
    metrics.gasUsed.inc({ label }, Number(receipt.gasUsed))
    metrics.feesPaid.inc({ kind: 'execution' }, Number(receipt.gasUsed * receipt.effectiveGasPrice))
    if (receipt.blobGasUsed !== undefined) {
      metrics.blobGasUsed.inc({ label }, Number(receipt.blobGasUsed))
      metrics.feesPaid.inc({ kind: 'blob' }, Number(receipt.blobGasUsed * (receipt.blobGasPrice ?? 0n)))
    }
    const sum = byLabel.get(label) ?? { txs: 0, gasUsed: 0n, blobGasUsed: 0n, feesWei: 0n }
    byLabel.set(label, { txs: sum.txs + 1, gasUsed: sum.gasUsed + spent.gasUsed, blobGasUsed: sum.blobGasUsed + spent.blobGasUsed, feesWei: sum.feesWei + spent.feesWei })
    if (receipt.status !== 'success') return
    if (label === 'requestOnboard') {
      onboardings.newcomer++
      metrics.onboardingsPaid.inc({ role: 'newcomer' })
    }
    if (label === 'fulfillOnboard' && entry) {
      const answered = fulfilledCount(entry.params.data)
      onboardings.helper += answered
      metrics.onboardingsPaid.inc({ role: 'helper' }, answered)
    }
  }
  const json = (s: Spent): SpentJson => ({ gasUsed: s.gasUsed.toString(), blobGasUsed: s.blobGasUsed.toString(), feesWei: s.feesWei.toString() })
  const per = (labels: string[], count: number) => {
    if (count === 0) return null
    const total = labels.reduce<Spent>(
      (t, label) => {
        const s = byLabel.get(label)
        return s ? { gasUsed: t.gasUsed + s.gasUsed, blobGasUsed: t.blobGasUsed + s.blobGasUsed, feesWei: t.feesWei + s.feesWei } : t
      },
      { gasUsed: 0n, blobGasUsed: 0n, feesWei: 0n },
    )
    const n = BigInt(count)
    return { onboardings: count, ...json({ gasUsed: total.gasUsed / n, blobGasUsed: total.blobGasUsed / n, feesWei: total.feesWei / n }) }
  }
  return {
    ...outbox,
    async waitForReceipt(id, timeoutMs) {
      const receipt = await outbox.waitForReceipt(id, timeoutMs)
      account(id, receipt.hash).catch((error: Error) => logger.debug({ err: { message: error.message }, txHash: receipt.hash }, 'gas metrics: receipt not read'))
      return receipt
    },
    gasSpent: () => ({
      byLabel: Object.fromEntries([...byLabel].map(([label, s]) => [label, { txs: s.txs, ...json(s) }])),
      perOnboarding: { asNewcomer: per(['requestOnboard', 'confirmOnboard'], onboardings.newcomer), asHelper: per(['fulfillOnboard', 'markFresh'], onboardings.helper) },
    }),
  }
}

/** How many requests a `fulfillOnboard` call answers (its `requestIds`); 0 for calldata that is not one. */
function fulfilledCount(data: Hex): number {
  try {
    const call = decodeFunctionData({ abi: keyManagerAbi, data })
    return call.functionName === 'fulfillOnboard' ? (call.args[0] as readonly bigint[]).length : 0
  } catch {
    return 0
  }
}

/** Counts reads of the node's own blob archive, the first place the node looks for a blob (source `archive`). */
export function instrumentBlobArchive(archive: BlobArchive, metrics: Metrics): BlobArchive {
  return {
    ...archive,
    get(versionedHash) {
      const blob = archive.get(versionedHash)
      metrics.blobFetches.inc({ source: 'archive', result: blob ? 'ok' : 'miss' })
      return blob
    },
  }
}

/**
 * The observer of blob fetches from remote sources (src/chain/peerBlobs.ts `fetchVerifiedBlobsWithFallback`): source
 * `index` of `names` succeeded (no error) or failed with `error` (its class names the failure: not found, hash
 * mismatch, unreachable).
 */
export function blobFetchObserver(names: readonly string[], metrics: Metrics) {
  return function observeBlobFetch(index: number, error?: unknown) {
    const source = names[index] ?? 'unknown'
    metrics.blobFetches.inc({ source, result: error === undefined ? 'ok' : blobFailure(error) })
  }
}

function blobFailure(error: unknown): string {
  const name = (error as { name?: unknown })?.name
  switch (name) {
    case 'BlobNotFoundError':
      return 'not_found'
    case 'BlobHashMismatchError':
      return 'hash_mismatch'
    case 'BlobSourceError':
      return 'unreachable'
    default:
      return 'error'
  }
}

/**
 * Counts pod requests by route pattern (`/attest/:appdata`, never the raw path) and status. Unmatched paths count
 * as route `unmatched`, so a scanner cannot create series.
 */
export function podRequestMetrics(metrics: Metrics): MiddlewareHandler {
  return async function countPodRequest(c, next) {
    await next()
    const handler = matchedRoutes(c).findLast((route) => route.method !== 'ALL')
    metrics.podRequests.inc({ route: handler ? handler.path : 'unmatched', status: String(c.res.status) })
  }
}

/** A pod-facing app (the pod listener or a per-pod socket) behind the request counter. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any app's env: only its routes are mounted
export function withPodMetrics(app: Hono<any>, metrics: Metrics): Hono {
  const outer = new Hono()
  outer.use('*', podRequestMetrics(metrics))
  outer.route('/', app)
  // No route matched: the wrapped app answers, in its own error shape (JSON error, or dstack's for a socket).
  outer.notFound((c) => app.fetch(c.req.raw, c.env))
  return outer
}
