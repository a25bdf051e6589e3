import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { test } from 'node:test'
import { hexToBytes, toBlobs, toHex } from 'viem'
import type { BlobSource } from './beacon.ts'
import { BlobHashMismatchError, BlobSourceError } from './errors.ts'
import { blobToCommitment, commitmentToVersionedHash } from './kzg.ts'
import { fetchVerifiedBlobsWithFallback, peerArchiveBlobSource } from './peerBlobs.ts'

const blob = hexToBytes(toBlobs({ data: toHex('keymanager peer archive test') })[0]!)
const versionedHash = toHex(commitmentToVersionedHash(blobToCommitment(blob)))
const at = { blockNumber: 1n, blockHash: `0x${'00'.repeat(32)}` as const, blockTimestamp: 0n, versionedHashes: [versionedHash] }

/** A peer's host listener serving one archive path; `serve` decides the answer. */
async function peer(serve: (path: string, auth: string | undefined) => { status: number; body?: Uint8Array }) {
  const server = createServer((req, res) => {
    const { status, body } = serve(req.url ?? '', req.headers.authorization)
    res.writeHead(status, { 'content-type': 'application/octet-stream' }).end(body ? Buffer.from(body) : undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() }
}

test('default: a blob missing at the beacon node comes from a peer archive, with the bearer token', async () => {
  const seen: (string | undefined)[] = []
  const p = await peer((path, auth) => {
    seen.push(auth)
    return path === `/blobs/${versionedHash}` ? { status: 200, body: blob } : { status: 404 }
  })
  const empty: BlobSource = { fetchBlobs: async () => [] }
  try {
    const [got] = await fetchVerifiedBlobsWithFallback([empty, peerArchiveBlobSource(p.url, 'peer-token')], at)
    assert.deepEqual(got, blob)
    assert.deepEqual(seen, ['Bearer peer-token'])
  } finally {
    p.close()
  }
})

test('security: a peer that serves another blob is caught by the versioned-hash check', async () => {
  const forged = Uint8Array.from(blob)
  forged[100] = 1
  const p = await peer(() => ({ status: 200, body: forged }))
  try {
    await assert.rejects(fetchVerifiedBlobsWithFallback([peerArchiveBlobSource(p.url, 't')], at), BlobHashMismatchError)
    // An honest source later in the list still wins; the mismatch is reported only when nobody serves the blob.
    const honest: BlobSource = { fetchBlobs: async () => [blob] }
    assert.deepEqual(await fetchVerifiedBlobsWithFallback([peerArchiveBlobSource(p.url, 't'), honest], at), [blob])
  } finally {
    p.close()
  }
})

test('error: a peer that refuses, or answers with a non-blob', async () => {
  const refusing = await peer(() => ({ status: 401 }))
  const short = await peer(() => ({ status: 200, body: new Uint8Array(10) }))
  try {
    await assert.rejects(peerArchiveBlobSource(refusing.url, 't').fetchBlobs(at), BlobSourceError)
    await assert.rejects(peerArchiveBlobSource(short.url, 't').fetchBlobs(at), /not a blob/)
    await assert.rejects(peerArchiveBlobSource('http://127.0.0.1:9', 't').fetchBlobs(at), /unreachable/)
  } finally {
    refusing.close()
    short.close()
  }
})
