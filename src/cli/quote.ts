// `keymanager quote verify|measure` (docs/protocol.md#command-line), and the one place that turns a node's `quote` config (trusted
// roots, collateral source) into a `QuoteVerifier`, so `serve` and the CLI verify with the same code and trust.
//
// Trust is explicit: Intel's SGX Root CA unless root CA files are given (config `quote.trustedRootCaFiles`, CLI
// `--root-ca FILE`); then exactly those. Any root that is not Intel's is reported (a node logs it once at start, the
// CLI prints it on stderr), because a devnet root makes every quote its key signs acceptable.
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { bytesToHex } from 'viem'
import { fileCollateral, pccsCollateral, type Collateral, type CollateralCache, type CollateralRequest, type CollateralSource } from '../tee/collateral.ts'
import { createDcapVerifier, INTEL_SGX_ROOT_CA_DER } from '../tee/dcap.ts'
import { measurementOf } from '../tee/measurement.ts'
import { QuoteVerificationError, type QuoteVerifier } from '../tee/types.ts'
import { parseFlags, UsageError } from './args.ts'

export const QUOTE_USAGE =
  'usage: keymanager quote verify FILE [--collateral F | --pccs URL] [--root-ca FILE]... [--now UNIX] [--json] | quote measure FILE [--json]'

/** Intel PCS (API v4): where collateral comes from when neither a file nor a PCCS is named. */
export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com'

/** A quote is a few KiB; anything past this is not one. */
const MAX_QUOTE_FILE_BYTES = 1024 * 1024

export type TrustedRoot = { der: Uint8Array; subject: string; sha256: string; intel: boolean; file?: string }

const describeRoot = (der: Uint8Array, file?: string): TrustedRoot => {
  const cert = new X509Certificate(der)
  return {
    der,
    subject: cert.subject.replace(/\n/g, ', '),
    sha256: createHash('sha256').update(der).digest('hex'),
    intel: Buffer.from(der).equals(Buffer.from(INTEL_SGX_ROOT_CA_DER)),
    ...(file ? { file } : {}),
  }
}

/**
 * Reads root CA certificates (PEM or DER, one per file). No files: Intel's SGX Root CA. Throws a TypeError naming the
 * file when one cannot be read or is not a self-signed CA certificate.
 */
export function loadTrustedRoots(files: readonly string[] | undefined): TrustedRoot[] {
  if (!files || files.length === 0) return [describeRoot(INTEL_SGX_ROOT_CA_DER)]
  return files.map((file) => {
    let bytes: Buffer
    try {
      bytes = readFileSync(file)
    } catch (error) {
      throw new TypeError(`root CA file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
    let cert: X509Certificate
    try {
      cert = new X509Certificate(bytes)
    } catch {
      throw new TypeError(`root CA file ${file}: not a PEM or DER certificate`)
    }
    if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) throw new TypeError(`root CA file ${file}: not a self-signed CA certificate`)
    return describeRoot(new Uint8Array(cert.raw), file)
  })
}

export type QuoteTrustOptions = {
  /** Root CA files; absent or empty: Intel's SGX Root CA only. */
  trustedRootCaFiles?: readonly string[]
  /** Collateral from this PCCS / PCS; with neither this nor `collateralFile`, Intel PCS. */
  pccsUrl?: string
  /** Collateral from one JSON file (dcap-qvl's `getCollateral` shape). */
  collateralFile?: string
  /** Where PCCS collateral is kept (a node's SQLite cache); default in memory. */
  cache?: CollateralCache
  /** Told each collateral the verifier is given (the node's platform check reads its expiry and TCB evaluation number). */
  onCollateral?: (request: CollateralRequest, collateral: Collateral) => void
}

/**
 * The production verifier over the configured trust and collateral source. `warn` is called once, before anything
 * is verified, when a root other than Intel's is trusted.
 */
export function quoteVerifierFromOptions(
  options: QuoteTrustOptions,
  warn: (roots: Omit<TrustedRoot, 'der'>[], message: string) => void = () => {},
): { verifier: QuoteVerifier; roots: TrustedRoot[]; collateral: string } {
  if (options.pccsUrl && options.collateralFile) throw new TypeError('give a PCCS URL or a collateral file, not both')
  const roots = loadTrustedRoots(options.trustedRootCaFiles)
  let source: CollateralSource
  let collateral: string
  if (options.collateralFile) {
    source = fileCollateral(options.collateralFile)
    collateral = `file ${options.collateralFile}`
  } else {
    const url = options.pccsUrl ?? INTEL_PCS_URL
    source = pccsCollateral({ url, ...(options.cache ? { cache: options.cache } : {}) })
    collateral = `PCCS ${url}`
  }
  const { onCollateral } = options
  const observed: CollateralSource = onCollateral
    ? {
        async get(request) {
          const got = await source.get(request)
          onCollateral(request, got)
          return got
        },
      }
    : source
  const verifier = createDcapVerifier({ collateral: observed, trustedRootCaDer: roots.map((r) => r.der) })
  const foreign = roots.filter((r) => !r.intel)
  if (foreign.length > 0) {
    warn(
      foreign.map(({ der: _der, ...rest }) => rest),
      `TRUSTING A ROOT CA THAT IS NOT INTEL'S: quotes under ${foreign.map((r) => `"${r.subject}" (sha256 ${r.sha256.slice(0, 16)}…)`).join(', ')} are accepted (devnets only)`,
    )
  }
  return { verifier, roots, collateral }
}

const writeErr = (line: string) => void process.stderr.write(line + '\n')

/** Reads a quote file: binary, or hex text (0x optional, whitespace ignored). Faults are usage errors. */
export function readQuoteFile(path: string): Uint8Array {
  let bytes: Buffer
  try {
    if (statSync(path).size > MAX_QUOTE_FILE_BYTES) throw new UsageError(`${path}: larger than ${MAX_QUOTE_FILE_BYTES} bytes, not a quote`)
    bytes = readFileSync(path)
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
  }
  if (bytes.length === 0) throw new UsageError(`${path}: empty file`)
  const text = bytes.toString('latin1').replace(/\s+/g, '')
  if (/^(0x)?([0-9a-fA-F]{2})+$/.test(text)) return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'))
  return new Uint8Array(bytes)
}

function parseNow(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const now = Number(value)
  if (!/^[0-9]{1,15}$/.test(value) || !Number.isSafeInteger(now)) throw new UsageError(`--now must be unix seconds, got '${value}'`)
  return now
}

function onePositional(positionals: string[], verb: string): string {
  if (positionals.length !== 1) throw new UsageError(`quote ${verb} takes one FILE, got ${positionals.length}`)
  return positionals[0]!
}

async function verifyCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    collateral: { type: 'string' },
    pccs: { type: 'string' },
    'root-ca': { type: 'string', multiple: true },
    now: { type: 'string' },
    json: { type: 'boolean', default: false },
  })
  const file = onePositional(positionals, 'verify')
  const now = parseNow(values.now)
  if (values.collateral !== undefined && values.pccs !== undefined) throw new UsageError('give --collateral or --pccs, not both')
  if (values.collateral !== undefined) {
    try {
      statSync(values.collateral)
    } catch (error) {
      throw new UsageError(`--collateral ${values.collateral}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  if (values.pccs !== undefined && !/^https?:\/\/[^\s]+$/.test(values.pccs)) throw new UsageError(`--pccs must be an http(s) URL, got '${values.pccs}'`)
  const quote = readQuoteFile(file)
  let setup: ReturnType<typeof quoteVerifierFromOptions>
  try {
    setup = quoteVerifierFromOptions(
      {
        ...(values['root-ca'] ? { trustedRootCaFiles: values['root-ca'] } : {}),
        ...(values.collateral !== undefined ? { collateralFile: values.collateral } : {}),
        ...(values.pccs !== undefined ? { pccsUrl: values.pccs } : {}),
      },
      (_roots, message) => err(`warning: ${message}`),
    )
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message)
    throw error
  }
  if (!setup.collateral.startsWith('file ')) err(`fetching collateral from ${setup.collateral.slice('PCCS '.length)} …`)

  let verified
  try {
    verified = await setup.verifier.verify(quote, now === undefined ? {} : { now })
  } catch (error) {
    if (!(error instanceof QuoteVerificationError)) throw error
    if (values.json) out(JSON.stringify({ error: { reason: error.reason, message: error.message } }))
    err(`keymanager quote: verification failed: ${error.reason}: ${error.message}`)
    return 1
  }
  const reportData = bytesToHex(verified.reportData)
  if (values.json) {
    const { teeType, status, advisoryIds, fmspc, measurements, measurementId } = verified
    out(JSON.stringify({ teeType, status, advisoryIds, fmspc, measurements, measurementId, reportData }, null, 2))
    return 0
  }
  const rows: [string, string][] = [
    ['fmspc', verified.fmspc.slice(2)],
    ['advisories', verified.advisoryIds.join(', ') || 'none'],
    ['measurement id', verified.measurementId],
    ...Object.entries(verified.measurements).map(([name, value]): [string, string] => [`  ${name}`, value]),
    ['report data', reportData],
    ['collateral', `${setup.collateral}, issued ${new Date(verified.collateralIssuedAt * 1000).toISOString().replace('.000Z', 'Z')}`],
  ]
  out(`✓ quote verified: ${verified.teeType.toUpperCase()}, TCB status ${verified.status}`)
  for (const [name, value] of rows) out(`  ${name.padEnd(16)} ${value}`)
  return 0
}

async function measureCommand(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean', default: false } })
  const quote = readQuoteFile(onePositional(positionals, 'measure'))
  let m
  try {
    m = measurementOf(quote)
  } catch (error) {
    if (!(error instanceof QuoteVerificationError)) throw error
    err(`keymanager quote: ${error.reason}: ${error.message}`)
    return 1
  }
  if (!values.json) {
    out(m.measurementId)
    return 0
  }
  const { teeType, version, measurementId, measurementRaw, measurements } = m
  out(JSON.stringify({ teeType, version, measurementId, measurementRaw, measurements, reportData: bytesToHex(m.reportData) }, null, 2))
  return 0
}

/**
 * `keymanager quote verify|measure …`. Exit 0; 1 when verification (or parsing, for `measure`) fails, with the reason on
 * one stderr line; 2 on bad flags or an unreadable file, also one line.
 */
export async function runQuote(argv: string[], out: (line: string) => void, err: (line: string) => void = writeErr): Promise<number> {
  const [verb, ...rest] = argv
  try {
    if (verb === 'verify') return await verifyCommand(rest, out, err)
    if (verb === 'measure') return await measureCommand(rest, out, err)
    throw new UsageError(verb === undefined ? QUOTE_USAGE.replace(/^usage: /, 'quote needs a command: ') : `unknown quote command '${verb}' (verify or measure)`)
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager quote: ${error.message}`)
      return 2
    }
    err(`keymanager quote: ${(error as Error).message.split('\n')[0]}`)
    return 1
  }
}
