// `dstack` seal provider (docs/protocol.md#node-state): the sealing key comes from the dstack guest agent of the CVM the sidecar
// runs in, `POST /GetKey` on its unix socket with a fixed path. The agent derives that key from the app's KMS key,
// so the same app on the same dstack KMS gets it back after a restart, and nothing outside the CVM can.
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { DSTACK_SOCKET, DstackAgentError, postDstackAgent } from '../tee/dstackAgent.ts'
import { createAesGcmSealer, type SealProvider } from './seal.ts'
import { KeymanagerError } from '../errors.ts'

export { DSTACK_SOCKET }

/** The fixed GetKey path of the sealing key; changing it makes every sealed secret unreadable. */
export const DSTACK_SEAL_PATH = 'keymanager/seal/v1'

/** The platform's sealing key could not be had (the node cannot start without it). */
export class SealProviderUnavailableError extends KeymanagerError {
  override name = 'SealProviderUnavailableError'
  constructor(message: string) {
    super('upstream_failed', message)
  }
}

/** Asks the dstack agent for the sealing key (GetKey with a fixed path) and seals with AES-256-GCM under it. */
export async function dstackSealProvider(options: { socketPath?: string; timeoutMs?: number } = {}): Promise<SealProvider> {
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
  // Domain-separated from every other use of the same agent key.
  const sealingKey = hkdf(sha256, agentKey, utf8ToBytes('keymanager.seal.v1'), utf8ToBytes('dstack'), 32)
  agentKey.fill(0)
  const sealer = createAesGcmSealer(sealingKey)
  sealingKey.fill(0)
  return Object.freeze({ name: 'dstack' as const, persistent: true, insecure: false, ...sealer })
}
