// Blob transport against a real anvil (docs/protocol.md#flows, docs/protocol.md#wire-formats): send envelopes as blob transactions, fetch them back
// through anvil's blob routes, verify each blob by KZG commitment, decode.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  concat,
  fromRlp,
  toRlp,
  createPublicClient,
  createWalletClient,
  encodeErrorResult,
  hexToBytes,
  http,
  parseAbi,
  size,
  toBlobs,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { anvilBlobSource, fetchVerifiedBlobs, versionedHashOf } from '../src/chain/beacon.ts'
import { buildBlobSidecars, signBlobTransaction, unwrapBlobTransaction } from '../src/chain/blobTransaction.ts'
import {
  parsePreparedBlobTransaction,
  preparedSidecars,
  prepareBlobTransaction,
  sendBlobTransaction,
  sendPreparedBlobTransaction,
  serializePreparedBlobTransaction,
  type SentBlobTransaction,
} from '../src/chain/blobs.ts'
import { ECIES_CIPHERTEXT_BYTES, blobsToEnvelope, envelopeToBlobs, type OnboardEnvelope, type RegisterEnvelope } from '../src/chain/envelope.ts'
import { BlobHashMismatchError, BlobNotFoundError, BlobTransactionRevertedError } from '../src/chain/errors.ts'
import { CELLS_PER_EXT_BLOB, getKzg } from '../src/chain/kzg.ts'

// anvil's funded development accounts (its public test mnemonic).
const DEV_MNEMONIC = 'test test test test test test test test test test test junk'
const sender = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: 0 })
const host = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: 1 })
const DEAD: Address = '0x000000000000000000000000000000000000dEaD'

const bytes = (length: number) => new Uint8Array(randomBytes(length))

describe('blob transport on anvil', () => {
  let anvil: Anvil
  let publicClient: PublicClient
  const wallet = (account: typeof sender) => createWalletClient({ account, chain: foundry, transport: http(anvil.rpcUrl, { timeout: 60_000 }) })

  let kzgLoadMs: number
  before(async () => {
    const started = performance.now()
    getKzg()
    kzgLoadMs = performance.now() - started
    anvil = await startAnvil()
    publicClient = createPublicClient({ chain: foundry, transport: http(anvil.rpcUrl, { timeout: 60_000 }) })
  })
  after(async () => {
    await anvil?.stop()
  })

  async function fetchBack(sent: SentBlobTransaction, rpcUrl = anvil.rpcUrl) {
    const block = await publicClient.getBlock({ blockNumber: sent.receipt.blockNumber })
    const tx = await publicClient.getTransaction({ hash: sent.hash })
    return fetchVerifiedBlobs(anvilBlobSource(rpcUrl), {
      blockNumber: block.number,
      blockHash: block.hash,
      blockTimestamp: block.timestamp,
      versionedHashes: tx.blobVersionedHashes ?? [],
    })
  }

  const register: RegisterEnvelope = {
    kind: 'register',
    teeType: 'tdx',
    quote: bytes(5006),
    pubkey64: bytes(64),
    refBlockNumber: 0n,
    refBlockHash: bytes(32),
    settingsDigest: bytes(32),
  }
  let first: SentBlobTransaction

  test('default: a register envelope goes out as a blob and comes back verified', async (t) => {
    const blobBaseFee = await publicClient.getBlobBaseFee()
    let started = performance.now()
    first = await sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, envelope: register })
    const firstSendMs = performance.now() - started
    assert.equal(first.receipt.status, 'success')
    const tx = await publicClient.getTransaction({ hash: first.hash })
    assert.deepEqual(tx.blobVersionedHashes, first.blobVersionedHashes)
    // maxFeePerBlobGas defaults to twice the blob base fee.
    assert.equal(tx.maxFeePerBlobGas, 2n * blobBaseFee)

    started = performance.now()
    const fetched = await fetchBack(first)
    const fetchMs = performance.now() - started
    assert.equal(fetched.length, 1)
    assert.deepEqual(blobsToEnvelope(fetched), register)

    started = performance.now()
    const second = await sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: sender.address, envelope: register })
    assert.deepEqual(blobsToEnvelope(await fetchBack(second)), register)
    t.diagnostic(
      `KZG setup load ${kzgLoadMs.toFixed(0)} ms; first send (anvil loads KZG lazily) ${firstSendMs.toFixed(0)} ms; fetch+verify ${fetchMs.toFixed(0)} ms; ` +
        `later send+fetch+decode round trip ${(performance.now() - started).toFixed(0)} ms`,
    )
  })

  test('default: a multi-blob onboard envelope round trips', async (t) => {
    const onboard: OnboardEnvelope = {
      kind: 'onboard',
      generation: 1n,
      entries: Array.from({ length: 3000 }, (_, i) => ({ requestId: BigInt(i) + 1n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) })),
    }
    const started = performance.now()
    const sent = await sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, envelope: onboard })
    const sentMs = performance.now() - started
    assert.equal(sent.blobVersionedHashes.length, 3)
    const fetched = await fetchBack(sent)
    assert.equal(fetched.length, 3)
    assert.deepEqual(blobsToEnvelope(fetched), onboard)
    t.diagnostic(`3-blob send ${sentMs.toFixed(0)} ms; send+fetch+decode ${(performance.now() - started).toFixed(0)} ms`)
  })

  test('default: anvil (osaka) takes our v1 sidecar and refuses a wrong cell proof', async () => {
    const blobs = envelopeToBlobs(register)
    const sent = await sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, blobs, sidecarVersion: 1 })
    assert.equal(sent.receipt.status, 'success')
    const nonce = await publicClient.getTransactionCount({ address: sender.address, blockTag: 'pending' })
    const fees = await publicClient.estimateFeesPerGas()
    const sidecars = buildBlobSidecars(blobs, 1)
    const fields = { chainId: foundry.id, nonce, to: DEAD, data: '0x' as Hex, gas: 100_000n, maxFeePerBlobGas: 2n * (await publicClient.getBlobBaseFee()), ...fees }
    const swapped = { ...sidecars, proofs: [sidecars.proofs[1]!, sidecars.proofs[0]!, ...sidecars.proofs.slice(2)] }
    const { raw } = await signBlobTransaction(sender, fields, swapped)
    await assert.rejects(publicClient.request({ method: 'eth_sendRawTransaction', params: [raw] }), /invalid KZG proof|KZG/i)
    // One cell proof short: built by hand, since wrapBlobTransaction refuses it.
    const body = fromRlp(`0x${unwrapBlobTransaction(raw).canonical.slice(4)}`, 'hex')
    const short = `0x03${toRlp([body as Hex[], '0x01', sidecars.blobs, sidecars.commitments, sidecars.proofs.slice(1)]).slice(2)}` as Hex
    await assert.rejects(publicClient.request({ method: 'eth_sendRawTransaction', params: [short] }), /128 cell proofs|cell proofs/i)
    assert.equal(sidecars.proofs.length, CELLS_PER_EXT_BLOB)
    // The discovered version on an osaka anvil is v1: the default send builds cell proofs.
    const prepared = await prepareBlobTransaction({ publicClient, to: DEAD, blobs })
    assert.equal(prepared.sidecarVersion, 1)
    assert.equal(prepared.sidecars[0]!.proofs.length, CELLS_PER_EXT_BLOB)
  })

  test('default: a stale block number still finds the blob by hash', async () => {
    const fetched = await fetchVerifiedBlobs(anvilBlobSource(anvil.rpcUrl), {
      blockNumber: first.receipt.blockNumber + 1n,
      blockHash: `0x${'00'.repeat(32)}`,
      blockTimestamp: 0n,
      versionedHashes: first.blobVersionedHashes,
    })
    assert.deepEqual(blobsToEnvelope(fetched), register)
  })

  test('error: a versioned hash that was never published is not found', async () => {
    const other = versionedHashOf(hexToBytes(envelopeToBlobs({ ...register, quote: bytes(100) })[0]!))!
    await assert.rejects(
      fetchVerifiedBlobs(anvilBlobSource(anvil.rpcUrl), {
        blockNumber: first.receipt.blockNumber,
        blockHash: first.receipt.blockHash,
        blockTimestamp: 0n,
        versionedHashes: [other],
      }),
      (error) => {
        assert.ok(error instanceof BlobNotFoundError)
        assert.equal(error.versionedHash, other)
        return true
      },
    )
  })

  test('error: a tampered blob from the RPC is rejected', async () => {
    // A proxy in front of anvil that flips one payload byte of every blob it relays.
    const proxy = createServer((request, response) => {
      const upstream = httpRequest(`${anvil.rpcUrl}${request.url}`, { method: request.method, headers: request.headers }, (answer) => {
        const chunks: Buffer[] = []
        answer.on('data', (chunk: Buffer) => chunks.push(chunk))
        answer.on('end', () => {
          const text = Buffer.concat(chunks).toString().replace(/"0x00([0-9a-f]{2})/g, (_m, byte: string) => `"0x00${(parseInt(byte, 16) ^ 1).toString(16).padStart(2, '0')}`)
          response.writeHead(answer.statusCode ?? 500, { 'content-type': 'application/json' })
          response.end(text)
        })
      })
      request.pipe(upstream)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
      await assert.rejects(fetchBack(first, proxyUrl), (error) => {
        assert.ok(error instanceof BlobHashMismatchError)
        assert.equal(error.expected, first.blobVersionedHashes[0])
        assert.equal(error.served.length, 1)
        assert.notEqual(error.served[0], first.blobVersionedHashes[0])
        return true
      })
    } finally {
      proxy.closeAllConnections()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  test('default: a prepared transaction survives JSON and is sent by the host', async () => {
    const prepared = await prepareBlobTransaction({ publicClient, from: host.address, to: DEAD, data: '0x1234', envelope: register })
    assert.equal(prepared.chainId, foundry.id)
    assert.ok(prepared.gas! > 21000n)
    const json = JSON.parse(JSON.stringify(serializePreparedBlobTransaction(prepared)))
    assert.equal(json.sidecars[0].blob.length, 2 + 2 * 131072)
    const parsed = parsePreparedBlobTransaction(json)
    assert.deepEqual(parsed, prepared)
    const sent = await sendPreparedBlobTransaction({ walletClient: wallet(host), publicClient, transaction: parsed })
    const tx = await publicClient.getTransaction({ hash: sent.hash })
    assert.equal(tx.from.toLowerCase(), host.address.toLowerCase())
    assert.equal(tx.input, '0x1234')
    assert.deepEqual(blobsToEnvelope(await fetchBack(sent)), register)
    // The documented manual path: sign the canonical tx, wrap it with the prepared sidecars, send it raw; no KZG setup.
    const again = parsePreparedBlobTransaction(
      JSON.parse(JSON.stringify(serializePreparedBlobTransaction(await prepareBlobTransaction({ publicClient, to: DEAD, envelope: register })))),
    )
    const nonce = await publicClient.getTransactionCount({ address: host.address, blockTag: 'pending' })
    const { raw, hash } = await signBlobTransaction(host, { ...again, nonce, gas: 200_000n }, preparedSidecars(again))
    await publicClient.request({ method: 'eth_sendRawTransaction', params: [raw] })
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success')
    assert.deepEqual((await publicClient.getTransaction({ hash })).blobVersionedHashes, again.blobVersionedHashes)
  })

  test('error: a tampered prepared transaction is refused', () => {
    const sidecar = { blob: envelopeToBlobs(register)[0]!, commitment: `0x${'c0'.repeat(48)}` as Hex, proofs: [`0x${'00'.repeat(48)}` as Hex] }
    const base = {
      type: 'eip4844',
      chainId: '0x7a69',
      to: DEAD,
      data: '0x',
      value: '0x0',
      maxFeePerGas: '0x1',
      maxPriorityFeePerGas: '0x1',
      maxFeePerBlobGas: '0x2',
      blobVersionedHashes: [`0x01${'00'.repeat(31)}`],
      sidecarVersion: 0,
      sidecars: [sidecar],
    }
    assert.throws(() => parsePreparedBlobTransaction(base), {
      name: 'InvalidPreparedTransactionError',
      message: 'Invalid prepared blob transaction.\n\ndetail: blobVersionedHashes.0 does not match sidecars.0.commitment',
    })
    assert.throws(() => parsePreparedBlobTransaction({ ...base, value: '0x01' }), { name: 'InvalidPreparedTransactionError', message: /value/ })
    assert.throws(() => parsePreparedBlobTransaction({ ...base, extra: 1 }), { name: 'InvalidPreparedTransactionError' })
    assert.throws(() => parsePreparedBlobTransaction({ ...base, sidecars: [{ ...sidecar, blob: '0x00' }] }), { name: 'InvalidPreparedTransactionError', message: /sidecars\.0\.blob/ })
    assert.throws(() => parsePreparedBlobTransaction(null), { name: 'InvalidPreparedTransactionError' })
    // A v1 sidecar needs 128 cell proofs per blob.
    assert.throws(() => parsePreparedBlobTransaction({ ...base, sidecarVersion: 1 }), {
      name: 'InvalidPreparedTransactionError',
      message: /sidecars\.0\.proofs: a v1 sidecar has 128 proofs per blob/,
    })
  })

  test('error: reverts are BlobTransactionRevertedError with the decoded reason', async () => {
    // A contract whose runtime reverts with Error("nope"): CODECOPY the revert data, REVERT.
    const revertData = encodeErrorResult({ abi: parseAbi(['error Error(string)']), errorName: 'Error', args: ['nope'] })
    const copyAndExit = (length: number, exitOpcode: Hex) => concat(['0x60', toHex(length, { size: 1 }), '0x600c600039', '0x60', toHex(length, { size: 1 }), '0x6000', exitOpcode])
    const runtime = concat([copyAndExit(size(revertData), '0xfd'), revertData])
    const deployHash = await wallet(sender).sendTransaction({ data: concat([copyAndExit(size(runtime), '0xf3'), runtime]) })
    const reverter = (await publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress!

    // Refused at gas estimation: nothing is sent.
    await assert.rejects(sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: reverter, envelope: register }), (error) => {
      assert.ok(error instanceof BlobTransactionRevertedError)
      assert.equal(error.hash, undefined)
      assert.equal(error.errorName, 'Error')
      assert.deepEqual(error.errorArgs, ['nope'])
      assert.equal(error.message, 'Blob transaction reverted.\n\ntransaction: not sent (gas estimation reverted)\nreason: nope')
      return true
    })
    // With a fixed gas limit it is mined, reverts, and the reason is recovered by replaying the call.
    await assert.rejects(
      sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: reverter, envelope: register, gas: 100_000n }),
      (error) => {
        assert.ok(error instanceof BlobTransactionRevertedError)
        assert.ok(error.hash)
        assert.equal(error.receipt?.status, 'reverted')
        assert.equal(error.revertData, revertData)
        assert.equal(
          error.message,
          `Blob transaction reverted.\n\ntransaction: ${error.hash}\nblock: ${error.receipt!.blockNumber}\ngas used: ${error.receipt!.gasUsed}\nreason: nope`,
        )
        assert.equal(error.code, 'unprocessable')
        return true
      },
    )
  })

  test('error: bad blob payloads are refused before any request', async () => {
    await assert.rejects(sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, blobs: [] }), RangeError)
    await assert.rejects(sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, blobs: ['0x1234'] }), {
      name: 'RangeError',
      message: 'blobs[0] must be 131072 bytes of 0x-hex',
    })
    const blob = envelopeToBlobs(register)[0]!
    await assert.rejects(sendBlobTransaction({ walletClient: wallet(sender), publicClient, to: DEAD, blobs: Array(7).fill(blob) }), RangeError)
    await assert.rejects(
      sendBlobTransaction({ walletClient: createWalletClient({ account: sender.address, chain: foundry, transport: http(anvil.rpcUrl, { timeout: 60_000 }) }), publicClient, to: DEAD, blobs: [blob] }),
      { name: 'TypeError', message: /local account/ },
    )
  })
})
