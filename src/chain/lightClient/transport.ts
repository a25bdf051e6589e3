// Light-client data from an untrusted beacon node (docs/protocol.md#verified-chain-view): the beacon-APIs routes
//   GET /eth/v1/beacon/light_client/bootstrap/{block_root}         → {version, data}
//   GET /eth/v1/beacon/light_client/updates?start_period&count     → [{version, data}, …]
//   GET /eth/v1/beacon/light_client/finality_update                → {version, data}
//   GET /eth/v1/beacon/light_client/optimistic_update              → {version, data}
// `data` decodes with `ssz.<version>.<Type>.fromJson`. Everything here is transport: nothing is trusted until
// lightClient.ts has checked it against the committee. What this module does guarantee is that the host cannot crash
// or exhaust us through it: every request has a timeout, every body a size cap read incrementally, and every failure
// (unreachable, HTTP error, oversize, not JSON, wrong shape, a fork we do not verify) is a `LightClientError`.
import { ForkName, isForkPostCapella, MAX_REQUEST_LIGHT_CLIENT_UPDATES } from '@lodestar/params'
import { ssz, type LightClientBootstrap, type LightClientFinalityUpdate, type LightClientOptimisticUpdate, type LightClientUpdate } from '@lodestar/types'
import type { Hex } from 'viem'
import { LightClientError } from './errors.ts'
import { readBoundedBody } from '../../net/boundedBody.ts'

/** Forks whose light-client data this build verifies: post-Capella (the header carries the execution payload header). */
export type LightClientFork = ForkName.capella | ForkName.deneb | ForkName.electra | ForkName.fulu

export type Versioned<T> = { fork: LightClientFork; data: T }

export type LightClientTransport = {
  readonly url: string
  bootstrap(blockRoot: Hex): Promise<Versioned<LightClientBootstrap>>
  updates(startPeriod: number, count: number): Promise<Versioned<LightClientUpdate>[]>
  finalityUpdate(): Promise<Versioned<LightClientFinalityUpdate>>
  optimisticUpdate(): Promise<Versioned<LightClientOptimisticUpdate>>
}

export type LightClientTransportOptions = {
  /** Beacon node base URL (host setting, untrusted). */
  url: string
  fetch?: typeof fetch
  /** Per request, headers and body included. */
  timeoutMs?: number
}

/** At most this many periods per `updates` request (the spec allows 128; a smaller page bounds one answer's size). */
export const MAX_PERIODS_PER_REQUEST = 16

// Size caps. A JSON sync committee is 512 × 98 + 98 characters (~50 KiB); a bootstrap or an update carries one, plus
// headers and branches (~4 KiB). Caps are four times that, so a real answer never comes near them.
const CAP_WITH_COMMITTEE = 256 * 1024
const CAP_WITHOUT_COMMITTEE = 64 * 1024
const DEFAULT_TIMEOUT_MS = 10_000

export function isLightClientFork(value: unknown): value is LightClientFork {
  return typeof value === 'string' && (Object.values(ForkName) as string[]).includes(value) && isForkPostCapella(value as ForkName)
}

export function createLightClientTransport(options: LightClientTransportOptions): LightClientTransport {
  let base: URL
  try {
    base = new URL(options.url)
  } catch {
    throw new TypeError(`beacon url: not a URL: ${JSON.stringify(options.url)}`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`beacon url: expected http(s), got ${base.protocol}`)
  const url = base.href.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS

  async function getJson(path: string, cap: number): Promise<unknown> {
    const target = `${url}${path}`
    const signal = AbortSignal.timeout(timeoutMs)
    let response: Response
    try {
      response = await doFetch(target, { headers: { accept: 'application/json' }, signal, redirect: 'error' })
    } catch (error) {
      throw new LightClientError('beacon_unavailable', `beacon node unreachable: ${timedOut(error) ? `no answer within ${timeoutMs} ms` : describe(error)}`, {
        metaMessages: [`request: GET ${target}`],
        cause: error,
      })
    }
    const body = await readCapped(response, cap, target, timeoutMs)
    if (!response.ok) {
      throw new LightClientError('beacon_unavailable', `beacon node answered HTTP ${response.status}`, {
        metaMessages: [`request: GET ${target}`, `body: ${printable(body.slice(0, 200))}`],
      })
    }
    try {
      return JSON.parse(body)
    } catch {
      throw new LightClientError('malformed_response', 'beacon node answer is not JSON', { metaMessages: [`request: GET ${target}`] })
    }
  }

  function decode<T>(value: unknown, typeName: 'LightClientBootstrap' | 'LightClientUpdate' | 'LightClientFinalityUpdate' | 'LightClientOptimisticUpdate', path: string): Versioned<T> {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !('version' in value) || !('data' in value)) {
      throw new LightClientError('malformed_response', 'beacon node answer is not {version, data}', { metaMessages: [`route: ${path}`] })
    }
    const { version, data } = value as { version: unknown; data: unknown }
    if (!isLightClientFork(version)) {
      throw new LightClientError('unknown_fork', `beacon node answer names a fork this client does not verify: ${printable(String(version).slice(0, 40))}`, {
        metaMessages: [`route: ${path}`, 'verified forks: capella, deneb, electra, fulu'],
      })
    }
    try {
      return { fork: version, data: ssz[version][typeName].fromJson(data) as T }
    } catch (error) {
      throw new LightClientError('malformed_response', `beacon node answer does not decode as ${version} ${typeName}`, {
        metaMessages: [`route: ${path}`, `decoder: ${describe(error)}`],
      })
    }
  }

  return Object.freeze({
    url,
    async bootstrap(blockRoot: Hex) {
      if (!/^0x[0-9a-fA-F]{64}$/.test(blockRoot)) throw new TypeError('bootstrap: block root must be 32 bytes of 0x-hex')
      const path = `/eth/v1/beacon/light_client/bootstrap/${blockRoot.toLowerCase()}`
      return decode<LightClientBootstrap>(await getJson(path, CAP_WITH_COMMITTEE), 'LightClientBootstrap', path)
    },
    async updates(startPeriod: number, count: number) {
      if (!Number.isSafeInteger(startPeriod) || startPeriod < 0) throw new RangeError('updates: startPeriod must be an integer ≥ 0')
      if (!Number.isSafeInteger(count) || count < 1 || count > Math.min(MAX_PERIODS_PER_REQUEST, MAX_REQUEST_LIGHT_CLIENT_UPDATES)) {
        throw new RangeError(`updates: count must be 1…${MAX_PERIODS_PER_REQUEST}`)
      }
      const path = `/eth/v1/beacon/light_client/updates?start_period=${startPeriod}&count=${count}`
      const body = await getJson(path, CAP_WITH_COMMITTEE * count)
      if (!Array.isArray(body)) throw new LightClientError('malformed_response', 'beacon node updates answer is not a list', { metaMessages: [`route: ${path}`] })
      if (body.length > count) {
        throw new LightClientError('malformed_response', `beacon node answered ${body.length} updates for ${count} periods`, { metaMessages: [`route: ${path}`] })
      }
      return body.map((item) => decode<LightClientUpdate>(item, 'LightClientUpdate', path))
    },
    async finalityUpdate() {
      const path = '/eth/v1/beacon/light_client/finality_update'
      return decode<LightClientFinalityUpdate>(await getJson(path, CAP_WITHOUT_COMMITTEE), 'LightClientFinalityUpdate', path)
    },
    async optimisticUpdate() {
      const path = '/eth/v1/beacon/light_client/optimistic_update'
      return decode<LightClientOptimisticUpdate>(await getJson(path, CAP_WITHOUT_COMMITTEE), 'LightClientOptimisticUpdate', path)
    },
  })
}

/** Reads at most `cap` bytes of body, refusing early on a larger Content-Length and mid-stream on a longer body. */
async function readCapped(response: Response, cap: number, target: string, timeoutMs: number): Promise<string> {
  const body = await readBoundedBody(response, cap, {
    tooLarge: (declared) =>
      new LightClientError('response_too_large', `beacon node answer ${declared === undefined ? '' : `of ${declared} bytes `}exceeds the ${cap}-byte cap`, {
        metaMessages: [`request: GET ${target}`],
      }),
    broken: (error) =>
      new LightClientError('beacon_unavailable', `beacon node answer broke off: ${timedOut(error) ? `not complete within ${timeoutMs} ms` : describe(error)}`, {
        metaMessages: [`request: GET ${target}`],
        cause: error,
      }),
  })
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
}

function timedOut(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')
}

function describe(error: unknown): string {
  const message = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error)
  return printable(message.slice(0, 200))
}

/** Attacker text goes into messages only as printable ASCII, so a log line cannot be forged with control characters. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?')
}
