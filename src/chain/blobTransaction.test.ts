// The blob tx network wrapper (docs/protocol.md#blob-transactions): our v1 and v0 encodings against foundry's
// `cast mktx --blob` (v1 by default, `--eip4844` for v0) for the same blob and fields, byte for byte.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { fromRlp, hexToBytes, keccak256, toBlobs, toHex, toRlp, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  BlobWrapperError,
  blobTransactionHash,
  buildBlobSidecars,
  isWrappedBlobTransaction,
  signBlobTransaction,
  unwrapBlobTransaction,
  wrapBlobTransaction,
} from './blobTransaction.ts'
import { CELLS_PER_EXT_BLOB, verifyCellProofs } from './kzg.ts'

const castPath = join(dirname(createRequire(import.meta.url).resolve('@foundry-rs/cast-linux-amd64/package.json')), 'bin', 'cast')
// anvil's first development key (public).
const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const TO = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const FIELDS = {
  chainId: 31337,
  nonce: 7,
  to: TO,
  data: '0xdeadbeef',
  gas: 120_000n,
  maxFeePerGas: 3_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
  maxFeePerBlobGas: 9n,
} as const

/** `cast mktx` for FIELDS with the data file as blob payload (cast packs the file into blobs its own way). */
function castMktx(payload: Uint8Array, version: 0 | 1): Hex {
  const dir = mkdtempSync(join(tmpdir(), 'km-cast-'))
  writeFileSync(join(dir, 'payload'), payload)
  const args = ['mktx', '--private-key', KEY, '--chain', String(FIELDS.chainId), '--nonce', String(FIELDS.nonce)]
  args.push('--gas-limit', String(FIELDS.gas), '--gas-price', String(FIELDS.maxFeePerGas), '--priority-gas-price', String(FIELDS.maxPriorityFeePerGas))
  args.push('--blob-gas-price', String(FIELDS.maxFeePerBlobGas), '--blob', ...(version === 0 ? ['--eip4844'] : []), '--path', join(dir, 'payload'), TO, FIELDS.data)
  return execFileSync(castPath, args, { encoding: 'utf8' }).trim() as Hex
}

describe('blob transaction wrapper', () => {
  const blobs = toBlobs({ data: toHex('keymanager register envelope, test payload') })

  test('default: a v1 raw tx has 5 fields, wrapper version 1, and 128 cell proofs per blob that verify', async () => {
    const sidecars = buildBlobSidecars([...blobs, ...blobs], 1)
    const { raw, hash } = await signBlobTransaction(privateKeyToAccount(KEY), FIELDS, sidecars)
    assert.equal(raw.slice(0, 4), '0x03')
    const outer = fromRlp(`0x${raw.slice(4)}`, 'hex') as unknown[]
    assert.equal(outer.length, 5)
    assert.equal(outer[1], '0x01')
    const [blobList, commitments, proofs] = outer.slice(2) as Hex[][]
    assert.equal(blobList!.length, 2)
    assert.equal(proofs!.length, 2 * CELLS_PER_EXT_BLOB)
    assert.ok(verifyCellProofs(blobList!.map((b) => hexToBytes(b)), commitments!.map((c) => hexToBytes(c)), proofs!.map((p) => hexToBytes(p))))
    // The hash is keccak256 of the canonical form, 0x03 ‖ rlp(body).
    assert.equal(hash, keccak256(`0x03${toRlp(outer[0] as Hex[]).slice(2)}`))
    assert.equal(blobTransactionHash(raw), hash)
  })

  test('default: v1 is byte-identical to cast mktx --blob for the same blob and fields', async () => {
    const cast = castMktx(new TextEncoder().encode('hello from keymanager'), 1)
    const theirs = unwrapBlobTransaction(cast)
    assert.equal(theirs.sidecars.version, 1)
    const ours = await signBlobTransaction(privateKeyToAccount(KEY), FIELDS, buildBlobSidecars(theirs.sidecars.blobs, 1))
    assert.equal(ours.raw, cast)
    assert.equal(ours.hash, theirs.hash)
    // The vector of docs/protocol.md#blob-transactions: FIELDS, one blob of this payload, v1 (137,561 bytes).
    assert.equal(ours.hash, '0x2f0a010e9307f93a32423172923a02fc63310dc1f35d36d6e9281ff8b87791c8')
    assert.equal(keccak256(ours.raw), '0xad9c1aeab364e3999411df3ffbbf030d022bc488be474ed6f46b8ef4c7bb2095')
  })

  test('default: v0 is byte-identical to cast mktx --blob --eip4844', async () => {
    const cast = castMktx(new TextEncoder().encode('hello from keymanager'), 0)
    const theirs = unwrapBlobTransaction(cast)
    assert.equal(theirs.sidecars.version, 0)
    const ours = await signBlobTransaction(privateKeyToAccount(KEY), FIELDS, buildBlobSidecars(theirs.sidecars.blobs, 0))
    assert.equal(ours.raw, cast)
    // The same transaction (same hash as v1) in the v0 wrapper (131,335 bytes).
    assert.equal(ours.hash, '0x2f0a010e9307f93a32423172923a02fc63310dc1f35d36d6e9281ff8b87791c8')
    assert.equal(keccak256(ours.raw), '0xa2572682e782e7827c298e396f9ef5e1668197bd03a7d201937d233d90306490')
  })

  test('default: re-wrapping a signed v0 tx as v1 keeps its hash and needs no key', async () => {
    const v0 = await signBlobTransaction(privateKeyToAccount(KEY), FIELDS, buildBlobSidecars(blobs, 0))
    const { canonical, sidecars } = unwrapBlobTransaction(v0.raw)
    const v1 = wrapBlobTransaction(canonical, buildBlobSidecars(sidecars.blobs, 1))
    assert.notEqual(v1, v0.raw)
    assert.equal(blobTransactionHash(v1), v0.hash)
    assert.equal(unwrapBlobTransaction(v1).sidecars.version, 1)
    assert.ok(isWrappedBlobTransaction(v1) && isWrappedBlobTransaction(v0.raw) && !isWrappedBlobTransaction(canonical))
  })

  test('error: malformed wrappers are refused with the reason', async () => {
    const { raw } = await signBlobTransaction(privateKeyToAccount(KEY), FIELDS, buildBlobSidecars(blobs, 1))
    const outer = fromRlp(`0x${raw.slice(4)}`, 'hex') as Hex[][]
    const rewrap = (items: unknown[]) => `0x03${toRlp(items as Hex[]).slice(2)}` as Hex
    const refuses = (value: Hex, detail: string) =>
      assert.throws(() => unwrapBlobTransaction(value), (error) => {
        assert.ok(error instanceof BlobWrapperError)
        assert.equal(error.message, `Malformed blob transaction wrapper.\n\ndetail: ${detail}`)
        return true
      })
    refuses(`0x02${raw.slice(4)}`, 'not a type-3 transaction')
    refuses(rewrap([outer[0], '0x02', ...outer.slice(2)]), 'wrapper version 0x02, expected 0x01')
    refuses(rewrap([outer[0], '0x01', outer[2], outer[3], (outer[4] as Hex[]).slice(1)]), '1 blobs, 1 commitments and 127 proofs do not fit a v1 sidecar')
    refuses(rewrap([outer[0], '0x01', outer[2], outer[3]]), 'blobs is not a list of byte strings')
    refuses(rewrap([outer[0], '0x01', ['0x1234'], outer[3], outer[4]]), 'blobs[0] is 2 bytes, expected 131072')
    refuses(rewrap([outer[0]]), 'a wrapper has 4 (v0) or 5 (v1) fields, got 1')
    refuses('0x03c0', 'a wrapper has 4 (v0) or 5 (v1) fields, got 0')
    refuses('0x03ff', 'not RLP')
    // A wrong cell proof passes the shape check and fails the KZG check.
    const [blob, commitment] = [hexToBytes(outer[2]![0]!), hexToBytes(outer[3]![0]!)]
    const proofs = (outer[4] as Hex[]).map((p) => hexToBytes(p))
    assert.ok(!verifyCellProofs([blob], [commitment], [proofs[1]!, proofs[0]!, ...proofs.slice(2)]))
    assert.ok(!verifyCellProofs([blob], [commitment], proofs.slice(1)))
  })
})
