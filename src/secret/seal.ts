import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gcm } from '@noble/ciphers/aes.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { KeymanagerError } from '../errors.ts'

/**
 * Seals secrets at rest (docs/protocol.md#node-state). `label` is bound as AES-GCM associated data, so a sealed master secret
 * cannot be swapped in where an ephemeral key is expected.
 */
export interface SealProvider {
  readonly name: 'none' | 'dev-file' | 'dstack' | 'gramine'
  /** false: nothing sealed survives a restart (the node re-onboards itself). */
  readonly persistent: boolean
  /** True when this provider gives no protection a production node can rely on. */
  readonly insecure: boolean
  seal(plaintext: Uint8Array, label: string): Uint8Array
  unseal(sealed: Uint8Array, label: string): Uint8Array
}

/** Sealed data that does not open under this provider's key and label (tampered, or sealed elsewhere). */
export class UnsealError extends KeymanagerError {
  override name = 'UnsealError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

const NONCE_LENGTH = 12
const TAG_LENGTH = 16

/** AES-256-GCM under a 32-byte sealing key: `nonce12 ‖ ciphertext ‖ tag16`. */
export function createAesGcmSealer(sealingKey: Uint8Array) {
  if (sealingKey.length !== 32) throw new RangeError('sealingKey: expected 32 bytes')
  const key = Uint8Array.from(sealingKey)
  return {
    seal(plaintext: Uint8Array, label: string): Uint8Array {
      const nonce = new Uint8Array(randomBytes(NONCE_LENGTH))
      const sealed = gcm(key, nonce, utf8ToBytes(label)).encrypt(plaintext)
      const out = new Uint8Array(NONCE_LENGTH + sealed.length)
      out.set(nonce)
      out.set(sealed, NONCE_LENGTH)
      return out
    },
    unseal(sealed: Uint8Array, label: string): Uint8Array {
      if (sealed.length < NONCE_LENGTH + TAG_LENGTH) throw new UnsealError('sealed data too short')
      try {
        return gcm(key, sealed.subarray(0, NONCE_LENGTH), utf8ToBytes(label)).decrypt(sealed.subarray(NONCE_LENGTH))
      } catch {
        throw new UnsealError(`cannot unseal ${label}: wrong sealing key or tampered data`)
      }
    },
  }
}

/**
 * `dev-file`: the sealing key is a random file in the data dir. It protects nothing against whoever can read
 * the data dir, which is why it is for devnets only and says so (`insecure`).
 */
export function devFileSealProvider(dataDir: string): SealProvider {
  const path = join(dataDir, 'dev-seal.key')
  if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' })
  const key = new Uint8Array(readFileSync(path))
  if (key.length !== 32) throw new Error(`${path}: expected a 32-byte sealing key, found ${key.length} bytes`)
  const sealer = createAesGcmSealer(key)
  key.fill(0)
  return Object.freeze({ name: 'dev-file' as const, persistent: true, insecure: true, ...sealer })
}

/** `none`: secrets live in memory only; after a restart the node must onboard again. */
export function noneSealProvider(): SealProvider {
  return Object.freeze({
    name: 'none' as const,
    persistent: false,
    insecure: false,
    seal(): Uint8Array {
      throw new Error('seal provider none keeps nothing at rest')
    },
    unseal(): Uint8Array {
      throw new UnsealError('seal provider none keeps nothing at rest')
    },
  })
}
