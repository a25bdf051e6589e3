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

test('default: a blob missing at the beacon node comes from a peer archive, read without any token', async () => {
  const seen: (string | undefined)[] = []
  const p = await peer((path, auth) => {
    seen.push(auth)
    return path === `/blobs/${versionedHash}` ? { status: 200, body: blob } : { status: 404 }
  })
  const empty: BlobSource = { fetchBlobs: async () => [] }
  try {
    const [got] = await fetchVerifiedBlobsWithFallback([empty, peerArchiveBlobSource(p.url)], at)
    assert.deepEqual(got, blob)
    // The host token is never handed to peers: blobs are public chain data.
    assert.deepEqual(seen, [undefined])
  } finally {
    p.close()
  }
})

test('security: a peer that serves another blob is caught by the versioned-hash check', async () => {
  const forged = Uint8Array.from(blob)
  forged[100] = 1
  const p = await peer(() => ({ status: 200, body: forged }))
  try {
    await assert.rejects(fetchVerifiedBlobsWithFallback([peerArchiveBlobSource(p.url)], at), BlobHashMismatchError)
    // An honest source later in the list still wins; the mismatch is reported only when nobody serves the blob.
    const honest: BlobSource = { fetchBlobs: async () => [blob] }
    assert.deepEqual(await fetchVerifiedBlobsWithFallback([peerArchiveBlobSource(p.url), honest], at), [blob])
  } finally {
    p.close()
  }
})

test('error: a peer that refuses, or answers with a non-blob', async () => {
  const refusing = await peer(() => ({ status: 401 }))
  const short = await peer(() => ({ status: 200, body: new Uint8Array(10) }))
  try {
    await assert.rejects(peerArchiveBlobSource(refusing.url).fetchBlobs(at), BlobSourceError)
    await assert.rejects(peerArchiveBlobSource(short.url).fetchBlobs(at), /not a blob/)
    await assert.rejects(peerArchiveBlobSource('http://127.0.0.1:9').fetchBlobs(at), /unreachable/)
  } finally {
    refusing.close()
    short.close()
  }
})

test('security: a chunked answer without Content-Length is read only up to one blob', async () => {
  // A lying peer streams far more than a blob (64 MiB) with no Content-Length: the reader stops past 128 KiB.
  let sent = 0
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const chunk = Buffer.alloc(64 * 1024, 1)
    const pump = () => {
      while (sent < 64 * 1024 * 1024) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  try {
    await assert.rejects(peerArchiveBlobSource(url).fetchBlobs(at), /not a blob/)
    assert.ok(sent < 8 * 1024 * 1024, `the peer got to send ${sent} bytes before the reader hung up`)
    // An exact blob sent chunked (no Content-Length) is still accepted.
    const exact = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.write(Buffer.from(blob.subarray(0, 1000)))
      res.end(Buffer.from(blob.subarray(1000)))
    })
    await new Promise<void>((resolve) => exact.listen(0, '127.0.0.1', resolve))
    try {
      assert.deepEqual(await peerArchiveBlobSource(`http://127.0.0.1:${(exact.address() as { port: number }).port}`).fetchBlobs(at), [blob])
    } finally {
      exact.close()
    }
  } finally {
    server.closeAllConnections()
    server.close()
  }
})
