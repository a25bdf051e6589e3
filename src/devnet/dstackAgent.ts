// A simulated dstack guest agent (docs/protocol.md#tee-providers): the unix-socket API a dstack CVM gives the sidecar,
// `POST /GetQuote {report_data}` (quote, event log in the agent's stripped form, vm_config), `POST /EmitEvent`,
// `POST /GetKey {path, purpose}` and `POST /Info` (`tcb_info.app_compose`, the CVM's app-compose.json), answered by the devnet's simulated TEE. It lets
// a production build (the sidecar image, quote provider and seal `dstack`) run against a devnet outside a CVM: the
// image cannot tell it from a real agent, and the devnet's nodes verify its quotes under the devnet root like any
// other. Devnet only: its keys come from a seed the host holds.
import { createServer, type Server } from 'node:http'
import { chmodSync, rmSync } from 'node:fs'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { RUNTIME_IMR } from '../tee/eventLog.ts'
import type { QuoteProvider } from '../tee/types.ts'

/** Largest request body read (a GetQuote request is 150 bytes). */
const MAX_BODY_BYTES = 16 * 1024
/** Largest GetKey `path` or `purpose`, in UTF-8 bytes. */
const MAX_FIELD_BYTES = 512

export type SimulatedDstackAgent = { socketPath: string; close(): Promise<void> }

class AgentRequestError extends Error {}

/**
 * Serves the guest agent on `socketPath` (made connectable by any local user: the container runs as another uid).
 * GetQuote zero-pads `report_data` to 64 bytes, as dstack does, and quotes with `quoteProvider`; GetKey derives a
 * 32-byte key from `seed`, the path and the purpose (the same key for the same seed after a restart, as a real
 * agent gives an app the same key on the same KMS). Info answers `appCompose` as `tcb_info.app_compose` (dstack's
 * agent gives the app-compose.json whose SHA-256 its boot measured into RTMR3 as the `compose-hash` event; the caller
 * emits that event on `quoteProvider`, as dstack's boot does). Errors are answered as `{"error": message}`, as the agent does.
 */
export async function serveSimulatedDstackAgent({
  socketPath,
  quoteProvider,
  seed,
  appCompose = '',
}: {
  socketPath: string
  quoteProvider: QuoteProvider
  seed: Uint8Array
  appCompose?: string
}): Promise<SimulatedDstackAgent> {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new RangeError('seed: expected 32 bytes')
  const keySeed = Uint8Array.from(seed)

  async function answer(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (path) {
      case '/GetQuote': {
        const hex = typeof body.report_data === 'string' ? body.report_data.replace(/^0x/, '') : ''
        if (!/^([0-9a-fA-F]{2}){0,64}$/.test(hex)) throw new AgentRequestError('report_data: expected at most 64 bytes of hex')
        const reportData = new Uint8Array(64)
        reportData.set(hexToBytes(hex))
        if (!quoteProvider.quoteWithEvidence) return { quote: bytesToHex(await quoteProvider.getQuote(reportData)), event_log: '[]' }
        const { quote, eventLog, vmConfig } = await quoteProvider.quoteWithEvidence(reportData)
        // As dstack's agent answers: boot-time payloads and runtime (RTMR3) digests left out; verifiers recompute
        // the runtime digests from event and payload (the dstack provider does, src/tee/hardwareQuotes.ts).
        const stripped = eventLog.map((e) => (e.imr === RUNTIME_IMR ? { ...e, digest: '' } : { ...e, event_payload: '' }))
        return { quote: bytesToHex(quote), event_log: JSON.stringify(stripped), report_data: bytesToHex(reportData), vm_config: vmConfig }
      }
      case '/EmitEvent': {
        if (!quoteProvider.emitEvent) throw new AgentRequestError('this TD cannot extend RTMR3')
        const event = body.event
        const payload = typeof body.payload === 'string' ? body.payload : ''
        if (typeof event !== 'string' || event.length === 0 || utf8ToBytes(event).length > MAX_FIELD_BYTES)
          throw new AgentRequestError(`event: expected a non-empty string of at most ${MAX_FIELD_BYTES} bytes`)
        if (!/^([0-9a-fA-F]{2}){0,4096}$/.test(payload)) throw new AgentRequestError('payload: expected at most 4096 bytes of hex')
        await quoteProvider.emitEvent(event, hexToBytes(payload))
        return {}
      }
      case '/GetKey': {
        const field = (name: string) => {
          const value = body[name] ?? ''
          if (typeof value !== 'string' || utf8ToBytes(value).length > MAX_FIELD_BYTES)
            throw new AgentRequestError(`${name}: expected a string of at most ${MAX_FIELD_BYTES} bytes`)
          return value
        }
        const info = utf8ToBytes(JSON.stringify([field('path'), field('purpose')]))
        const key = hkdf(sha256, keySeed, utf8ToBytes('keymanager.devnet.dstack-agent'), info, 32)
        return { key: bytesToHex(key), signature_chain: [] }
      }
      case '/Info':
        return { app_id: '', instance_id: '', device_id: '', tcb_info: JSON.stringify({ app_compose: appCompose }) }
      default:
        throw new AgentRequestError(`unknown method ${path}`)
    }
  }

  const server: Server = createServer((req, res) => {
    const reply = (status: number, value: unknown) => {
      const text = JSON.stringify(value)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) req.destroy()
      else chunks.push(chunk)
    })
    req.on('end', () => {
      let body: unknown
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
      } catch {
        return reply(400, { error: 'request body is not JSON' })
      }
      if (req.method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body))
        return reply(400, { error: 'expected a POST with a JSON object' })
      answer(new URL(req.url ?? '/', 'http://agent').pathname, body as Record<string, unknown>).then(
        (result) => reply(200, result),
        (error: Error) => reply(error instanceof AgentRequestError ? 400 : 500, { error: error instanceof AgentRequestError ? error.message : 'internal error' }),
      )
    })
  })
  rmSync(socketPath, { force: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => resolve())
  })
  chmodSync(socketPath, 0o666)
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        keySeed.fill(0)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
