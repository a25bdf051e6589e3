import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { privateKeyToAccount } from 'viem/accounts'
import {
  addressOfPublicKey,
  compressPublicKey,
  isValidPublicKey,
  publicKey33,
  publicKey64,
  recoverPublicKey33,
  recoverSigner,
  signDigest,
  uncompressPublicKey,
  verifyDigestSignature,
} from './signature.ts'

const N = secp256k1.Point.CURVE().n
// Hardhat/anvil account 0: a well-known key with a well-known address.
const KEY = hexToBytes('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80')
const ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'
const DIGEST = keccak_256(utf8ToBytes('keymanager signature test'))

function withScalar(signature: Uint8Array, offset: 0 | 32, value: bigint): Uint8Array {
  const out = signature.slice()
  out.set(hexToBytes(value.toString(16).padStart(64, '0')), offset)
  return out
}

describe('signDigest', () => {
  test('default', async () => {
    const signature = signDigest(DIGEST, KEY)
    assert.equal(signature.length, 65)
    assert.ok(signature[64] === 0 || signature[64] === 1)
    // Cross-check with viem's account signer (same key, same digest; viem puts v = 27 + yParity last).
    const viemSignature = hexToBytes((await privateKeyToAccount(`0x${bytesToHex(KEY)}`).sign({ hash: `0x${bytesToHex(DIGEST)}` })).slice(2))
    assert.deepEqual(signature.subarray(0, 64), viemSignature.subarray(0, 64))
    assert.equal(signature[64]! + 27, viemSignature[64])
    // Deterministic (RFC 6979) and low-S.
    assert.deepEqual(signDigest(DIGEST, KEY), signature)
    const s = BigInt(`0x${bytesToHex(signature.subarray(32, 64))}`)
    assert.ok(s <= N / 2n)
  })

  test('error: bad arguments', () => {
    assert.throws(() => signDigest(new Uint8Array(31), KEY), { name: 'RangeError', message: 'digest must be 32 bytes, got 31' })
    assert.throws(() => signDigest(DIGEST, new Uint8Array(32)), {
      name: 'RangeError',
      message: 'secretKey must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => signDigest(DIGEST, hexToBytes(N.toString(16))), {
      name: 'RangeError',
      message: 'secretKey must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => signDigest(DIGEST, 'key' as never), {
      name: 'TypeError',
      message: 'secretKey must be a Uint8Array, got string',
    })
  })
})

describe('recoverSigner', () => {
  test('default', () => {
    const signature = signDigest(DIGEST, KEY)
    assert.equal(recoverSigner(DIGEST, signature), ADDRESS)
    const legacy = signature.slice()
    legacy[64] = legacy[64]! + 27
    assert.equal(recoverSigner(DIGEST, legacy), ADDRESS)
    assert.deepEqual(recoverPublicKey33(DIGEST, signature), publicKey33(KEY))
  })

  test('error: malformed signature', () => {
    const signature = signDigest(DIGEST, KEY)
    const badV = signature.slice()
    badV[64] = 2
    assert.throws(() => recoverSigner(DIGEST, badV), {
      name: 'RangeError',
      message: 'invalid signature: v must be 0, 1, 27 or 28, got 2',
    })
    assert.throws(() => recoverSigner(DIGEST, withScalar(signature, 0, 0n)), {
      name: 'RangeError',
      message: 'invalid signature: r must be in [1, n-1]',
    })
    assert.throws(() => recoverSigner(DIGEST, withScalar(signature, 0, N)), {
      name: 'RangeError',
      message: 'invalid signature: r must be in [1, n-1]',
    })
    assert.throws(() => recoverSigner(DIGEST, withScalar(signature, 32, 0n)), {
      name: 'RangeError',
      message: 'invalid signature: s must be in [1, n-1]',
    })
    const s = BigInt(`0x${bytesToHex(signature.subarray(32, 64))}`)
    assert.throws(() => recoverSigner(DIGEST, withScalar(signature, 32, N - s)), {
      name: 'RangeError',
      message: 'invalid signature: high s (s > n/2) is not accepted',
    })
    assert.throws(() => recoverSigner(DIGEST, signature.subarray(0, 64)), {
      name: 'RangeError',
      message: 'signature must be 65 bytes, got 64',
    })
  })
})

describe('verifyDigestSignature', () => {
  test('default', () => {
    const signature = signDigest(DIGEST, KEY)
    assert.equal(verifyDigestSignature(DIGEST, signature, ADDRESS), true)
    assert.equal(verifyDigestSignature(DIGEST, signature, ADDRESS.toLowerCase()), true)
    const legacy = signature.slice()
    legacy[64] = signature[64]! + 27
    assert.equal(verifyDigestSignature(DIGEST, legacy, ADDRESS), true)
  })

  test('error: returns false, never throws', () => {
    const signature = signDigest(DIGEST, KEY)
    const s = BigInt(`0x${bytesToHex(signature.subarray(32, 64))}`)
    // The malleated twin (n - s, flipped v) recovers the same key mathematically: it must still be refused.
    const twin = withScalar(signature, 32, N - s)
    twin[64] = signature[64]! ^ 1
    assert.equal(secp256k1.Signature.fromBytes(twin.subarray(0, 64)).addRecoveryBit(twin[64]!).recoverPublicKey(DIGEST).toHex(true), bytesToHex(publicKey33(KEY)))
    const cases: [unknown, unknown, unknown][] = [
      [DIGEST, twin, ADDRESS],
      [DIGEST, withScalar(signature, 0, 0n), ADDRESS],
      [DIGEST, withScalar(signature, 32, 0n), ADDRESS],
      [DIGEST, signature.subarray(0, 64), ADDRESS],
      [DIGEST, new Uint8Array([...signature, 0]), ADDRESS],
      [DIGEST, Uint8Array.from({ length: 65 }, () => 0xff), ADDRESS],
      [DIGEST, new Uint8Array(65), ADDRESS],
      [keccak_256(utf8ToBytes('other')), signature, ADDRESS],
      [DIGEST, signature, '0x0000000000000000000000000000000000000000'],
      [DIGEST, signature, 'not an address'],
      [DIGEST, `0x${bytesToHex(signature)}`, ADDRESS],
      [DIGEST.subarray(1), signature, ADDRESS],
      [undefined, undefined, undefined],
    ]
    for (const v of [2, 26, 29, 255]) {
      const bad = signature.slice()
      bad[64] = v
      cases.push([DIGEST, bad, ADDRESS])
    }
    for (const [digest, sig, address] of cases) assert.equal(verifyDigestSignature(digest, sig, address), false)
  })
})

describe('public keys', () => {
  test('default', () => {
    const pub33 = publicKey33(KEY)
    const pub64 = publicKey64(KEY)
    assert.equal(pub33.length, 33)
    assert.equal(pub64.length, 64)
    assert.deepEqual(compressPublicKey(pub64), pub33)
    assert.deepEqual(compressPublicKey(new Uint8Array([4, ...pub64])), pub33)
    assert.deepEqual(uncompressPublicKey(pub33), pub64)
    assert.equal(addressOfPublicKey(pub33), ADDRESS)
    assert.equal(addressOfPublicKey(pub64), ADDRESS)
    assert.equal(addressOfPublicKey(new Uint8Array([4, ...pub64])), ADDRESS)
    assert.equal(isValidPublicKey(pub33), true)
    assert.equal(isValidPublicKey('x'), false)
  })

  test('error: invalid public key', () => {
    const offCurve = publicKey64(KEY)
    offCurve[63]! ^= 1
    assert.throws(() => addressOfPublicKey(offCurve), {
      name: 'RangeError',
      message: 'publicKey is not a valid secp256k1 public key',
    })
    assert.equal(isValidPublicKey(offCurve), false)
    assert.throws(() => compressPublicKey(new Uint8Array(32)), {
      name: 'RangeError',
      message: 'publicKey must be 33, 64 or 65 bytes, got 32',
    })
    const badPrefix = publicKey33(KEY)
    badPrefix[0] = 0x05
    assert.throws(() => uncompressPublicKey(badPrefix, 'recipient'), {
      name: 'RangeError',
      message: 'recipient is not a valid secp256k1 public key',
    })
  })
})
