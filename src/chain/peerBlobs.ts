// Blob fallback (docs/protocol.md#limits, issue: beacon nodes prune blobs after ~18 days). A node fetches a blob from its
// beacon node (or anvil), then from peers' archives (`GET /blobs/:versionedHash` on their host listener). Every
// source only transports: `fetchVerifiedBlobs` checks each blob against its on-chain versioned hash, so a peer can
// withhold a blob but never substitute one. The node's own archive is consulted before any of these (src/node).
import type { Hex } from 'viem'
import { fetchVerifiedBlobs, type BlobSource, type FetchBlobsParameters } from './beacon.ts'
import { BeaconNotSupernodeError, BlobHashMismatchError, BlobsPrunedError, BlobSourceError } from './errors.ts'
import { readBoundedBody } from '../net/boundedBody.ts'

const BLOB_BYTES = 131072

/** A peer's blob archive: the public `GET /blobs/:versionedHash` of its host listener (no token: blobs are public). */
export function peerArchiveBlobSource(hostUrl: string, options: { timeoutMs?: number } = {}): BlobSource {
  const base = hostUrl.replace(/\/$/, '')
  return {
    async fetchBlobs({ versionedHashes }: FetchBlobsParameters): Promise<Uint8Array[]> {
      const blobs: Uint8Array[] = []
      for (const hash of versionedHashes as Hex[]) {
        let res: Response
        try {
          res = await fetch(`${base}/blobs/${hash}`, {
            signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
            redirect: 'error',
          })
        } catch {
          throw new BlobSourceError('/blobs', 'Peer archive unreachable.')
        }
        if (res.status === 404) continue
        if (!res.ok) throw new BlobSourceError('/blobs', 'Peer archive refused the request.', res.status)
        blobs.push(await readBlobBody(res))
      }
      return blobs
    },
  }
}

/**
 * Reads exactly one blob's bytes: a declared Content-Length other than 131072 is refused before reading, and a body
 * without one (chunked) is read only up to one byte past a blob, so a peer cannot make this node buffer more.
 */
async function readBlobBody(res: Response): Promise<Uint8Array> {
  const notABlob = () => new BlobSourceError('/blobs', 'Peer archive answered with something that is not a blob.', res.status)
  const declared = res.headers.get('content-length')
  if (declared !== null && Number(declared) !== BLOB_BYTES) {
    await res.body?.cancel().catch(() => undefined)
    throw notABlob()
  }
  const body = await readBoundedBody(res, BLOB_BYTES, { tooLarge: notABlob, broken: () => new BlobSourceError('/blobs', 'Peer archive unreachable.') })
  if (body.length !== BLOB_BYTES) throw notABlob()
  return body
}

/**
 * Fetches and verifies blobs from each source in turn until one serves them all correctly, so a beacon node that
 * pruned or altered a blob does not stop a node when a peer still has it. When every source fails, a hash mismatch
 * is reported first (it names a lying source), then a beacon node's own diagnosis (pruned, not a supernode: it says
 * what to do), then the last error.
 */
export async function fetchVerifiedBlobsWithFallback(
  sources: readonly BlobSource[],
  parameters: FetchBlobsParameters,
  /** Told the outcome of each source tried, by its index in `sources` (metrics). */
  observe?: (index: number, error?: unknown) => void,
): Promise<Uint8Array[]> {
  if (sources.length === 0) throw new RangeError('fetchVerifiedBlobsWithFallback: at least one source')
  const errors: unknown[] = []
  for (const [index, source] of sources.entries()) {
    try {
      const blobs = await fetchVerifiedBlobs(source, parameters)
      observe?.(index)
      return blobs
    } catch (error) {
      observe?.(index, error)
      errors.push(error)
    }
  }
  throw (
    errors.find((e) => e instanceof BlobHashMismatchError) ??
    errors.find((e) => e instanceof BlobsPrunedError || e instanceof BeaconNotSupernodeError) ??
    errors.at(-1)
  )
}
