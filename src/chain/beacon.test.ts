import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { bytesToHex, hexToBytes, toBlobs, type Hex } from 'viem'
import { beaconBlobSource, fetchVerifiedBlobs, versionedHashOf, type FetchBlobsParameters } from './beacon.ts'
import { BeaconChainMismatchError, BeaconNotSupernodeError, BlobHashMismatchError, BlobNotFoundError, BlobsPrunedError, BlobSourceError } from './errors.ts'
import { blobToCommitment, commitmentToVersionedHash } from './kzg.ts'

type Handler = (request: IncomingMessage, url: URL, response: ServerResponse) => void
type Served = { url: string; requests: { path: string; search: string; authorization?: string | undefined }[]; close(): Promise<void> }

/** A beacon-shaped HTTP server on 127.0.0.1 whose routes a test supplies. */
async function serve(handler: Handler): Promise<Served> {
  const requests: Served['requests'] = []
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1')
    requests.push({ path: url.pathname, search: url.search, authorization: request.headers.authorization })
    handler(request, url, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function json(response: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

type TestBlob = { hex: Hex; bytes: Uint8Array; commitment: Hex; versionedHash: Hex }
function makeBlob(text: string): TestBlob {
  const hex = toBlobs({ data: bytesToHex(new TextEncoder().encode(text)) })[0]!
  const bytes = hexToBytes(hex)
  const commitment = blobToCommitment(bytes)
  return { hex, bytes, commitment: bytesToHex(commitment), versionedHash: bytesToHex(commitmentToVersionedHash(commitment)) }
}

const GENESIS = 1_606_824_023n
const SLOT = 12_345n
let blobs: TestBlob[]
let at: Omit<FetchBlobsParameters, 'versionedHashes'>

before(() => {
  blobs = ['first blob', 'second blob', 'third blob'].map(makeBlob)
  at = { blockNumber: 999n, blockHash: `0x${'ab'.repeat(32)}`, blockTimestamp: GENESIS + SLOT * 12n }
})

type ChainOptions = { secondsPerSlot?: number; genesis?: bigint; fulu?: boolean; headSlot?: bigint; depositChainId?: string }

/** `/eth/v1/beacon/genesis`, `/eth/v1/config/spec` and `/eth/v1/beacon/headers/head`; true when it answered. */
function chainRoutes(url: URL, response: ServerResponse, options: ChainOptions = {}): boolean {
  if (url.pathname.endsWith('/eth/v1/beacon/genesis')) {
    json(response, 200, { data: { genesis_time: String(options.genesis ?? GENESIS), genesis_validators_root: `0x${'00'.repeat(32)}`, genesis_fork_version: '0x00000000' } })
    return true
  }
  if (url.pathname.endsWith('/eth/v1/config/spec')) {
    json(response, 200, {
      data: {
        CONFIG_NAME: 'mainnet',
        DEPOSIT_CHAIN_ID: options.depositChainId ?? '1',
        SECONDS_PER_SLOT: String(options.secondsPerSlot ?? 12),
        SLOTS_PER_EPOCH: '32',
        MIN_EPOCHS_FOR_BLOB_SIDECARS_REQUESTS: '4096',
        ...(options.fulu === false ? {} : { FULU_FORK_EPOCH: '1', MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS: '4096' }),
      },
    })
    return true
  }
  if (url.pathname.endsWith('/eth/v1/beacon/headers/head')) {
    json(response, 200, { data: { root: `0x${'11'.repeat(32)}`, canonical: true, header: { message: { slot: String(options.headSlot ?? SLOT + 10n) } } } })
    return true
  }
  return false
}

/** getBlobs (post-Fulu) as the beacon-APIs define it: `versioned_hashes` repeated; bare blobs in block order. */
function fuluHandler(block: TestBlob[], options: { tamper?: number; ignoreFilter?: boolean } & ChainOptions = {}): Handler {
  return (_request, url, response) => {
    if (chainRoutes(url, response, options)) return
    if (url.pathname !== `/eth/v1/beacon/blobs/${SLOT}`) return json(response, 404, { code: 404, message: 'Block not found' })
    const filter = url.searchParams.getAll('versioned_hashes')
    // Grandine: a comma-joined list is not a versioned hash.
    if (filter.some((hash) => hash.includes(','))) return json(response, 400, { code: 400, message: 'Invalid versioned hash' })
    const wanted = filter.length > 0 && !options.ignoreFilter ? filter : undefined
    const data = block
      .map((blob, index) => {
        if (options.tamper !== index) return blob
        const bytes = blob.bytes.slice()
        bytes[5] = bytes[5]! ^ 0x01
        return { ...blob, hex: bytesToHex(bytes) }
      })
      .filter((blob) => wanted === undefined || wanted.includes(blob.versionedHash))
      .map((blob) => blob.hex)
    json(response, 200, { execution_optimistic: false, finalized: true, data })
  }
}

/** Pre-Fulu node: no Fulu in its spec, blob_sidecars with commitments. */
function sidecarHandler(block: TestBlob[], options: { tamper?: number } = {}): Handler {
  return (_request, url, response) => {
    if (chainRoutes(url, response, { fulu: false })) return
    if (url.pathname !== `/eth/v1/beacon/blob_sidecars/${SLOT}`) return json(response, 404, { code: 404, message: 'Not found' })
    json(response, 200, {
      data: block.map((blob, index) => {
        const bytes = blob.bytes.slice()
        if (options.tamper === index) bytes[100] = bytes[100]! ^ 0x01
        return {
          index: String(index),
          blob: bytesToHex(bytes),
          kzg_commitment: blob.commitment,
          kzg_proof: `0x${'00'.repeat(48)}`,
          signed_block_header: {},
          kzg_commitment_inclusion_proof: [],
        }
      }),
    })
  }
}

describe('beaconBlobSource', () => {
  const servers: Served[] = []
  const start = async (handler: Handler) => {
    const served = await serve(handler)
    servers.push(served)
    return served
  }
  after(async () => {
    await Promise.all(servers.map((s) => s.close()))
  })

  test('default: post-Fulu blobs route by slot, versioned_hashes repeated, results in versioned-hash order', async () => {
    const server = await start(fuluHandler(blobs))
    const source = beaconBlobSource(server.url)
    const wanted = [blobs[2]!.versionedHash, blobs[0]!.versionedHash]
    const fetched = await fetchVerifiedBlobs(source, { ...at, versionedHashes: wanted })
    assert.deepEqual(fetched, [blobs[2]!.bytes, blobs[0]!.bytes])
    assert.deepEqual(server.requests.map((r) => r.path + r.search), [
      '/eth/v1/beacon/genesis',
      '/eth/v1/config/spec',
      `/eth/v1/beacon/blobs/${SLOT}?versioned_hashes=${wanted[0]}&versioned_hashes=${wanted[1]}`,
    ])
    // The chain config is asked once per source.
    await fetchVerifiedBlobs(source, { ...at, versionedHashes: [blobs[1]!.versionedHash] })
    assert.equal(server.requests.filter((r) => r.path === '/eth/v1/config/spec').length, 1)
  })

  test('default: the slot comes from the block timestamp, genesis and the spec (missed slots change nothing)', async () => {
    // SECONDS_PER_SLOT 6 and genesis 1000: a block at 1042 is slot 7, whatever number the execution block has.
    const server = await start((_request, url, response) => {
      if (chainRoutes(url, response, { secondsPerSlot: 6, genesis: 1000n })) return
      if (url.pathname === '/eth/v1/beacon/blobs/7') return json(response, 200, { data: [blobs[0]!.hex] })
      json(response, 404, { code: 404, message: 'Block not found' })
    })
    const fetched = await fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, blockNumber: 3n, blockTimestamp: 1042n, versionedHashes: [blobs[0]!.versionedHash] })
    assert.deepEqual(fetched, [blobs[0]!.bytes])
  })

  test('default: a node without Fulu in its spec is asked blob_sidecars, picked by commitment', async () => {
    const server = await start(sidecarHandler(blobs))
    const fetched = await fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[1]!.versionedHash] })
    assert.deepEqual(fetched, [blobs[1]!.bytes])
    assert.deepEqual(server.requests.map((r) => r.path), ['/eth/v1/beacon/genesis', '/eth/v1/config/spec', `/eth/v1/beacon/blob_sidecars/${SLOT}`])
  })

  test('default: a node that ignores the filter still yields the right blobs', async () => {
    const ignoring = await start(fuluHandler(blobs, { ignoreFilter: true }))
    assert.deepEqual(await fetchVerifiedBlobs(beaconBlobSource(ignoring.url), { ...at, versionedHashes: [blobs[1]!.versionedHash] }), [blobs[1]!.bytes])
  })

  test('error: a node that is not a supernode (Lighthouse 500, Prysm 404) says so', async () => {
    for (const [status, message] of [
      [500, 'Insufficient data columns to reconstruct blobs: required 64, but only 8 were found.'],
      [404, 'Blobs not found: node does not custody enough data columns to reconstruct blobs'],
    ] as const) {
      const server = await start((_request, url, response) => {
        if (chainRoutes(url, response)) return
        json(response, status, { code: status, message })
      })
      await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
        assert.ok(error instanceof BeaconNotSupernodeError)
        assert.equal(error.upstreamStatus, status)
        assert.match(error.message, /^The beacon node cannot serve blobs: it is not a supernode\./)
        assert.match(error.message, /--supernode/)
        return true
      })
    }
  })

  test('error: a block older than the retention window is BlobsPrunedError pointing to archives and peers', async () => {
    const window = 4096n * 32n
    // Lighthouse: 404 for pruned blobs; Prysm: 200 with an empty list.
    for (const answer of [{ status: 404, body: { code: 404, message: 'NOT_FOUND: blobs' } }, { status: 200, body: { data: [] } }]) {
      const server = await start((_request, url, response) => {
        if (chainRoutes(url, response, { headSlot: SLOT + window + 1n })) return
        json(response, answer.status, answer.body)
      })
      await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
        assert.ok(error instanceof BlobsPrunedError, String(error))
        assert.match(error.message, /archive/)
        assert.match(error.message, /peers/)
        assert.match(error.message, new RegExp(`slot: ${SLOT} \\(head slot ${SLOT + window + 1n}, blobs kept 4096 epochs`))
        return true
      })
    }
    // Inside the window a missing blob stays a plain not-found.
    const recent = await start((_request, url, response) => {
      if (chainRoutes(url, response, { headSlot: SLOT + window - 1n })) return
      json(response, 404, { code: 404, message: 'NOT_FOUND' })
    })
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(recent.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), BlobNotFoundError)
  })

  test('error: a node of another chain is refused (DEPOSIT_CHAIN_ID)', async () => {
    const server = await start(fuluHandler(blobs, { depositChainId: '11155111' }))
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url, { chainId: 1 }), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
      assert.ok(error instanceof BeaconChainMismatchError)
      assert.equal(error.message, 'The beacon node follows another chain.\n\npath: /eth/v1/config/spec\nexpected DEPOSIT_CHAIN_ID 1\nbeacon node: DEPOSIT_CHAIN_ID 11155111')
      return true
    })
    assert.deepEqual(await fetchVerifiedBlobs(beaconBlobSource(server.url, { chainId: 11155111 }), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), [blobs[0]!.bytes])
  })

  test('error: a node whose genesis time is not the network preset\'s is refused', async () => {
    const server = await start(fuluHandler(blobs, {}))
    const preset = { chainId: 1, genesisTime: Number(GENESIS) + 12 }
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url, preset), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
      assert.ok(error instanceof BeaconChainMismatchError)
      assert.equal(error.message, `The beacon node follows another chain.\n\npath: /eth/v1/config/spec\nexpected genesis_time ${GENESIS + 12n}\nbeacon node: genesis_time ${GENESIS}`)
      return true
    })
    const right = { chainId: 1, genesisTime: Number(GENESIS) }
    assert.deepEqual(await fetchVerifiedBlobs(beaconBlobSource(server.url, right), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), [blobs[0]!.bytes])
  })

  test('error: 410 on blob_sidecars from a node whose spec names no Fulu fork', async () => {
    const server = await start((_request, url, response) => {
      if (chainRoutes(url, response, { fulu: false })) return
      json(response, 410, { code: 410, message: 'Gone' })
    })
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
      name: 'BlobSourceError',
      message: /no longer serves blob_sidecars/,
    })
  })

  test('default: credentials in the URL go in an Authorization header; a base path and query are kept', async () => {
    const server = await start((request, url, response) => {
      const stripped = new URL(url.pathname.replace(/^\/key-in-path/, ''), 'http://x')
      fuluHandler(blobs)(request, stripped, response)
    })
    const base = server.url.replace('http://', 'http://user:s3cret@') + '/key-in-path/?apikey=k1'
    await fetchVerifiedBlobs(beaconBlobSource(base), { ...at, versionedHashes: [blobs[0]!.versionedHash] })
    assert.equal(server.requests[0]!.authorization, `Basic ${Buffer.from('user:s3cret').toString('base64')}`)
    assert.equal(server.requests[2]!.path, `/key-in-path/eth/v1/beacon/blobs/${SLOT}`)
    assert.equal(server.requests[2]!.search, `?apikey=k1&versioned_hashes=${blobs[0]!.versionedHash}`)
  })

  test('error: a tampered blob is a BlobHashMismatchError', async () => {
    const server = await start(fuluHandler(blobs, { tamper: 1 }))
    const tampered = blobs[1]!.bytes.slice()
    tampered[5] = tampered[5]! ^ 0x01
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[1]!.versionedHash] }), (error) => {
      assert.ok(error instanceof BlobHashMismatchError)
      assert.equal(
        error.message,
        `Served blob does not match its versioned hash.\n\nexpected: ${blobs[1]!.versionedHash}\nserved: ${versionedHashOf(tampered)}`,
      )
      assert.equal(error.code, 'upstream_failed')
      return true
    })
    const sidecars = await start(sidecarHandler(blobs, { tamper: 2 }))
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(sidecars.url), { ...at, versionedHashes: [blobs[2]!.versionedHash] }),
      BlobHashMismatchError,
    )
  })

  test('error: a blob that is not a valid KZG blob is a mismatch, not a crash', async () => {
    const invalid = bytesToHex(new Uint8Array(131072).fill(0xff))
    const server = await start((_request, url, response) => {
      if (chainRoutes(url, response)) return
      json(response, 200, { data: [invalid] })
    })
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
      name: 'BlobHashMismatchError',
      message: `Served blob does not match its versioned hash.\n\nexpected: ${blobs[0]!.versionedHash}\nserved: invalid`,
    })
  })

  test('error: a missing blob is a BlobNotFoundError', async () => {
    const server = await start(fuluHandler([blobs[0]!]))
    const missing = blobs[2]!.versionedHash
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [missing] }), (error) => {
      assert.ok(error instanceof BlobNotFoundError)
      assert.equal(error.message, `Blob not found.\n\nversioned hash: ${missing}`)
      assert.equal(error.status, 404)
      return true
    })
    // A slot with no block (missed): 404.
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, blockTimestamp: GENESIS + 12n, versionedHashes: [missing] }),
      BlobNotFoundError,
    )
  })

  test('error: HTTP failures are BlobSourceError naming the route, never the URL secrets', async () => {
    const server = await start((_request, url, response) => {
      if (chainRoutes(url, response)) return
      json(response, 503, { code: 503, message: 'syncing, see http://user:s3cret@host' })
    })
    const base = server.url.replace('http://', 'http://user:s3cret@') + '/k3y?apikey=s3cret'
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(base), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
      assert.ok(error instanceof BlobSourceError)
      assert.equal(error.message, `Blob source answered with an error status.\n\npath: /eth/v1/beacon/blobs/${SLOT}\nupstream status: 503`)
      assert.equal(error.upstreamStatus, 503)
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /s3cret|k3y|127\.0\.0\.1/)
      return true
    })
  })

  test('error: connection refused, timeout, oversize and malformed responses', async () => {
    const closed = await serve(() => undefined)
    await closed.close()
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(closed.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
      name: 'BlobSourceError',
      message: 'Blob source request failed.\n\npath: /eth/v1/beacon/genesis\ncode: ECONNREFUSED',
    })

    const silent = await start(() => undefined)
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(silent.url, { timeoutMs: 200 }), { ...at, versionedHashes: [blobs[0]!.versionedHash] }),
      { name: 'BlobSourceError', message: 'Blob source timed out.\n\npath: /eth/v1/beacon/genesis\ntimeout: 200 ms' },
    )

    const big = await start(fuluHandler(blobs, { ignoreFilter: true }))
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(big.url, { maxResponseBytes: 300_000 }), { ...at, versionedHashes: [blobs[0]!.versionedHash] }),
      { name: 'BlobSourceError', message: `Blob source response is too large.\n\npath: /eth/v1/beacon/blobs/${SLOT}\nupstream status: 200\nlimit: 300000 bytes` },
    )
    // Streaming without Content-Length is cut off too.
    const chunked = await start((_request, url, response) => {
      if (chainRoutes(url, response)) return
      response.writeHead(200, { 'content-type': 'application/json' })
      const chunk = 'x'.repeat(65536)
      const timer = setInterval(() => response.write(chunk), 1)
      response.on('close', () => clearInterval(timer))
    })
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(chunked.url, { maxResponseBytes: 1_000_000 }), { ...at, versionedHashes: [blobs[0]!.versionedHash] }),
      { name: 'BlobSourceError', message: /too large/ },
    )

    const bodies: [unknown, string][] = [
      ['not json', 'the body is not JSON'],
      [{ data: 'x' }, '`data` is not an array'],
      [{ data: ['0x1234'] }, 'a blob is not 131072 bytes of 0x-hex'],
      [{ data: [42] }, 'data[0] is neither a blob nor a sidecar'],
      [{ data: [{ blob: blobs[0]!.hex }] }, 'data[0].kzg_commitment is not 48 bytes of hex'],
    ]
    for (const [body, detail] of bodies) {
      const server = await start((_request, url, response) => {
        if (chainRoutes(url, response)) return
        if (typeof body === 'string') {
          response.writeHead(200, { 'content-type': 'application/json' })
          return response.end(body)
        }
        json(response, 200, body)
      })
      await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
        name: 'BlobSourceError',
        message: `Blob source sent a malformed response.\n\npath: /eth/v1/beacon/blobs/${SLOT}\ndetail: ${detail}`,
      })
    }
    const badGenesis = await start((_request, _url, response) => json(response, 200, { data: { genesis_time: 1606824023 } }))
    await assert.rejects(fetchVerifiedBlobs(beaconBlobSource(badGenesis.url), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
      name: 'BlobSourceError',
      message: 'Blob source sent a malformed response.\n\npath: /eth/v1/beacon/genesis\ndetail: data.genesis_time is not a decimal string',
    })
  })

  test('error: a block time off the slot grid is refused before any blob request', async () => {
    const server = await start(fuluHandler(blobs))
    await assert.rejects(
      fetchVerifiedBlobs(beaconBlobSource(server.url), { ...at, blockTimestamp: GENESIS + 13n, versionedHashes: [blobs[0]!.versionedHash] }),
      {
        name: 'BlobSourceError',
        message: `Block timestamp is not a slot time of this beacon chain.\n\npath: /eth/v1/beacon/genesis\nblock timestamp: ${GENESIS + 13n}\ngenesis time: ${GENESIS}\nseconds per slot: 12`,
      },
    )
    assert.deepEqual(server.requests.map((r) => r.path), ['/eth/v1/beacon/genesis', '/eth/v1/config/spec'])
  })
})

describe('fetchVerifiedBlobs', () => {
  const fixed = (served: Uint8Array[]) => ({ fetchBlobs: async () => served })

  test('default: duplicates and extra blobs', async () => {
    const wanted = [blobs[0]!.versionedHash, blobs[1]!.versionedHash, blobs[0]!.versionedHash]
    const fetched = await fetchVerifiedBlobs(fixed([blobs[2]!.bytes, blobs[1]!.bytes, blobs[0]!.bytes, blobs[0]!.bytes]), { ...at, versionedHashes: wanted })
    assert.deepEqual(fetched, [blobs[0]!.bytes, blobs[1]!.bytes, blobs[0]!.bytes])
    // Upper-case hex in the request is the same hash.
    const upper = `0x${blobs[1]!.versionedHash.slice(2).toUpperCase()}` as Hex
    assert.deepEqual(await fetchVerifiedBlobs(fixed([blobs[1]!.bytes]), { ...at, versionedHashes: [upper] }), [blobs[1]!.bytes])
  })

  test('error: bad versioned hashes are a RangeError', async () => {
    await assert.rejects(fetchVerifiedBlobs(fixed([]), { ...at, versionedHashes: [] }), RangeError)
    await assert.rejects(fetchVerifiedBlobs(fixed([]), { ...at, versionedHashes: [`0x02${'00'.repeat(31)}`] }), {
      name: 'RangeError',
      message: 'versionedHashes[0] is not a version-1 versioned hash (0x01 then 31 bytes)',
    })
    await assert.rejects(fetchVerifiedBlobs(fixed([]), { ...at, versionedHashes: ['0x01'] }), RangeError)
  })

  test('error: a blob for another hash, or nothing', async () => {
    await assert.rejects(fetchVerifiedBlobs(fixed([blobs[1]!.bytes]), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), {
      name: 'BlobHashMismatchError',
      message: `Served blob does not match its versioned hash.\n\nexpected: ${blobs[0]!.versionedHash}\nserved: ${blobs[1]!.versionedHash}`,
    })
    await assert.rejects(fetchVerifiedBlobs(fixed([]), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), BlobNotFoundError)
    await assert.rejects(fetchVerifiedBlobs(fixed([new Uint8Array(10)]), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), BlobHashMismatchError)
  })

  test('error: a flood of junk gets a bounded number of checks', async () => {
    const junk = Array.from({ length: 100 }, (_, i) => Uint8Array.of(i))
    await assert.rejects(fetchVerifiedBlobs(fixed([...junk, blobs[0]!.bytes]), { ...at, versionedHashes: [blobs[0]!.versionedHash] }), (error) => {
      assert.ok(error instanceof BlobHashMismatchError)
      assert.equal(error.served.length, 6)
      return true
    })
  })
})
