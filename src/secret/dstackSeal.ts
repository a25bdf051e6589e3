// `dstack` seal provider (docs/protocol.md#node-state): the sealing key comes from the dstack guest agent of the CVM the sidecar
// runs in, `POST /GetKey` on its unix socket with a fixed path, mixed with a secret only the sidecar holds. The agent
// derives its key from the app's KMS key, so the same app on the same dstack KMS gets it back after a restart, and
// nothing outside the CVM can.
//
// The agent gives that key to every container of the app that can reach its socket, so the agent key alone would let
// such a container unseal the sidecar's data. The sealing key therefore also mixes in 32 random bytes the sidecar makes
// on its first start and keeps in its data dir (`dstack-seal.secret`, mode 0600): a container needs both the socket
// and the sidecar's data volume (compose-check refuses either for another service), and the host, who may copy the
// volume, cannot ask the agent (on dstack the data disk is also encrypted under a KMS key). Losing the file loses what
// was sealed: the node then onboards again from its peers, as with `seal: none`.
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { DSTACK_SOCKET, DstackAgentError, postDstackAgent } from '../tee/dstackAgent.ts'
import { createAesGcmSealer, type SealProvider } from './seal.ts'
import { KeymanagerError } from '../errors.ts'

export { DSTACK_SOCKET }

/** The fixed GetKey path of the sealing key; changing it makes every sealed secret unreadable. */
export const DSTACK_SEAL_PATH = 'keymanager/seal/v1'

/** The sidecar-only half of the sealing key, in the data dir. */
export const DSTACK_SEAL_SECRET_FILE = 'dstack-seal.secret'

/** The platform's sealing key could not be had (the node cannot start without it). */
export class SealProviderUnavailableError extends KeymanagerError {
  override name = 'SealProviderUnavailableError'
  constructor(message: string) {
    super('upstream_failed', message)
  }
}

/** The sidecar's own 32-byte secret in `dataDir`, made on first use (never replaced: a changed one unseals nothing). */
export function sidecarSealSecret(dataDir: string): Uint8Array {
  const file = join(dataDir, DSTACK_SEAL_SECRET_FILE)
  try {
    writeFileSync(file, randomBytes(32), { mode: 0o600, flag: 'wx' })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new SealProviderUnavailableError(`seal provider dstack: cannot create ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let secret: Uint8Array
  try {
    secret = new Uint8Array(readFileSync(file))
  } catch (error) {
    throw new SealProviderUnavailableError(`seal provider dstack: ${file} unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (secret.length !== 32) throw new SealProviderUnavailableError(`seal provider dstack: ${file} holds ${secret.length} bytes, expected 32`)
  return secret
}

/**
 * Asks the dstack agent for its key (GetKey with a fixed path), mixes in the sidecar's secret from `dataDir`, and
 * seals with AES-256-GCM under the result.
 */
export async function dstackSealProvider(options: { socketPath?: string; timeoutMs?: number; dataDir: string }): Promise<SealProvider> {
  const socketPath = options.socketPath ?? DSTACK_SOCKET
  let answer: Record<string, unknown>
  try {
    answer = await postDstackAgent(socketPath, '/GetKey', { path: DSTACK_SEAL_PATH, purpose: 'seal' }, options.timeoutMs ?? 10_000)
  } catch (error) {
    if (error instanceof DstackAgentError) throw new SealProviderUnavailableError(`seal provider dstack: ${error.message}`)
    throw error
  }
  if (typeof answer.key !== 'string' || !/^(0x)?[0-9a-fA-F]{64}$/.test(answer.key))
    throw new SealProviderUnavailableError('seal provider dstack: GetKey answered without a 32-byte hex key')
  const agentKey = Uint8Array.from(Buffer.from(answer.key.replace(/^0x/, ''), 'hex'))
  const secret = sidecarSealSecret(options.dataDir)
  const ikm = new Uint8Array(64)
  ikm.set(agentKey)
  ikm.set(secret, 32)
  // Domain-separated from every other use of the same agent key; v2: the sidecar's secret is mixed in.
  const sealingKey = hkdf(sha256, ikm, utf8ToBytes('keymanager.seal.v2'), utf8ToBytes('dstack'), 32)
  agentKey.fill(0)
  secret.fill(0)
  ikm.fill(0)
  const sealer = createAesGcmSealer(sealingKey)
  sealingKey.fill(0)
  return Object.freeze({ name: 'dstack' as const, persistent: true, insecure: false, ...sealer })
}
