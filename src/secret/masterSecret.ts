// The master-secret holder, in the model of noble-hashes' eskdf: M lives only in this closure, the API object is
// frozen, `expire()` wipes M and every key cached from it, and the only thing a log can ever show is the
// fingerprint (toJSON, util.inspect and String all print it and nothing else).
//
// Decisions written down here:
// - fingerprint = the first 4 bytes of xPub (the master address), 8 lowercase hex digits. It is public (xPub is
//   on chain) and an operator can match a log line to the on-chain master key by eye; nothing secret goes in.
// - Per-appId caches: the app key (with its compressed public key and M's signature_chain[1], computed on the
//   first getKey) and the sealkey. /sealkey is then a Map lookup and a 32-byte copy. The caches hold at most
//   MAX_CACHED_APPS apps; past that the oldest entry is evicted and wiped (appIds come from pod names, so a
//   node sees few; the cap only bounds memory if something feeds it arbitrary appIds).
// - Callers always receive copies (keys, public keys): wiping or mutating what they got cannot corrupt a cache.
// - After expire(), every method that needs M throws Error('master secret expired'); the public facts (address,
//   public keys, fingerprint) stay readable, so logs and status can still name what expired.
// - exportForSealing passes a copy that is wiped when `fn` returns, or when its promise settles if it returns one.
import { inspect } from 'node:util'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { Address } from 'viem'
import { assertBytes, wipe } from '../keys/bytes.ts'
import {
  appSignatureDigest,
  deriveAppCaKey,
  deriveAppKey,
  deriveSecp256k1Key,
  getKeyResponse,
  kmsSignatureDigest,
  SEALKEY_PATH,
  type GetKeyResponse,
} from '../keys/derive.ts'
import { eciesEncrypt } from '../keys/ecies.ts'
import { addressOfPublicKey, assertSecretKey, publicKey33, publicKey64, signDigest } from '../keys/signature.ts'
import { p256 } from '@noble/curves/nist.js'
import { APP_CA_PURPOSE } from '../keys/appCa.ts'
import { attestationDigest, type AttestationArgs } from '../keys/typedData.ts'

/** Upper bound on apps whose derived keys are cached. */
export const MAX_CACHED_APPS = 4096

export type GetKeyRequest = {
  /** 20-byte appId of the pod. */
  appId: Uint8Array
  path: string
  purpose: string
  /** secp256k1 (default, alias k256) or ed25519, as dstack's GetKey. */
  algorithm?: string
}

/** An app's CA key and its chain to M (docs/protocol.md#dstack-api). */
export type AppCa = {
  /** Secret: the P-256 CA key (32 bytes); wipe when done. */
  key: Uint8Array
  /** Compressed P-256 public key (33 bytes): what signature_chain[0] signs. */
  publicKey33: Uint8Array
  /** [app key over keccak256("keymanager.app-ca.v1:" ‖ hex(publicKey33)), M over the kms message], 65 bytes each. */
  signatureChain: [Uint8Array, Uint8Array]
}

export interface MasterSecret {
  /** xPub: the Ethereum address of M. */
  readonly address: Address
  /** Compressed public key of M (a fresh copy on each read). */
  readonly publicKey33: Uint8Array
  /** Uncompressed public key of M without 0x04, as published on chain (a fresh copy on each read). */
  readonly publicKey64: Uint8Array
  /** Short non-secret id for logs: the first 4 bytes of xPub in hex. */
  readonly fingerprint: string
  readonly expired: boolean
  /** 65-byte r ‖ s ‖ v signature by M over a 32-byte digest (OnboardResponse and the like). */
  signDigest(digest: Uint8Array): Uint8Array
  /** EIP-712 `Attestation(hostname, appData)` signed by M (docs/protocol.md#keys-and-derivations, `/attest`). */
  signAttestation(args: AttestationArgs): Uint8Array
  /** dstack-compatible GetKey: the derived key and its signature chain rooted at M. */
  getKey(request: GetKeyRequest): GetKeyResponse
  /** The app's CA key (dstack GetTlsKey certificates) and its signature chain, cached per appId. */
  appCa(appId: Uint8Array): AppCa
  /** sealkey(appId) = getKey(appId, "keymanager/sealkey").key, cached per appId. */
  sealkey(appId: Uint8Array): Uint8Array
  /** ECIES v1 ciphertext of M to a newcomer's public key (33 or 65 bytes), bound to `aad`. */
  encryptTo(recipientPublicKey: Uint8Array, aad: Uint8Array): Uint8Array
  /** Runs `fn` on a temporary copy of M, wiped after `fn` returns (or its promise settles). Seal providers only. */
  exportForSealing<T>(fn: (secret: Uint8Array) => T): T
  /** Wipes M and every cached key; later calls that need M throw `master secret expired`. */
  expire(): void
  toJSON(): { type: 'MasterSecret'; fingerprint: string }
  toString(): string
}

type AppEntry = {
  appKey: Uint8Array
  /** Computed on the first getKey for this app (sealkey does not need it). */
  kmsSignature?: Uint8Array
  sealkey?: Uint8Array
  appCa?: AppCa
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/**
 * Wraps a 32-byte secret (a valid secp256k1 secret key) in a holder. The bytes are copied: the caller should
 * wipe its own copy.
 */
export function createMasterSecret(secret32: Uint8Array): MasterSecret {
  assertSecretKey(secret32, 'secret')
  let secret: Uint8Array | undefined = secret32.slice()
  const pub33 = publicKey33(secret)
  const pub64 = publicKey64(secret)
  const address = addressOfPublicKey(pub33)
  const fingerprint = address.slice(2, 10).toLowerCase()
  const apps = new Map<string, AppEntry>()

  function live(): Uint8Array {
    if (secret === undefined) throw new Error('master secret expired')
    return secret
  }

  function wipeEntry(entry: AppEntry): void {
    wipe(entry.appKey)
    if (entry.sealkey) wipe(entry.sealkey)
    if (entry.appCa) wipe(entry.appCa.key)
  }

  function kmsSignatureOf(entry: AppEntry, appId: Uint8Array): Uint8Array {
    entry.kmsSignature ??= signDigest(kmsSignatureDigest(appId, publicKey33(entry.appKey)), live())
    return entry.kmsSignature
  }

  function appEntry(appId: Uint8Array): AppEntry {
    const m = live()
    assertBytes(appId, 20, 'appId')
    const id = bytesToHex(appId)
    const cached = apps.get(id)
    if (cached) return cached
    const entry: AppEntry = { appKey: deriveAppKey(m, appId) }
    if (apps.size >= MAX_CACHED_APPS) {
      const [oldestId, oldest] = apps.entries().next().value as [string, AppEntry]
      apps.delete(oldestId)
      wipeEntry(oldest)
    }
    apps.set(id, entry)
    return entry
  }

  const describe = () => `MasterSecret(${fingerprint})`

  const holder: MasterSecret = {
    address,
    get publicKey33() {
      return pub33.slice()
    },
    get publicKey64() {
      return pub64.slice()
    },
    fingerprint,
    get expired() {
      return secret === undefined
    },
    signDigest(digest) {
      return signDigest(digest, live())
    },
    signAttestation(args) {
      const m = live()
      return signDigest(attestationDigest(args), m)
    },
    getKey({ appId, path, purpose, algorithm }) {
      const entry = appEntry(appId)
      return getKeyResponse({ appKey: entry.appKey, kmsSignature: kmsSignatureOf(entry, appId), path, purpose, algorithm })
    },
    appCa(appId) {
      const entry = appEntry(appId)
      if (!entry.appCa) {
        const key = deriveAppCaKey(live(), appId)
        const caPublicKey33 = p256.getPublicKey(key, true)
        const appSignature = signDigest(appSignatureDigest(APP_CA_PURPOSE, caPublicKey33), entry.appKey)
        entry.appCa = { key, publicKey33: caPublicKey33, signatureChain: [appSignature, kmsSignatureOf(entry, appId)] }
      }
      const { key, publicKey33: pub, signatureChain } = entry.appCa
      return { key: key.slice(), publicKey33: pub.slice(), signatureChain: [signatureChain[0].slice(), signatureChain[1].slice()] }
    },
    sealkey(appId) {
      const entry = appEntry(appId)
      entry.sealkey ??= deriveSecp256k1Key(entry.appKey, SEALKEY_PATH)
      return entry.sealkey.slice()
    },
    encryptTo(recipientPublicKey, aad) {
      return eciesEncrypt(recipientPublicKey, live(), aad)
    },
    exportForSealing<T>(fn: (secret: Uint8Array) => T): T {
      if (typeof fn !== 'function') throw new TypeError('exportForSealing expects a function')
      const copy = live().slice()
      let result: T
      try {
        result = fn(copy)
      } catch (error) {
        wipe(copy)
        throw error
      }
      if (isThenable(result)) {
        return Promise.resolve(result).finally(() => wipe(copy)) as T
      }
      wipe(copy)
      return result
    },
    expire() {
      if (secret !== undefined) wipe(secret)
      secret = undefined
      for (const entry of apps.values()) wipeEntry(entry)
      apps.clear()
    },
    toJSON() {
      return { type: 'MasterSecret', fingerprint }
    },
    toString: describe,
  }
  Object.defineProperty(holder, inspect.custom, { value: describe, enumerable: false })
  return Object.freeze(holder)
}

/** A fresh random master secret (noble's randomSecretKey: CSPRNG bytes reduced to a valid scalar). */
export function generateMasterSecret(): MasterSecret {
  const secret = secp256k1.utils.randomSecretKey()
  try {
    return createMasterSecret(secret)
  } finally {
    wipe(secret)
  }
}
