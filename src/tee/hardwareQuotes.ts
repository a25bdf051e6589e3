// Quote providers for real TEEs (docs/protocol.md#tee-providers). Each asks its platform for a quote over exactly the 64 report-data
// bytes, then checks that the quote it got back binds those bytes: a confused or hostile interface must not make
// the node publish a quote for something else.
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { bytesToHex } from '@noble/hashes/utils.js'
import { constantTimeEqual } from '../keys/bytes.ts'
import { DSTACK_SOCKET, DstackAgentError, postDstackAgent } from './dstackAgent.ts'
import { measurementOf } from './measurement.ts'
import type { QuoteProvider, TeeType } from './types.ts'

export class QuoteProviderError extends Error {
  override name = 'QuoteProviderError'
}

/** The file operations the providers use; node's fs in production, a stand-in in tests. */
export type QuoteFs = Pick<typeof fsp, 'mkdir' | 'rmdir' | 'readFile' | 'writeFile' | 'stat'>

function checkReportData(reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) throw new RangeError('reportData: expected 64 bytes')
}

function checkQuote(provider: string, teeType: TeeType, quote: Uint8Array, reportData: Uint8Array): Uint8Array {
  let parsed
  try {
    parsed = measurementOf(quote)
  } catch (error) {
    throw new QuoteProviderError(`quote provider ${provider}: the platform returned no valid quote (${(error as Error).message})`)
  }
  if (parsed.teeType !== teeType) throw new QuoteProviderError(`quote provider ${provider}: expected a ${teeType} quote, got ${parsed.teeType}`)
  if (!constantTimeEqual(parsed.reportData, reportData))
    throw new QuoteProviderError(`quote provider ${provider}: the platform returned a quote over other report data`)
  return quote
}

async function exists(fs: QuoteFs, path: string): Promise<boolean> {
  try {
    await fs.stat(path)
    return true
  } catch {
    return false
  }
}

/**
 * `tdx`: Linux configfs-tsm (`/sys/kernel/config/tsm/report`). Per quote: mkdir an entry, write exactly 64 bytes to
 * `inblob`, read `outblob`, and require `generation` to have moved by exactly one (another writer on the same entry
 * would make the quote not ours), then rmdir.
 */
export function tdxQuoteProvider(options: { tsmDir?: string; fs?: QuoteFs } = {}): QuoteProvider {
  const tsmDir = options.tsmDir ?? '/sys/kernel/config/tsm/report'
  const fs = options.fs ?? fsp
  return Object.freeze({
    name: 'tdx',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      checkReportData(reportData)
      if (!(await exists(fs, tsmDir)))
        throw new QuoteProviderError(`quote provider tdx: ${tsmDir} does not exist (not a TDX guest, or configfs-tsm is not mounted)`)
      const entry = join(tsmDir, `keymanager-${bytesToHex(randomBytes(8))}`)
      try {
        await fs.mkdir(entry)
      } catch (error) {
        throw new QuoteProviderError(`quote provider tdx: cannot create a report entry in ${tsmDir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
      }
      try {
        const readGeneration = async () => {
          const text = (await fs.readFile(join(entry, 'generation'), 'utf8')).trim()
          if (!/^\d+$/.test(text)) throw new QuoteProviderError(`quote provider tdx: ${entry}/generation is not a number`)
          return Number(text)
        }
        const before = await readGeneration()
        await fs.writeFile(join(entry, 'inblob'), reportData)
        const quote = new Uint8Array(await fs.readFile(join(entry, 'outblob')))
        const after = await readGeneration()
        if (after !== before + 1) throw new QuoteProviderError('quote provider tdx: the report entry was written concurrently; quote discarded')
        return checkQuote('tdx', 'tdx', quote, reportData)
      } catch (error) {
        if (error instanceof QuoteProviderError) throw error
        throw new QuoteProviderError(`quote provider tdx: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} in ${entry}`)
      } finally {
        await fs.rmdir(entry).catch(() => {})
      }
    },
  })
}

/** `sgx-gramine`: write `/dev/attestation/user_report_data`, read `/dev/attestation/quote` (DCAP attestation only). */
export function sgxGramineQuoteProvider(options: { attestationDir?: string; fs?: QuoteFs } = {}): QuoteProvider {
  const dir = options.attestationDir ?? '/dev/attestation'
  const fs = options.fs ?? fsp
  let queue: Promise<unknown> = Promise.resolve()
  return Object.freeze({
    name: 'sgx-gramine',
    teeType: 'sgx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      checkReportData(reportData)
      // One user_report_data file for the whole enclave: quotes are made one at a time.
      const run = queue.then(async () => {
        let type: string
        try {
          type = (await fs.readFile(join(dir, 'attestation_type'), 'utf8')).trim()
        } catch {
          throw new QuoteProviderError(`quote provider sgx-gramine: ${dir}/attestation_type is missing (not inside a Gramine SGX enclave)`)
        }
        if (type !== 'dcap') throw new QuoteProviderError(`quote provider sgx-gramine: attestation type is '${type}', DCAP is required`)
        try {
          await fs.writeFile(join(dir, 'user_report_data'), reportData)
          return checkQuote('sgx-gramine', 'sgx', new Uint8Array(await fs.readFile(join(dir, 'quote'))), reportData)
        } catch (error) {
          if (error instanceof QuoteProviderError) throw error
          throw new QuoteProviderError(`quote provider sgx-gramine: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} in ${dir}`)
        }
      })
      queue = run.catch(() => {})
      return run
    },
  })
}

/** `dstack`: the guest agent's `POST /GetQuote {report_data}` (zero-padded, not hashed) on its unix socket. */
export function dstackQuoteProvider(options: { socketPath?: string; timeoutMs?: number } = {}): QuoteProvider {
  const socketPath = options.socketPath ?? DSTACK_SOCKET
  return Object.freeze({
    name: 'dstack',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      checkReportData(reportData)
      let answer: Record<string, unknown>
      try {
        answer = await postDstackAgent(socketPath, '/GetQuote', { report_data: bytesToHex(reportData) }, options.timeoutMs)
      } catch (error) {
        if (error instanceof DstackAgentError) throw new QuoteProviderError(`quote provider dstack: ${error.message}`)
        throw error
      }
      const hex = typeof answer.quote === 'string' ? answer.quote.replace(/^0x/, '') : ''
      if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex))
        throw new QuoteProviderError('quote provider dstack: GetQuote answered without a hex quote')
      return checkQuote('dstack', 'tdx', Uint8Array.from(Buffer.from(hex, 'hex')), reportData)
    },
  })
}
