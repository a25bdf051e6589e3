// Off-chain verification of a dstack GetKey signature chain (docs/protocol.md#keys-and-derivations), step by step, the way
// `KeyManager.verifySignatureChain` checks it on chain (docs/protocol.md#registry-contract) plus an optional message signed by the key:
//   1. app-signature: signature_chain[0] over keccak256(purpose ":" hex(derived public key)) recovers to an app key;
//   2. kms-signature: signature_chain[1] over keccak256("dstack-kms-issued:" ‖ appId ‖ appPubkey33) recovers to the
//      master address (xPub);
//   3. message-signature (when a message is given): the derived key signed it. secp256k1: 65 bytes r ‖ s ‖ v over
//      keccak256(message), no EIP-191 prefix (the project's one signature form); ed25519: 64 bytes over the message.
// Step 1 alone proves nothing (any signature recovers to some key): the app key it yields is authenticated by step 2.
// Malformed arguments (types, lengths, an invalid public key) throw TypeError/RangeError; a bad signature never
// throws, it gives a failed step whose detail says why.
import { ed25519 } from '@noble/curves/ed25519.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import type { Address } from 'viem'
import { assertAddress, assertBytes, constantTimeEqual, describeValue, toHex0x } from './bytes.ts'
import { appSignatureDigest, appSignatureMessage, derivedPublicKey, kmsSignatureDigest, normalizeKeyAlgorithm, type KeyAlgorithm } from './derive.ts'
import { addressOfPublicKey, compressPublicKey, recoverPublicKey33, recoverSigner } from './signature.ts'

export type ChainStepName = 'app-signature' | 'kms-signature' | 'message-signature'

export type ChainStep = { step: ChainStepName; ok: boolean; detail: string }

export type VerifyGetKeyChainArgs = {
  /** The app's 20-byte id, as the verifier expects it (not as the chain claims it). */
  appId: Uint8Array
  /** The derived key (secret; only its public key is used). Give this or `publicKey`. */
  key?: Uint8Array
  /** secp256k1: 33, 64 or 65 bytes; ed25519: 32 bytes. */
  publicKey?: Uint8Array
  /** [app-key signature, master signature], 65 bytes each. */
  signatureChain: readonly Uint8Array[]
  purpose: string
  /** secp256k1 (default, alias k256) or ed25519. */
  algorithm?: string
  /** xPub: the address the chain must be rooted at. */
  masterAddress: string
  /** A message the derived key signed; with `messageSignature`. */
  message?: Uint8Array
  messageSignature?: Uint8Array
}

export type GetKeyChainVerification = {
  /** True when every step holds. */
  ok: boolean
  steps: ChainStep[]
  algorithm: KeyAlgorithm
  /** The public key the chain signs: compressed secp256k1 (33 bytes) or ed25519 (32 bytes). */
  derivedPublicKey: Uint8Array
  /** The app key signature_chain[0] recovers to (what verifySignatureChain takes as appPubkey33), if any. */
  appPublicKey33?: Uint8Array
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function resolvePublicKey(args: VerifyGetKeyChainArgs, algorithm: KeyAlgorithm): Uint8Array {
  const { key, publicKey } = args
  if (key === undefined && publicKey === undefined) throw new TypeError('give the derived key or its publicKey')
  let fromKey: Uint8Array | undefined
  if (key !== undefined) {
    assertBytes(key, 32, 'key')
    fromKey = derivedPublicKey(key, algorithm)
  }
  let given: Uint8Array | undefined
  if (publicKey !== undefined) {
    if (algorithm === 'ed25519') {
      assertBytes(publicKey, 32, 'publicKey')
      given = publicKey.slice()
    } else {
      given = compressPublicKey(publicKey, 'publicKey')
    }
  }
  if (fromKey && given && !constantTimeEqual(fromKey, given)) throw new RangeError('publicKey is not the public key of key')
  return (fromKey ?? given)!
}

/** Verifies a GetKey signature chain (and optionally a message signed by the derived key), step by step. */
export function verifyGetKeyChain(args: VerifyGetKeyChainArgs): GetKeyChainVerification {
  if (typeof args !== 'object' || args === null) throw new TypeError(`arguments must be an object, got ${describeValue(args)}`)
  const { appId, signatureChain, purpose, masterAddress, message, messageSignature } = args
  assertBytes(appId, 20, 'appId')
  if (typeof purpose !== 'string') throw new TypeError(`purpose must be a string, got ${describeValue(purpose)}`)
  assertAddress(masterAddress, 'masterAddress')
  if (!Array.isArray(signatureChain)) throw new TypeError(`signatureChain must be an array, got ${describeValue(signatureChain)}`)
  if (signatureChain.length !== 2) throw new RangeError(`signatureChain must hold 2 signatures, got ${signatureChain.length}`)
  const [appSignature, kmsSignature] = signatureChain as [Uint8Array, Uint8Array]
  assertBytes(appSignature, 65, 'signatureChain[0]')
  assertBytes(kmsSignature, 65, 'signatureChain[1]')
  const algorithm = normalizeKeyAlgorithm(args.algorithm)
  const publicKey = resolvePublicKey(args, algorithm)
  if ((message === undefined) !== (messageSignature === undefined)) {
    throw new TypeError('message and messageSignature go together')
  }
  if (message !== undefined) {
    assertBytes(message, undefined, 'message')
    assertBytes(messageSignature, algorithm === 'ed25519' ? 64 : 65, 'messageSignature')
  }

  const steps: ChainStep[] = []
  const signed = appSignatureMessage(purpose, publicKey)
  let appPublicKey33: Uint8Array | undefined
  try {
    appPublicKey33 = recoverPublicKey33(appSignatureDigest(purpose, publicKey), appSignature)
    steps.push({
      step: 'app-signature',
      ok: true,
      detail: `app key ${toHex0x(appPublicKey33)} signed ${JSON.stringify(signed)}`,
    })
  } catch (error) {
    steps.push({ step: 'app-signature', ok: false, detail: `signature_chain[0] recovers no app key: ${reason(error)}` })
  }

  if (appPublicKey33 === undefined) {
    steps.push({ step: 'kms-signature', ok: false, detail: 'not checked: there is no app key to check it for' })
  } else {
    try {
      const signer = recoverSigner(kmsSignatureDigest(appId, appPublicKey33), kmsSignature)
      const ok = signer.toLowerCase() === masterAddress.toLowerCase()
      steps.push({
        step: 'kms-signature',
        ok,
        detail: ok
          ? `master key ${signer} issued the app key to app ${toHex0x(appId)}`
          : `signed by ${signer}, not by the master key ${masterAddress}, for app ${toHex0x(appId)} (or issued to another app)`,
      })
    } catch (error) {
      steps.push({ step: 'kms-signature', ok: false, detail: `signature_chain[1] is not a valid signature: ${reason(error)}` })
    }
  }

  if (message !== undefined && messageSignature !== undefined) steps.push(messageStep(algorithm, publicKey, message, messageSignature))

  const result: GetKeyChainVerification = {
    ok: steps.every((s) => s.ok),
    steps,
    algorithm,
    derivedPublicKey: publicKey,
  }
  if (appPublicKey33) result.appPublicKey33 = appPublicKey33
  return result
}

function messageStep(algorithm: KeyAlgorithm, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): ChainStep {
  if (algorithm === 'ed25519') {
    let ok = false
    try {
      ok = ed25519.verify(signature, message, publicKey)
    } catch {
      ok = false
    }
    return {
      step: 'message-signature',
      ok,
      detail: ok ? `the derived ed25519 key signed the message` : `the ed25519 signature does not verify under the derived key`,
    }
  }
  const expected: Address = addressOfPublicKey(publicKey)
  try {
    const signer = recoverSigner(keccak_256(message), signature)
    const ok = signer === expected
    return {
      step: 'message-signature',
      ok,
      detail: ok ? `the derived key ${expected} signed keccak256(message)` : `keccak256(message) signed by ${signer}, not by the derived key ${expected}`,
    }
  } catch (error) {
    return { step: 'message-signature', ok: false, detail: `not a valid signature: ${reason(error)}` }
  }
}
