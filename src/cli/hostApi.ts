// `keymanager status|bootstrap|register|help --node URL` (docs/protocol.md#command-line): the operator's side of the host API.
// The bearer token comes from --token-file or KEYMANAGER_HOST_TOKEN, never from argv.
import { readFileSync } from 'node:fs'
import { createPublicClient, createWalletClient, http, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainFor } from '../chain/chain.ts'
import { sendBlobTransaction } from '../chain/blobs.ts'
import { parseFlags, UsageError } from './args.ts'

type Out = (line: string) => void
type Env = Record<string, string | undefined>

export const HOST_API_USAGE = `usage: keymanager status   --node HOST_URL [--token-file F] [--json]
       keymanager bootstrap --node HOST_URL [--token-file F] [--rpc URL --owner-key-file F]
       keymanager register  --node HOST_URL [--token-file F] [--complete ENCKEY]
       keymanager help ADDR --node HOST_URL [--token-file F]     (ADDR: request id or newcomer address)`

function readFileTrimmed(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (error) {
    throw new UsageError(`${what}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

export function nodeTarget(values: { node?: string; 'token-file'?: string }, env: Env) {
  if (!values.node) throw new UsageError('--node HOST_URL is required (the node host listener)')
  let url: URL
  try {
    url = new URL(values.node)
  } catch {
    throw new UsageError('--node must be an http(s) URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--node must be an http(s) URL')
  const token = values['token-file'] ? readFileTrimmed(values['token-file'], '--token-file') : env.KEYMANAGER_HOST_TOKEN
  if (!token) throw new UsageError('a host token is needed: --token-file F or KEYMANAGER_HOST_TOKEN')
  return { base: url.toString().replace(/\/$/, ''), token }
}

/** One host-API call; a non-2xx answer becomes an error with the node's code and message (one line). */
export async function call<T>(target: { base: string; token: string }, method: 'GET' | 'POST', path: string): Promise<T> {
  let res: Response
  try {
    res = await fetch(target.base + path, { method, headers: { authorization: `Bearer ${target.token}` } })
  } catch {
    throw new Error(`cannot reach the node at ${new URL(target.base).host}`)
  }
  const text = await res.text()
  let body: { error?: { code?: string; message?: string; reason?: string } }
  try {
    body = JSON.parse(text)
  } catch {
    throw new Error(`${method} ${path}: HTTP ${res.status}, not JSON`)
  }
  if (!res.ok) {
    const e = body.error ?? {}
    throw new Error(`${method} ${path}: ${res.status} ${e.code ?? ''}${e.reason ? ` (${e.reason})` : ''}: ${e.message ?? ''}`)
  }
  return body as T
}

const flags = {
  node: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean', default: false },
  rpc: { type: 'string' },
  'owner-key-file': { type: 'string' },
  complete: { type: 'string' },
} as const

export async function runHostApi(verb: 'status' | 'bootstrap' | 'register' | 'help', argv: string[], env: Env, out: Out): Promise<number> {
  const { values, positionals } = parseFlags(argv, flags)
  const target = nodeTarget(values, env)
  const print = (value: unknown) => out(JSON.stringify(value, null, 2))
  switch (verb) {
    case 'status': {
      const status = await call<Record<string, unknown> & { state: string; requests: { requestId: string; decision: string; reason: string | null }[] }>(target, 'GET', '/status')
      if (values.json) return print(status), 0
      out(`state       ${status.state}`)
      out(`xPub        ${status.xPub ?? '-'}  (generation ${status.generation})`)
      out(`registry    ${status.registry} on chain ${status.chainId}`)
      for (const r of status.requests) out(`request ${r.requestId}: ${r.decision}${r.reason ? ` (${r.reason})` : ''}`)
      return 0
    }
    case 'bootstrap': {
      const prepared = await call<{ state: string; xPub: Address; tx?: { to: Address; data: Hex; blobs: Hex[]; chainId: number } }>(target, 'POST', '/bootstrap')
      if (!prepared.tx) return print(prepared), 0
      if (!values['owner-key-file']) {
        // No owner key here: hand the transaction to whoever holds it, then run `bootstrap` again.
        print(prepared)
        return 0
      }
      if (!values.rpc) throw new UsageError('--rpc URL is needed to send bootstrap() with --owner-key-file')
      const key = readFileTrimmed(values['owner-key-file'], '--owner-key-file')
      if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('the owner key must be 0x followed by 64 hex digits')
      const chain = chainFor(prepared.tx.chainId, values.rpc)
      const transport = http(values.rpc)
      const sent = await sendBlobTransaction({
        walletClient: createWalletClient({ account: privateKeyToAccount(key as Hex), chain, transport }),
        publicClient: createPublicClient({ chain, transport }),
        to: prepared.tx.to,
        data: prepared.tx.data,
        blobs: prepared.tx.blobs,
      })
      out(`bootstrap() sent: ${sent.hash}`)
      const done = await call<{ state: string; xPub: Address }>(target, 'POST', '/bootstrap')
      out(`node ${done.state}: master key ${done.xPub}`)
      return done.state === 'ready' ? 0 : 1
    }
    case 'register': {
      if (values.complete !== undefined) {
        const done = await call<{ state: string; xPub: Address }>(target, 'POST', `/register/${encodeURIComponent(values.complete)}`)
        out(`node ${done.state}: master key ${done.xPub}`)
        return 0
      }
      const reg = await call<{ enckey: Address; requestId: string | null; txHash?: Hex }>(target, 'POST', '/register')
      if (values.json) return print(reg), 0
      out(`enckey      ${reg.enckey}`)
      out(`requestId   ${reg.requestId ?? '(not sent: the node returned the transaction)'}`)
      if (reg.txHash) out(`tx          ${reg.txHash}`)
      return 0
    }
    case 'help': {
      const [addr] = positionals
      if (!addr || positionals.length > 1) throw new UsageError('help takes one ADDR: a request id or the newcomer address')
      const result = await call<{ requestId: string; decision: string; txHash?: Hex }>(target, 'POST', `/helper/${encodeURIComponent(addr)}`)
      out(`request ${result.requestId}: ${result.decision}${result.txHash ? ` in ${result.txHash}` : ''}`)
      return 0
    }
  }
}
