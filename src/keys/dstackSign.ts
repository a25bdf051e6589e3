// dstack `Sign` and `Verify` (docs/protocol.md#dstack-api), as Dstack-TEE/dstack v0.5.8 guest-agent `rpc_service.rs`
// does them:
// - The signing key is GetKey(path "vms", purpose "signing", algorithm), secp256k1 for `secp256k1_prehashed`; the
//   answer is {signature, signature_chain: [signature, GetKey chain[0], GetKey chain[1]], public_key}.
// - `secp256k1`: ECDSA over SHA-256(data) (k256's default digest), RFC 6979, low-S, 64 bytes r ‖ s;
//   `secp256k1_prehashed`: the same over the 32 bytes given, as they are; public key compressed SEC1 (33 bytes).
// - `ed25519`: RFC 8032 over the data, 64 bytes; public key 32 bytes.
// - Verify: a malformed public key or signature is an error (dstack's `from_sec1_bytes`/`from_slice` fail); a
//   well-formed one that does not verify, a high-S secp256k1 signature included (k256 refuses those), is `false`.
// secp256k1 goes through @noble/curves (deterministic, byte-identical to k256); Ed25519 through node:crypto, with
// the point decoded by noble first so that an invalid key is an error as with ed25519-dalek.
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { assertBytes } from './bytes.ts'

export type SignAlgorithm = 'secp256k1' | 'secp256k1_prehashed' | 'ed25519'

/** The GetKey request dstack's Sign derives its key with. */
export const SIGN_KEY_PATH = 'vms'
export const SIGN_KEY_PURPOSE = 'signing'

/** `k256` is an alias of `secp256k1` (dstack `normalize_algorithm`); anything else outside the three is refused. */
export function normalizeSignAlgorithm(algorithm: unknown): SignAlgorithm {
  if (typeof algorithm !== 'string') throw new TypeError('algorithm must be a string')
  if (algorithm === 'k256') return 'secp256k1'
  if (algorithm === 'secp256k1' || algorithm === 'secp256k1_prehashed' || algorithm === 'ed25519') return algorithm
  throw new RangeError(`unsupported algorithm "${algorithm.slice(0, 32)}": expected ed25519, secp256k1 or secp256k1_prehashed`)
}

/** The GetKey algorithm of a Sign algorithm. */
export const signKeyAlgorithm = (algorithm: SignAlgorithm) => (algorithm === 'ed25519' ? 'ed25519' : 'secp256k1')

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

/** Signs `data` with a 32-byte key as dstack's Sign does; returns the signature and the public key. */
export function dstackSign(algorithm: SignAlgorithm, key: Uint8Array, data: Uint8Array): { signature: Uint8Array; publicKey: Uint8Array } {
  assertBytes(key, 32, 'key')
  assertBytes(data, undefined, 'data')
  if (algorithm === 'ed25519') {
    const publicKey = ed25519.getPublicKey(key)
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64(key), x: b64(publicKey) }, format: 'jwk' })
    return { signature: new Uint8Array(nodeSign(null, data, privateKey)), publicKey }
  }
  if (algorithm === 'secp256k1_prehashed' && data.length !== 32) {
    throw new RangeError(`Pre-hashed signing requires a 32-byte digest, but received ${data.length} bytes`)
  }
  const signature = secp256k1.sign(data, key, { prehash: algorithm === 'secp256k1', lowS: true, format: 'compact' })
  return { signature, publicKey: secp256k1.getPublicKey(key, true) }
}

/** dstack's Verify. Throws RangeError for a malformed public key or signature; false when it does not verify. */
export function dstackVerify(algorithm: SignAlgorithm, data: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  assertBytes(data, undefined, 'data')
  assertBytes(signature, undefined, 'signature')
  assertBytes(publicKey, undefined, 'public_key')
  if (algorithm === 'ed25519') {
    if (publicKey.length !== 32) throw new RangeError(`invalid public key: ed25519 keys are 32 bytes, got ${publicKey.length}`)
    try {
      ed25519.Point.fromBytes(publicKey)
    } catch {
      throw new RangeError('invalid public key: not an ed25519 point')
    }
    if (signature.length !== 64) throw new RangeError(`invalid signature: ed25519 signatures are 64 bytes, got ${signature.length}`)
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicKey) }, format: 'jwk' })
    return nodeVerify(null, data, key, signature)
  }
  if (publicKey.length !== 33 && publicKey.length !== 65) throw new RangeError(`invalid public key: SEC1 keys are 33 or 65 bytes, got ${publicKey.length}`)
  try {
    secp256k1.Point.fromBytes(publicKey)
  } catch {
    throw new RangeError('invalid public key: not a secp256k1 point')
  }
  if (signature.length !== 64) throw new RangeError(`invalid signature: expected 64 bytes r ‖ s, got ${signature.length}`)
  try {
    secp256k1.Signature.fromBytes(signature, 'compact')
  } catch {
    throw new RangeError('invalid signature: r and s must be in [1, n-1]')
  }
  if (algorithm === 'secp256k1_prehashed' && data.length !== 32) return false
  return secp256k1.verify(signature, data, publicKey, { prehash: algorithm === 'secp256k1', lowS: true, format: 'compact' })
}
