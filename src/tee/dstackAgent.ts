// A client of the dstack guest agent on its unix socket (`/var/run/dstack.sock`): JSON POSTs, as the agent speaks.
// Used by the `dstack` seal provider (GetKey) and the `dstack` quote provider (GetQuote).
import { request } from 'node:http'
import { KeymanagerError } from '../errors.ts'

export const DSTACK_SOCKET = '/var/run/dstack.sock'
/** Largest answer read from the agent: a quote with its event log is a few tens of KiB. */
const MAX_ANSWER_BYTES = 1024 * 1024

/** The dstack guest agent did not answer, or answered with an error or something unreadable. */
export class DstackAgentError extends KeymanagerError {
  override name = 'DstackAgentError'
  constructor(message: string) {
    super('upstream_failed', message)
  }
}

/**
 * POSTs `body` to the agent and returns its parsed JSON; an `{error}` answer is thrown as a DstackAgentError. Methods
 * that return nothing (`EmitEvent`, protobuf Empty) may answer with an empty body or `null`: those read as `{}`.
 */
export function postDstackAgent(socketPath: string, path: string, body: unknown, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      // agent: false: one connection per call, so a kept-alive socket of an agent that restarted is never reused (EPIPE).
      { socketPath, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_ANSWER_BYTES) req.destroy(new DstackAgentError(`${socketPath} answered ${path} with more than ${MAX_ANSWER_BYTES} bytes`))
          else chunks.push(chunk)
        })
        res.on('end', () => {
          let answer: unknown
          try {
            const text = Buffer.concat(chunks).toString('utf8')
            answer = text.trim() === '' || text.trim() === 'null' ? {} : JSON.parse(text)
          } catch {
            return reject(new DstackAgentError(`${socketPath} answered ${path} with something that is not JSON`))
          }
          if (typeof answer !== 'object' || answer === null || Array.isArray(answer))
            return reject(new DstackAgentError(`${socketPath} answered ${path} with something that is not a JSON object`))
          const record = answer as Record<string, unknown>
          if (typeof record.error === 'string') return reject(new DstackAgentError(`${path} failed: ${record.error}`))
          resolve(record)
        })
      },
    )
    req.on('timeout', () => req.destroy(new DstackAgentError(`${socketPath} did not answer within ${timeoutMs} ms`)))
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof DstackAgentError) return reject(error)
      const why =
        error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
          ? 'no dstack guest agent listens there (not a dstack CVM, or the socket is not mounted)'
          : error.message
      reject(new DstackAgentError(`${socketPath}: ${why}`))
    })
    req.end(payload)
  })
}
