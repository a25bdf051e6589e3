// Quote providers for real TEEs (docs/protocol.md#tee-providers). Each asks its platform for a quote over exactly the 64 report-data
// bytes, then checks that the quote it got back binds those bytes: a confused or hostile interface must not make
// the node publish a quote for something else.
//
// TDX providers also give the event log that replays to a quote's RTMRs and extend RTMR3 with runtime events
// (docs/protocol.md#dstack-api):
// - `tdx`: boot-time entries from the firmware's CCEL ACPI table, runtime entries from dstack's runtime event log
//   file (`/run/log/dstack/runtime_events.log`, JSON lines; a tmpfs, so it lives exactly as long as RTMR3), RTMR3
//   extended through the kernel's TDX measurement interface (`/sys/devices/virtual/misc/tdx_guest/measurements/
//   rtmr3:sha384`, Linux 6.16+: write the 48-byte digest). The older ioctl on /dev/tdx_guest needs a native addon:
//   without the sysfs file emitEvent refuses. Emits and evidence reads are serialized within the sidecar; dstack's
//   own tools lock the log with flock(2), which node cannot take, so in a dstack CVM use provider `dstack`.
// - `dstack`: the agent's `GetQuote` answer (its event log, runtime digests filled in, and vm_config), `EmitEvent`, and
//   the CVM facts of its `Info` (device id, app compose, cloud vendor and product) for our own Info.
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { bytesToHex } from '@noble/hashes/utils.js'
import { constantTimeEqual } from '../keys/bytes.ts'
import { DSTACK_SOCKET, DstackAgentError, postDstackAgent } from './dstackAgent.ts'
import { EventLogError, parseCcel, parseEventLog, parseRuntimeEventLines, runtimeEventDigest, runtimeEventLine, type TdxEvent } from './eventLog.ts'
import { measurementOf } from './measurement.ts'
import type { PlatformInfo, QuoteEvidence, QuoteProvider, TeeType } from './types.ts'

export const CCEL_FILE = '/sys/firmware/acpi/tables/data/CCEL'
export const RUNTIME_EVENT_LOG_FILE = '/run/log/dstack/runtime_events.log'
export const RTMR_SYSFS_DIR = '/sys/devices/virtual/misc/tdx_guest/measurements'
/** Most runtime events the tdx provider appends to the log (each is replayed for every quote). */
export const MAX_RUNTIME_EVENTS = 1024
/** Largest vm_config accepted from the dstack agent. */
const MAX_VM_CONFIG_CHARS = 64 * 1024
import { KeymanagerError } from '../errors.ts'

/** The platform gave no usable quote (not a TEE, a device error, or a quote that does not match what was asked). */
export class QuoteProviderError extends KeymanagerError {
  override name = 'QuoteProviderError'
  constructor(message: string) {
    super('upstream_failed', message)
  }
}

/** The file operations the providers use; node's fs in production, a stand-in in tests. */
export type QuoteFs = Pick<typeof fsp, 'mkdir' | 'rmdir' | 'readFile' | 'writeFile' | 'stat' | 'appendFile' | 'truncate'>

/** Runs tasks one at a time, in call order; a failed task does not stop the next. */
function serializer() {
  let queue: Promise<unknown> = Promise.resolve()
  return function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task)
    queue = run.catch(() => {})
    return run
  }
}

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

export type TdxProviderOptions = {
  tsmDir?: string
  fs?: QuoteFs
  /** The firmware's boot event log (CCEL). */
  ccelFile?: string
  /** dstack's runtime event log (JSON lines). */
  runtimeEventLog?: string
  /** The kernel's TDX measurement-register directory. */
  rtmrDir?: string
}

/**
 * `tdx`: Linux configfs-tsm (`/sys/kernel/config/tsm/report`). Per quote: mkdir an entry, write exactly 64 bytes to
 * `inblob`, read `outblob`, and require `generation` to have moved by exactly one (another writer on the same entry
 * would make the quote not ours), then rmdir. Event log and RTMR3 as described at the top of this file.
 */
export function tdxQuoteProvider(options: TdxProviderOptions = {}): QuoteProvider {
  const tsmDir = options.tsmDir ?? '/sys/kernel/config/tsm/report'
  const fs = options.fs ?? fsp
  const ccelFile = options.ccelFile ?? CCEL_FILE
  const logFile = options.runtimeEventLog ?? RUNTIME_EVENT_LOG_FILE
  const rtmr3File = join(options.rtmrDir ?? RTMR_SYSFS_DIR, 'rtmr3:sha384')
  const serial = serializer()
  let bootLog: TdxEvent[] | undefined

  async function readBootLog(): Promise<TdxEvent[]> {
    if (bootLog) return bootLog
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await fs.readFile(ccelFile))
    } catch (error) {
      throw new QuoteProviderError(`quote provider tdx: cannot read the boot event log ${ccelFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    try {
      bootLog = parseCcel(bytes)
    } catch (error) {
      if (error instanceof EventLogError) throw new QuoteProviderError(`quote provider tdx: ${ccelFile}: ${error.message}`)
      throw error
    }
    return bootLog
  }

  async function readRuntimeLog(): Promise<{ events: TdxEvent[]; size: number }> {
    let text: string
    try {
      text = await fs.readFile(logFile, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], size: 0 }
      throw new QuoteProviderError(`quote provider tdx: cannot read the runtime event log ${logFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    try {
      return { events: parseRuntimeEventLines(text), size: Buffer.byteLength(text) }
    } catch (error) {
      if (error instanceof EventLogError) throw new QuoteProviderError(`quote provider tdx: ${logFile}: ${error.message}`)
      throw error
    }
  }

  async function getQuote(reportData: Uint8Array): Promise<Uint8Array> {
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
  }

  return Object.freeze({
    name: 'tdx',
    teeType: 'tdx' as const,
    getQuote,
    quoteWithEvidence(reportData: Uint8Array): Promise<QuoteEvidence> {
      return serial(async () => {
        const boot = await readBootLog()
        const { events } = await readRuntimeLog()
        return { quote: await getQuote(reportData), eventLog: [...boot, ...events], vmConfig: '' }
      })
    },
    emitEvent(event: string, payload: Uint8Array): Promise<void> {
      return serial(async () => {
        if (!(await exists(fs, rtmr3File))) {
          throw new QuoteProviderError(`quote provider tdx: RTMR3 cannot be extended here: no ${rtmr3File} (TDX guest measurement interface, Linux 6.16+)`)
        }
        const { events, size } = await readRuntimeLog()
        if (events.length >= MAX_RUNTIME_EVENTS) throw new QuoteProviderError(`quote provider tdx: the runtime event log is full (${MAX_RUNTIME_EVENTS} events)`)
        // Log first, then extend (dstack's order); if the extension fails the line is taken back, so the log keeps
        // replaying to RTMR3.
        try {
          await fs.mkdir(dirname(logFile), { recursive: true })
          await fs.appendFile(logFile, `${runtimeEventLine(event, payload)}\n`, { mode: 0o600 })
        } catch (error) {
          throw new QuoteProviderError(`quote provider tdx: cannot append to ${logFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
        }
        try {
          await fs.writeFile(rtmr3File, runtimeEventDigest(event, payload))
        } catch (error) {
          await fs.truncate(logFile, size).catch(() => {})
          throw new QuoteProviderError(`quote provider tdx: extending RTMR3 failed (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
        }
      })
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
  async function ask(path: string, body: unknown): Promise<Record<string, unknown>> {
    try {
      return await postDstackAgent(socketPath, path, body, options.timeoutMs)
    } catch (error) {
      if (error instanceof DstackAgentError) throw new QuoteProviderError(`quote provider dstack: ${error.message}`)
      throw error
    }
  }
  async function fetchQuote(reportData: Uint8Array): Promise<{ answer: Record<string, unknown>; quote: Uint8Array }> {
    checkReportData(reportData)
    const answer = await ask('/GetQuote', { report_data: bytesToHex(reportData) })
    const hex = typeof answer.quote === 'string' ? answer.quote.replace(/^0x/, '') : ''
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex))
      throw new QuoteProviderError('quote provider dstack: GetQuote answered without a hex quote')
    return { answer, quote: checkQuote('dstack', 'tdx', Uint8Array.from(Buffer.from(hex, 'hex')), reportData) }
  }
  async function quoteWithEvidence(reportData: Uint8Array): Promise<QuoteEvidence> {
    const { answer, quote } = await fetchQuote(reportData)
    let eventLog: TdxEvent[]
    try {
      eventLog = parseEventLog(typeof answer.event_log === 'string' ? answer.event_log : '')
    } catch (error) {
      if (error instanceof EventLogError) throw new QuoteProviderError(`quote provider dstack: GetQuote event_log: ${error.message}`)
      throw error
    }
    const vmConfig = typeof answer.vm_config === 'string' && answer.vm_config.length <= MAX_VM_CONFIG_CHARS ? answer.vm_config : ''
    return { quote, eventLog, vmConfig }
  }
  return Object.freeze({
    name: 'dstack',
    teeType: 'tdx' as const,
    async getQuote(reportData: Uint8Array): Promise<Uint8Array> {
      return (await fetchQuote(reportData)).quote
    },
    quoteWithEvidence,
    async emitEvent(event: string, payload: Uint8Array): Promise<void> {
      await ask('/EmitEvent', { event, payload: bytesToHex(payload) })
    },
    async platformInfo(): Promise<PlatformInfo> {
      return platformInfoOf(await ask('/Info', {}))
    },
  })
}

/** Largest app-compose.json taken from the agent's Info (dstack bounds the compose file itself at a few hundred KB). */
export const MAX_APP_COMPOSE_CHARS = 64 * 1024
/** Largest device id and cloud vendor/product strings taken from the agent's Info. */
const MAX_PLATFORM_FIELD_CHARS = 256

/**
 * The CVM facts of a dstack agent's `Info` answer: `device_id`, `cloud_vendor`, `cloud_product`, and `app_compose`
 * from its `tcb_info` (a JSON string). A field that is absent, not a string, too long, or (device_id) not hex is "":
 * these are informational (nothing is decided on them), so a strange answer costs the field, not the route.
 */
export function platformInfoOf(answer: Record<string, unknown>): PlatformInfo {
  const text = (value: unknown, max: number) => (typeof value === 'string' && value.length <= max ? value : '')
  let appCompose = ''
  if (typeof answer.tcb_info === 'string' && answer.tcb_info.length <= 4 * MAX_APP_COMPOSE_CHARS) {
    try {
      const tcb = JSON.parse(answer.tcb_info) as unknown
      if (typeof tcb === 'object' && tcb !== null) appCompose = text((tcb as Record<string, unknown>).app_compose, MAX_APP_COMPOSE_CHARS)
    } catch {
      appCompose = ''
    }
  }
  const deviceId = text(answer.device_id, MAX_PLATFORM_FIELD_CHARS)
  return {
    deviceId: /^([0-9a-f]{2})*$/.test(deviceId) ? deviceId : '',
    appCompose,
    cloudVendor: text(answer.cloud_vendor, MAX_PLATFORM_FIELD_CHARS),
    cloudProduct: text(answer.cloud_product, MAX_PLATFORM_FIELD_CHARS),
  }
}
