// `dstack` seal provider (DESIGN.md §9): the sealing key comes from the dstack guest agent of the CVM the sidecar
// runs in, `POST /GetKey` on its unix socket with a fixed path. The agent derives that key from the app's KMS key,
// so the same app on the same dstack KMS gets it back after a restart, and nothing outside the CVM can.
import { request } from 'node:http'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { createAesGcmSealer, type SealProvider } from './seal.ts'

export const DSTACK_SOCKET = '/var/run/dstack.sock'
/** The fixed GetKey path of the sealing key; changing it makes every sealed secret unreadable. */
export const DSTACK_SEAL_PATH = 'keymanager/seal/v1'

export class SealProviderUnavailableError extends Error {
  override name = 'SealProviderUnavailableError'
}

function postJson(socketPath: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            reject(new SealProviderUnavailableError(`seal provider dstack: ${socketPath} answered ${path} with something that is not JSON`))
          }
        })
      },
    )
    req.on('timeout', () => req.destroy(new SealProviderUnavailableError(`seal provider dstack: ${socketPath} did not answer within ${timeoutMs} ms`)))
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof SealProviderUnavailableError) return reject(error)
      const why = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? 'no dstack guest agent listens there (not a dstack CVM, or the socket is not mounted)' : error.message
      reject(new SealProviderUnavailableError(`seal provider dstack: ${socketPath}: ${why}`))
    })
    req.end(payload)
  })
}

/** Asks the dstack agent for the sealing key (GetKey with a fixed path) and seals with AES-256-GCM under it. */
export async function dstackSealProvider(options: { socketPath?: string; timeoutMs?: number } = {}): Promise<SealProvider> {
  const socketPath = options.socketPath ?? DSTACK_SOCKET
  const answer = (await postJson(socketPath, '/GetKey', { path: DSTACK_SEAL_PATH, purpose: 'seal' }, options.timeoutMs ?? 10_000)) as {
    key?: unknown
    error?: unknown
  }
  if (typeof answer.error === 'string') throw new SealProviderUnavailableError(`seal provider dstack: GetKey failed: ${answer.error}`)
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
