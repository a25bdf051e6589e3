// secp256k1 signatures over 32-byte digests, in the one wire form the project uses everywhere (docs/protocol.md#keys-and-derivations):
// 65 bytes r ‖ s ‖ v, v ∈ {0,1}, RFC 6979 deterministic nonce, low-S, no EIP-191 prefix. Verifiers also accept
// v ∈ {27,28} (docs/protocol.md#registry-contract), as Solidity's ecrecover and most wallets produce it.
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { checksumAddress, type Address } from 'viem'
import { assertBytes } from './bytes.ts'

const N = secp256k1.Point.CURVE().n
const HALF_N = N >> 1n

/** Throws unless `secretKey` is 32 bytes and a valid secp256k1 scalar (0 < k < n). */
export function assertSecretKey(secretKey: unknown, name = 'secretKey'): asserts secretKey is Uint8Array {
  assertBytes(secretKey, 32, name)
  if (!secp256k1.utils.isValidSecretKey(secretKey)) {
    throw new RangeError(`${name} must be a valid secp256k1 secret key (0 < k < n)`)
  }
}

/**
 * Signs a 32-byte digest as is (no hashing, no prefix). Returns r ‖ s ‖ v with v ∈ {0,1}.
 * noble v2's `format: 'recovered'` puts the recovery byte first; it is moved last here.
 */
export function signDigest(digest: Uint8Array, secretKey: Uint8Array): Uint8Array {
  assertBytes(digest, 32, 'digest')
  assertSecretKey(secretKey)
  // lowS is noble's secp256k1 default; spelled out because the wire format depends on it.
  const recovered = secp256k1.sign(digest, secretKey, { prehash: false, lowS: true, format: 'recovered' })
  const signature = new Uint8Array(65)
  signature.set(recovered.subarray(1, 65), 0)
  signature[64] = recovered[0]!
  return signature
}

function readScalar(bytes: Uint8Array): bigint {
  return BigInt(`0x${bytesToHex(bytes)}`)
}

/**
 * Recovers the signer's uncompressed public key point from a 65-byte r ‖ s ‖ v signature.
 * Rejects v ∉ {0,1,27,28}, r or s outside [1, n-1], and high-s (s > n/2): a malleated twin of a valid
 * signature must not verify.
 */
function recoverPoint(digest: Uint8Array, signature: Uint8Array) {
  assertBytes(digest, 32, 'digest')
  assertBytes(signature, 65, 'signature')
  const v = signature[64]!
  if (v !== 0 && v !== 1 && v !== 27 && v !== 28) {
    throw new RangeError(`invalid signature: v must be 0, 1, 27 or 28, got ${v}`)
  }
  const r = readScalar(signature.subarray(0, 32))
  const s = readScalar(signature.subarray(32, 64))
  if (r === 0n || r >= N) throw new RangeError('invalid signature: r must be in [1, n-1]')
  if (s === 0n || s >= N) throw new RangeError('invalid signature: s must be in [1, n-1]')
  if (s > HALF_N) throw new RangeError('invalid signature: high s (s > n/2) is not accepted')
  try {
    return new secp256k1.Signature(r, s, v >= 27 ? v - 27 : v).recoverPublicKey(digest)
  } catch {
    throw new RangeError('invalid signature: no public key recovers from it')
  }
}

/** The signer's checksummed address; throws a RangeError naming the fault when the signature is malformed. */
export function recoverSigner(digest: Uint8Array, signature: Uint8Array): Address {
  return addressOfPublicKey(recoverPoint(digest, signature).toBytes(false))
}

/** The signer's 33-byte compressed public key; throws like {@link recoverSigner}. */
export function recoverPublicKey33(digest: Uint8Array, signature: Uint8Array): Uint8Array {
  return recoverPoint(digest, signature).toBytes(true)
}

/**
 * True when `signature` (65 bytes, v ∈ {0,1,27,28}, low-s) over `digest` was made by `expectedAddress`
 * (compared case-insensitively). Never throws: any malformed argument gives false.
 */
export function verifyDigestSignature(digest: unknown, signature: unknown, expectedAddress: unknown): boolean {
  try {
    if (typeof expectedAddress !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(expectedAddress)) return false
    if (!(digest instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false
    return recoverSigner(digest, signature).toLowerCase() === expectedAddress.toLowerCase()
  } catch {
    return false
  }
}

/** 33-byte compressed public key of a secret key. */
export function publicKey33(secretKey: Uint8Array): Uint8Array {
  assertSecretKey(secretKey)
  return secp256k1.getPublicKey(secretKey, true)
}

/** 64-byte uncompressed public key of a secret key, without the 0x04 prefix (the on-chain form, docs/protocol.md#report-data). */
export function publicKey64(secretKey: Uint8Array): Uint8Array {
  assertSecretKey(secretKey)
  return secp256k1.getPublicKey(secretKey, false).subarray(1)
}

/**
 * Parses a public key given as 33 (compressed), 64 (uncompressed, no prefix) or 65 (0x04 ‖ x ‖ y) bytes and
 * checks it is a point on the curve (not infinity).
 */
function parsePublicKey(publicKey: unknown, name: string) {
  assertBytes(publicKey, [33, 64, 65], name)
  const encoded = publicKey.length === 64 ? prefixed(publicKey) : publicKey
  try {
    return secp256k1.Point.fromBytes(encoded)
  } catch {
    throw new RangeError(`${name} is not a valid secp256k1 public key`)
  }
}

function prefixed(publicKey64: Uint8Array): Uint8Array {
  const out = new Uint8Array(65)
  out[0] = 0x04
  out.set(publicKey64, 1)
  return out
}

/** Any accepted public-key encoding (33, 64 or 65 bytes) to the 33-byte compressed form. */
export function compressPublicKey(publicKey: Uint8Array, name = 'publicKey'): Uint8Array {
  return parsePublicKey(publicKey, name).toBytes(true)
}

/** Any accepted public-key encoding (33, 64 or 65 bytes) to the 64-byte uncompressed form without 0x04. */
export function uncompressPublicKey(publicKey: Uint8Array, name = 'publicKey'): Uint8Array {
  return parsePublicKey(publicKey, name).toBytes(false).subarray(1)
}

/** True when `publicKey` is a valid secp256k1 point in one of the accepted encodings (33, 64, 65 bytes). */
export function isValidPublicKey(publicKey: unknown): boolean {
  try {
    parsePublicKey(publicKey, 'publicKey')
    return true
  } catch {
    return false
  }
}

/** EIP-55 checksummed Ethereum address: keccak256(x ‖ y)[12:] of a public key in any accepted encoding. */
export function addressOfPublicKey(publicKey: Uint8Array): Address {
  const xy = uncompressPublicKey(publicKey)
  return checksumAddress(`0x${bytesToHex(keccak_256(xy).subarray(12))}`)
}

