// An HTTP proxy in front of an RPC or beacon node that lies the way a hostile host would (docs/protocol.md#actors-and-trust:
// the host controls the RPC and beacon URLs). A devnet and test tool: it changes JSON-RPC answers (single or batched)
// after the upstream gave them, answers in the upstream's place, rewrites or replays plain HTTP answers (the beacon
// API), withholds updates by replaying what it served before, and can be pointed at another upstream (a fork) while
// the node keeps its URL. Hooks are set and cleared while it runs; with none it forwards faithfully.
import { createServer, type IncomingMessage, type Server } from 'node:http'

export type JsonRpcCall = { id?: unknown; method: string; params?: unknown[] }
export type JsonRpcError = { code: number; message: string }

export type RpcProxyHooks = {
  /** Answers a JSON-RPC call in place of the upstream (`{ result }` or `{ error }`), or forwards it (undefined). */
  request?: (call: JsonRpcCall) => { result: unknown } | { error: JsonRpcError } | undefined | Promise<{ result: unknown } | { error: JsonRpcError } | undefined>
  /** Rewrites the upstream's result of a JSON-RPC call (return it unchanged to pass it through). */
  response?: (call: JsonRpcCall, result: unknown) => unknown | Promise<unknown>
  /** Rewrites a plain HTTP answer (GET paths such as `/eth/v1/beacon/light_client/...`). */
  http?: (path: string, answer: { status: number; body: string }) => { status: number; body: string } | Promise<{ status: number; body: string }>
}

export type RpcProxy = {
  url: string
  /** Where requests go; change it to move the node to another chain behind its back. */
  upstream: string
  hooks: RpcProxyHooks
  /**
   * Withholding: from now on every plain HTTP GET is answered with what this proxy last served for that path
   * (503 for a path it never served); JSON-RPC is unaffected. `release()` ends it.
   */
  freeze(): void
  release(): void
  readonly frozen: boolean
  /** JSON-RPC calls seen, by method. */
  calls: Map<string, number>
  close(): Promise<void>
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startRpcProxy(options: { upstream: string; hooks?: RpcProxyHooks }): Promise<RpcProxy> {
  const served = new Map<string, { status: number; body: string; type: string }>()
  let frozen = false
  const proxy = {
    upstream: options.upstream,
    hooks: options.hooks ?? {},
    calls: new Map<string, number>(),
  }

  async function handleCall(call: JsonRpcCall): Promise<unknown> {
    proxy.calls.set(call.method, (proxy.calls.get(call.method) ?? 0) + 1)
    const own = await proxy.hooks.request?.(call)
    if (own) return { jsonrpc: '2.0', id: call.id, ...own }
    const upstream = await fetch(proxy.upstream, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: call.id, method: call.method, params: call.params ?? [] }),
    })
    const answer = (await upstream.json()) as { result?: unknown; error?: JsonRpcError }
    if (answer.error || !proxy.hooks.response) return { jsonrpc: '2.0', id: call.id, ...answer }
    return { jsonrpc: '2.0', id: call.id, result: await proxy.hooks.response(call, answer.result) }
  }

  const server: Server = createServer(async (req, res) => {
    try {
      const path = req.url ?? '/'
      if (req.method === 'POST') {
        const body = JSON.parse(await readBody(req)) as JsonRpcCall | JsonRpcCall[]
        const answer = Array.isArray(body) ? await Promise.all(body.map(handleCall)) : await handleCall(body)
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
        return
      }
      if (frozen) {
        const old = served.get(path)
        if (!old) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"unavailable"}')
        return void res.writeHead(old.status, { 'content-type': old.type }).end(old.body)
      }
      const upstream = await fetch(new URL(path, proxy.upstream), { method: req.method ?? 'GET', headers: { accept: req.headers.accept ?? '*/*' } })
      const type = upstream.headers.get('content-type') ?? 'application/json'
      let answer = { status: upstream.status, body: await upstream.text() }
      if (proxy.hooks.http) answer = await proxy.hooks.http(path, answer)
      served.set(path, { ...answer, type })
      res.writeHead(answer.status, { 'content-type': type }).end(answer.body)
    } catch (error) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: `proxy: ${(error as Error).message}` } }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }

  return Object.assign(proxy, {
    url: `http://127.0.0.1:${port}`,
    freeze() {
      frozen = true
    },
    release() {
      frozen = false
    },
    get frozen() {
      return frozen
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  })
}
