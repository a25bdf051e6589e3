// Where metric events happen, without the flows knowing about metrics: each function wraps one dependency the node
// is given (request store, quote verifier, outbox, blob archive) or one listener (pod requests), and counts what
// passes through. The wrapped object behaves exactly as the original.
import { Hono, type MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import type { Logger } from 'pino'
import type { PublicClient } from 'viem'
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

/**
 * Adds the gas, blob gas and fees of each mined transaction the node waited for (every transaction it sends itself,
 * docs/protocol.md#node-state) to the counters. The receipt is read once more for its gas fields, off the flow's path.
 */
export function instrumentOutbox(outbox: Outbox, deps: { publicClient: PublicClient; metrics: Metrics; logger: Logger }): Outbox {
  const { publicClient, metrics, logger } = deps
  async function account(id: number, hash: `0x${string}`) {
    const label = outbox.entries().find((entry) => entry.id === id)?.label ?? 'unknown'
    const receipt = await publicClient.getTransactionReceipt({ hash })
    metrics.gasUsed.inc({ label }, Number(receipt.gasUsed))
    metrics.feesPaid.inc({ kind: 'execution' }, Number(receipt.gasUsed * receipt.effectiveGasPrice))
    if (receipt.blobGasUsed !== undefined) {
      metrics.blobGasUsed.inc({ label }, Number(receipt.blobGasUsed))
      metrics.feesPaid.inc({ kind: 'blob' }, Number(receipt.blobGasUsed * (receipt.blobGasPrice ?? 0n)))
    }
  }
  return {
    ...outbox,
    async waitForReceipt(id, timeoutMs) {
      const receipt = await outbox.waitForReceipt(id, timeoutMs)
      account(id, receipt.hash).catch((error: Error) => logger.debug({ err: { message: error.message }, txHash: receipt.hash }, 'gas metrics: receipt not read'))
      return receipt
    },
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
