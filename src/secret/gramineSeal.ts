// `gramine` seal provider (docs/protocol.md#node-state): the SGX sealing key bound to this enclave's MRENCLAVE, which Gramine
// exposes as the file `/dev/attestation/keys/_sgx_mrenclave` (16 raw bytes). Only the same enclave build on the
// same CPU derives it again.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { SealProviderUnavailableError } from './dstackSeal.ts'
import { createAesGcmSealer, type SealProvider } from './seal.ts'

export const GRAMINE_ATTESTATION_DIR = '/dev/attestation'

export function gramineSealProvider(options: { attestationDir?: string } = {}): SealProvider {
  const file = join(options.attestationDir ?? GRAMINE_ATTESTATION_DIR, 'keys', '_sgx_mrenclave')
  let raw: Uint8Array
  try {
    raw = new Uint8Array(readFileSync(file))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'not found (not running inside a Gramine SGX enclave?)' : `unreadable (${code ?? 'error'})`
    throw new SealProviderUnavailableError(`seal provider gramine: ${file} ${why}`)
  }
  if (raw.length !== 16) throw new SealProviderUnavailableError(`seal provider gramine: ${file} holds ${raw.length} bytes, expected a 16-byte SGX key`)
  const sealingKey = hkdf(sha256, raw, utf8ToBytes('keymanager.seal.v1'), utf8ToBytes('gramine/_sgx_mrenclave'), 32)
  raw.fill(0)
  const sealer = createAesGcmSealer(sealingKey)
  sealingKey.fill(0)
  return Object.freeze({ name: 'gramine' as const, persistent: true, insecure: false, ...sealer })
}
