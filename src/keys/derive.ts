// The dstack-compatible key derivation (docs/protocol.md#keys-and-derivations), byte for byte what the dstack KMS and guest agent do, so
// dstack's verifiers and vectors apply. The KMS half (`issueAppKey`: M → appKey + signature_chain[1]) and the
// guest-agent half (`getKeyResponse`: appKey → key + signature_chain[0]) are split the way dstack splits them, so
// the master-secret holder can cache the first per appId and only run the second per request.
//
// Decisions where the spec is silent (checked against Dstack-TEE/dstack: kms `derive_k256_key`, guest-agent
// `get_key`, ra-tls `kdf::derive_key`):
// - HKDF output that is not a valid secp256k1 scalar (0 or ≥ n): dstack does not reduce or retry, its
//   `SigningKey::from_bytes/from_slice` fails and the request errors. We throw the same way (probability ≈ 2^-128
//   per derivation, so no real key is ever lost to it), rather than silently diverge from dstack's keys.
//   This applies to appKey and to secp256k1 getKey keys (so to sealkey); ed25519 keys take any 32 bytes.
// - algorithm `ed25519`: dstack derives the same 32 HKDF bytes from the same path and uses them as the RFC 8032
//   seed; signature_chain[0] then signs `purpose + ":" + hex(ed25519 public key, 32 bytes)` with the app key
//   (still secp256k1), instead of the compressed secp256k1 key. `k256` is an alias of `secp256k1`, and the empty
//   string / absent means secp256k1; anything else is refused, as dstack does.
// - appIdForPod refuses an empty pod name: it would mean pod identity failed, and every unidentified pod would
//   then share one app key.
import { ed25519 } from '@noble/curves/ed25519.js'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { assertBytes, describeValue, wipe } from './bytes.ts'
import { assertSecretKey, publicKey33, signDigest } from './signature.ts'

/** HKDF salt of every dstack derivation: ASCII "RATLS". */
const RATLS_SALT = utf8ToBytes('RATLS')
const APP_KEY_INFO = utf8ToBytes('app-key')
const APP_CA_INFO = utf8ToBytes('app-ca')
const KMS_ISSUED_PREFIX = utf8ToBytes('dstack-kms-issued:')
const APP_ID_TAG = 'keymanager.app.v1:'

/** The getKey path of `/sealkey` (docs/protocol.md#keys-and-derivations: `sealkey(pod) = getKey(pod, "keymanager/sealkey")`). */
export const SEALKEY_PATH = 'keymanager/sealkey'

export type KeyAlgorithm = 'secp256k1' | 'ed25519'

function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describeValue(value)}`)
}

/** Default appId of a pod: keccak256(utf8("keymanager.app.v1:" + podName))[0:20]. */
export function appIdForPod(podName: string): Uint8Array {
  assertString(podName, 'podName')
  if (podName.length === 0) throw new RangeError('podName must not be empty')
  return keccak_256(utf8ToBytes(APP_ID_TAG + podName)).slice(0, 20)
}

function hkdfRatls(ikm: Uint8Array, info: Uint8Array): Uint8Array {
  return hkdf(sha256, ikm, RATLS_SALT, info, 32)
}

function assertDerivedScalar(key: Uint8Array, what: string): void {
  if (!secp256k1.utils.isValidSecretKey(key)) {
    wipe(key)
    throw new Error(`${what} is not a valid secp256k1 secret key (HKDF output is 0 or >= n); dstack fails here too`)
  }
}

/** appKey = HKDF-SHA256(ikm = M, salt = "RATLS", info = appId ‖ "app-key", L = 32); a secp256k1 secret key. */
export function deriveAppKey(masterSecret: Uint8Array, appId: Uint8Array): Uint8Array {
  assertSecretKey(masterSecret, 'masterSecret')
  assertBytes(appId, 20, 'appId')
  const appKey = hkdfRatls(masterSecret, concatBytes(appId, APP_KEY_INFO))
  assertDerivedScalar(appKey, 'derived app key')
  return appKey
}

/**
 * The app CA key (docs/protocol.md#dstack-api): a P-256 secret key HKDF-SHA256(ikm = M, salt = "RATLS",
 * info = appId ‖ "app-ca", L = 32), the derivation dstack's KMS uses for its per-app CA with M in place of the KMS
 * root CA key. Like the app key it is the same on every node, and no GetKey path reaches it (GetKey starts from the
 * app key). Throws if the bytes are not a valid P-256 scalar (≈ 2^-32 chance, dstack fails the same way).
 */
export function deriveAppCaKey(masterSecret: Uint8Array, appId: Uint8Array): Uint8Array {
  assertSecretKey(masterSecret, 'masterSecret')
  assertBytes(appId, 20, 'appId')
  const key = hkdfRatls(masterSecret, concatBytes(appId, APP_CA_INFO))
  if (!p256.utils.isValidSecretKey(key)) {
    wipe(key)
    throw new Error('derived app CA key is not a valid P-256 secret key; dstack fails here too')
  }
  return key
}

/**
 * A P-256 key derived from `path` under a P-256 secret (dstack ra-tls `derive_p256_key_pair_from_bytes`):
 * HKDF-SHA256(ikm = secret, salt = "RATLS", info = utf8(path), L = 32). Throws if it is not a valid P-256 scalar.
 */
export function deriveP256Key(secret: Uint8Array, path: string): Uint8Array {
  assertBytes(secret, 32, 'secret')
  assertString(path, 'path')
  const key = hkdfRatls(secret, utf8ToBytes(path))
  if (!p256.utils.isValidSecretKey(key)) {
    wipe(key)
    throw new Error('derived key is not a valid P-256 secret key; dstack fails here too')
  }
  return key
}

/**
 * The raw 32 bytes of getKey: HKDF-SHA256(ikm = appKey, salt = "RATLS", info = utf8(path), L = 32).
 * Not checked as a scalar: an ed25519 key may be any 32 bytes; see {@link deriveSecp256k1Key}.
 */
export function deriveKey(appKey: Uint8Array, path: string): Uint8Array {
  assertBytes(appKey, 32, 'appKey')
  assertString(path, 'path')
  return hkdfRatls(appKey, utf8ToBytes(path))
}

/** {@link deriveKey}, required to be a valid secp256k1 secret key (throws otherwise, as dstack does). */
export function deriveSecp256k1Key(appKey: Uint8Array, path: string): Uint8Array {
  const key = deriveKey(appKey, path)
  assertDerivedScalar(key, 'derived key')
  return key
}

/** sealkey(pod) = the secp256k1 getKey key at path "keymanager/sealkey" (uncached; the holder caches it). */
export function deriveSealkey(masterSecret: Uint8Array, appId: Uint8Array): Uint8Array {
  const appKey = deriveAppKey(masterSecret, appId)
  try {
    return deriveSecp256k1Key(appKey, SEALKEY_PATH)
  } finally {
    wipe(appKey)
  }
}

/** `undefined`, `""`, `"k256"` → secp256k1; `"ed25519"` → ed25519; anything else throws (dstack's set). */
export function normalizeKeyAlgorithm(algorithm?: unknown): KeyAlgorithm {
  if (algorithm === undefined || algorithm === '' || algorithm === 'secp256k1' || algorithm === 'k256') {
    return 'secp256k1'
  }
  if (algorithm === 'ed25519') return 'ed25519'
  if (typeof algorithm !== 'string') {
    throw new TypeError(`algorithm must be a string, got ${describeValue(algorithm)}`)
  }
  throw new RangeError(`unsupported key algorithm "${algorithm.slice(0, 32)}": expected secp256k1, k256 or ed25519`)
}

/** Public key of a getKey key, as signed in signature_chain[0]: compressed secp256k1 (33) or ed25519 (32). */
export function derivedPublicKey(key: Uint8Array, algorithm: KeyAlgorithm): Uint8Array {
  assertBytes(key, 32, 'key')
  return algorithm === 'ed25519' ? ed25519.getPublicKey(key) : publicKey33(key)
}

/**
 * The message the app key signs for signature_chain[0]: `purpose + ":" + lowercaseHex(publicKey)`, no 0x.
 * `publicKey` is the 33-byte compressed secp256k1 key, or the 32-byte ed25519 key for algorithm ed25519.
 */
export function appSignatureMessage(purpose: string, publicKey: Uint8Array): string {
  assertString(purpose, 'purpose')
  assertBytes(publicKey, [32, 33], 'publicKey')
  return `${purpose}:${bytesToHex(publicKey)}`
}

/** keccak256(utf8(appSignatureMessage(purpose, publicKey))): the digest signed in signature_chain[0]. */
export function appSignatureDigest(purpose: string, publicKey: Uint8Array): Uint8Array {
  return keccak_256(utf8ToBytes(appSignatureMessage(purpose, publicKey)))
}

/** The message M signs for signature_chain[1]: "dstack-kms-issued:" ‖ appId (20 bytes) ‖ appPublicKey33. */
export function kmsSignatureMessage(appId: Uint8Array, appPublicKey33: Uint8Array): Uint8Array {
  assertBytes(appId, 20, 'appId')
  assertBytes(appPublicKey33, 33, 'appPublicKey33')
  return concatBytes(KMS_ISSUED_PREFIX, appId, appPublicKey33)
}

/** keccak256(kmsSignatureMessage(appId, appPublicKey33)): the digest signed in signature_chain[1]. */
export function kmsSignatureDigest(appId: Uint8Array, appPublicKey33: Uint8Array): Uint8Array {
  return keccak_256(kmsSignatureMessage(appId, appPublicKey33))
}

/** What the KMS hands a dstack app: its app key, the key's compressed public key, and M's signature over both. */
export type IssuedAppKey = {
  appId: Uint8Array
  /** Secret: wipe when done. */
  appKey: Uint8Array
  appPublicKey33: Uint8Array
  /** signature_chain[1]: 65 bytes by M over {@link kmsSignatureDigest}. */
  kmsSignature: Uint8Array
}

/** The KMS half of the chain: derives appKey from M and signs it (dstack kms `derive_k256_key`). */
export function issueAppKey(masterSecret: Uint8Array, appId: Uint8Array): IssuedAppKey {
  const appKey = deriveAppKey(masterSecret, appId)
  const appPublicKey33 = publicKey33(appKey)
  const kmsSignature = signDigest(kmsSignatureDigest(appId, appPublicKey33), masterSecret)
  return { appId: appId.slice(), appKey, appPublicKey33, kmsSignature }
}

export type GetKeyArgs = {
  /** The app key (secret). */
  appKey: Uint8Array
  /** signature_chain[1] as the KMS issued it with the app key. */
  kmsSignature: Uint8Array
  path: string
  purpose: string
  algorithm?: string
}

export type GetKeyResponse = {
  /** Secret: the derived key (32 bytes). */
  key: Uint8Array
  /** [by appKey over the purpose message, by M over the kms message], each 65 bytes r ‖ s ‖ v. */
  signatureChain: [Uint8Array, Uint8Array]
}

/** The guest-agent half: the dstack `GetKey` response for one path and purpose (purpose does not change the key). */
export function getKeyResponse(args: GetKeyArgs): GetKeyResponse {
  const { appKey, kmsSignature, path, purpose } = args
  const algorithm = normalizeKeyAlgorithm(args.algorithm)
  assertBytes(kmsSignature, 65, 'kmsSignature')
  assertString(purpose, 'purpose')
  const key = algorithm === 'ed25519' ? deriveKey(appKey, path) : deriveSecp256k1Key(appKey, path)
  const appSignature = signDigest(appSignatureDigest(purpose, derivedPublicKey(key, algorithm)), appKey)
  return { key, signatureChain: [appSignature, kmsSignature.slice()] }
}
