// ECIES v1 (docs/protocol.md#wire-formats): how M travels to a newcomer.
//   e   = fresh secp256k1 key; E = compressed(e·G) (33 bytes)
//   z   = x-coordinate of e·R (R = recipient public key)
//   k   = HKDF-SHA256(ikm = z, salt = E, info = "keymanager.ecies.v1" ‖ compressed(R) ‖ aad, L = 32)
//   out = E ‖ nonce12 ‖ AES-256-GCM_k(nonce, plaintext, aad) (ciphertext ‖ tag16)
// The recipient key enters the info in compressed form whatever encoding the caller passed, so 33- and 65-byte
// encodings of one key give the same k. Decryption never trusts input bytes: every failure is an
// EciesDecryptionError with a reason, never a crash.
import { createECDH } from 'node:crypto'
import { gcm } from '@noble/ciphers/aes.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { concatBytes, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { encodeAbiParameters, type Address } from 'viem'
import { assertAddress, assertBytes, parseUint, wipe } from './bytes.ts'
import { assertSecretKey, compressPublicKey } from './signature.ts'
import { KeymanagerError } from '../errors.ts'

const INFO_TAG = utf8ToBytes('keymanager.ecies.v1')
const EPHEMERAL_LENGTH = 33
const NONCE_LENGTH = 12
const TAG_LENGTH = 16
/** Bytes an ECIES v1 ciphertext adds to its plaintext. */
export const ECIES_OVERHEAD = EPHEMERAL_LENGTH + NONCE_LENGTH + TAG_LENGTH

export type EciesFailure = 'too_short' | 'bad_ephemeral_key' | 'auth_failed'

export class EciesDecryptionError extends KeymanagerError {
  override name = 'EciesDecryptionError'
  constructor(
    readonly reason: EciesFailure,
    message: string,
  ) {
    super('unprocessable', message)
  }
}

function deriveKey(sharedX: Uint8Array, ephemeral33: Uint8Array, recipient33: Uint8Array, aad: Uint8Array) {
  return hkdf(sha256, sharedX, ephemeral33, concatBytes(INFO_TAG, recipient33, aad), 32)
}

/**
 * x-coordinate of secretKey·publicKey, and secretKey's compressed public key. OpenSSL's ECDH (node:crypto), not
 * noble's getSharedSecret: a helper makes one per newcomer, and OpenSSL's constant-time ladder finds the shared point
 * in 0.8 ms against noble's 2.2 ms here (docs/performance.md). It refuses a public key that is not a point on the
 * curve, as noble does. `x` is the buffer OpenSSL filled, not a copy, so the caller's wipe clears the only copy.
 */
function ecdh(secretKey: Uint8Array, publicKey: Uint8Array): { x: Uint8Array; own33: Uint8Array } {
  const exchange = createECDH('secp256k1')
  exchange.setPrivateKey(secretKey)
  return { x: exchange.computeSecret(publicKey), own33: exchange.getPublicKey(null, 'compressed') }
}

export type EciesTestOptions = {
  /** Known-answer tests only: a fixed ephemeral key instead of a fresh random one. */
  ephemeralSecretKey?: Uint8Array
  /** Known-answer tests only: a fixed nonce instead of a fresh random one. */
  nonce?: Uint8Array
}

/**
 * Encrypts `plaintext` to a secp256k1 public key (33 or 65 bytes), binding `aad`.
 * `opts` exists for known-answer vectors: reusing an ephemeral key or nonce breaks confidentiality.
 */
export function eciesEncrypt(
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  opts?: EciesTestOptions,
): Uint8Array {
  assertBytes(recipientPublicKey, [33, 65], 'recipientPublicKey')
  const recipient33 = compressPublicKey(recipientPublicKey, 'recipientPublicKey')
  assertBytes(plaintext, undefined, 'plaintext')
  assertBytes(aad, undefined, 'aad')
  let ephemeralSecret: Uint8Array
  if (opts?.ephemeralSecretKey !== undefined) {
    assertSecretKey(opts.ephemeralSecretKey, 'ephemeralSecretKey')
    ephemeralSecret = opts.ephemeralSecretKey.slice()
  } else ephemeralSecret = secp256k1.utils.randomSecretKey()
  let nonce: Uint8Array
  if (opts?.nonce !== undefined) {
    assertBytes(opts.nonce, NONCE_LENGTH, 'nonce')
    nonce = opts.nonce
  } else nonce = randomBytes(NONCE_LENGTH)

  const { x, own33: ephemeral33 } = ecdh(ephemeralSecret, recipient33)
  const key = deriveKey(x, ephemeral33, recipient33, aad)
  try {
    const sealed = gcm(key, nonce, aad).encrypt(plaintext)
    const out = new Uint8Array(EPHEMERAL_LENGTH + NONCE_LENGTH + sealed.length)
    out.set(ephemeral33, 0)
    out.set(nonce, EPHEMERAL_LENGTH)
    out.set(sealed, EPHEMERAL_LENGTH + NONCE_LENGTH)
    return out
  } finally {
    wipe(ephemeralSecret, x, key)
  }
}

/**
 * Decrypts an ECIES v1 ciphertext with the recipient's secret key and the same `aad`.
 * Throws EciesDecryptionError (reason too_short, bad_ephemeral_key or auth_failed) on any bad input bytes;
 * TypeError/RangeError only for a wrong-typed argument or an invalid secret key (caller bugs).
 */
export function eciesDecrypt(recipientSecretKey: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertSecretKey(recipientSecretKey, 'recipientSecretKey')
  assertBytes(ciphertext, undefined, 'ciphertext')
  assertBytes(aad, undefined, 'aad')
  if (ciphertext.length < ECIES_OVERHEAD) {
    throw new EciesDecryptionError(
      'too_short',
      `ECIES ciphertext too short: need at least ${ECIES_OVERHEAD} bytes, got ${ciphertext.length}`,
    )
  }
  const ephemeral33 = ciphertext.subarray(0, EPHEMERAL_LENGTH)
  const nonce = ciphertext.subarray(EPHEMERAL_LENGTH, EPHEMERAL_LENGTH + NONCE_LENGTH)
  const sealed = ciphertext.subarray(EPHEMERAL_LENGTH + NONCE_LENGTH)
  let x: Uint8Array
  let recipient33: Uint8Array
  try {
    if (ephemeral33[0] !== 0x02 && ephemeral33[0] !== 0x03) throw new Error('not compressed')
    ;({ x, own33: recipient33 } = ecdh(recipientSecretKey, ephemeral33))
  } catch {
    throw new EciesDecryptionError(
      'bad_ephemeral_key',
      'ECIES ephemeral public key is not a valid compressed secp256k1 point',
    )
  }
  const key = deriveKey(x, ephemeral33, recipient33, aad)
  try {
    return gcm(key, nonce, aad).decrypt(sealed)
  } catch {
    throw new EciesDecryptionError(
      'auth_failed',
      'ECIES authentication failed: wrong key, wrong aad or tampered ciphertext',
    )
  } finally {
    wipe(x, key)
  }
}

export type OnboardAadArgs = {
  chainId: number | bigint
  registry: Address
  requestId: number | bigint
  generation: number | bigint
}

/** The aad of an onboarding ciphertext: abi.encode(uint256 chainId, address registry, uint256 requestId, uint64 generation). */
export function onboardAad(args: OnboardAadArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const requestId = parseUint(args.requestId, { name: 'requestId', bits: 256 })
  const generation = parseUint(args.generation, { name: 'generation', bits: 64 })
  const encoded = encodeAbiParameters(
    [{ type: 'uint256' }, { type: 'address' }, { type: 'uint256' }, { type: 'uint64' }],
    [chainId, args.registry, requestId, generation],
  )
  return hexToBytes(encoded.slice(2))
}

// Generations (docs/protocol.md#generations). Each aad starts with its own tag, so a ciphertext made for one
// purpose never decrypts under another's aad, and none has the shape of the onboarding aad above.

export type RotationAadArgs = {
  chainId: number | bigint
  registry: Address
  /** The recipient member (its request id). */
  memberId: number | bigint
  /** The proposed generation. */
  generation: number | bigint
  /** The proposal id (`proposalCount() + 1` when proposed). */
  proposal: number | bigint
}

/**
 * The aad of a rotate-envelope ciphertext (the new secret to one member's node key):
 * abi.encode(string "keymanager.rotation.v1", uint256 chainId, address registry, uint256 memberId, uint64 generation, uint64 proposal).
 */
export function rotationAad(args: RotationAadArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'uint64' }],
    [
      'keymanager.rotation.v1',
      chainId,
      args.registry,
      parseUint(args.memberId, { name: 'memberId', bits: 256, min: 1n }),
      parseUint(args.generation, { name: 'generation', bits: 64, min: 2n }),
      parseUint(args.proposal, { name: 'proposal', bits: 64, min: 1n }),
    ],
  )
  return hexToBytes(encoded.slice(2))
}

export type EscrowShareAadArgs = {
  chainId: number | bigint
  registry: Address
  generation: number | bigint
  guardianSet: number | bigint
  /** The guardian's 1-based share index in the set. */
  index: number
}

/**
 * The aad of an escrowed share (to one guardian's key):
 * abi.encode(string "keymanager.escrow-share.v1", uint256 chainId, address registry, uint64 generation, uint64 guardianSet, uint8 index).
 */
export function escrowShareAad(args: EscrowShareAadArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'uint8' }],
    [
      'keymanager.escrow-share.v1',
      chainId,
      args.registry,
      parseUint(args.generation, { name: 'generation', bits: 64, min: 1n }),
      parseUint(args.guardianSet, { name: 'guardianSet', bits: 64, min: 1n }),
      Number(parseUint(args.index, { name: 'index', bits: 8, min: 1n })),
    ],
  )
  return hexToBytes(encoded.slice(2))
}

export type ReleaseShareAadArgs = {
  chainId: number | bigint
  registry: Address
  /** The recovery request (the enclave's key is its key). */
  requestId: number | bigint
  generation: number | bigint
  /** The releasing guardian's 1-based share index. */
  index: number
}

/**
 * The aad of a released share (a guardian's share re-encrypted to the recovering enclave's request key):
 * abi.encode(string "keymanager.release-share.v1", uint256 chainId, address registry, uint256 requestId, uint64 generation, uint8 index).
 */
export function releaseShareAad(args: ReleaseShareAadArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'uint8' }],
    [
      'keymanager.release-share.v1',
      chainId,
      args.registry,
      parseUint(args.requestId, { name: 'requestId', bits: 256, min: 1n }),
      parseUint(args.generation, { name: 'generation', bits: 64, min: 1n }),
      Number(parseUint(args.index, { name: 'index', bits: 8, min: 1n })),
    ],
  )
  return hexToBytes(encoded.slice(2))
}
