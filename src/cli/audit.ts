// `keymanager audit` (docs/protocol.md#command-line): re-verify every quote the registry took. For the bootstrap and for each
// onboarding request it fetches the quote blob (checked against its on-chain versioned hash), decodes the envelope,
// verifies the quote with the production verifier and checks that it binds exactly what the chain recorded. A
// fulfilled request whose quote does not hold means a helper gave the master secret away: exit 1. Requests refused
// and never fulfilled are listed but are not failures. The TCB policy and allow-list are evaluated as they stand now.
// Each entry names the settingsDigest the node's quote binds (docs/protocol.md#measured-settings): which measured settings
// every node ever onboarded runs with.
//
// After pruning (docs/protocol.md#limits): blobs come from several sources, tried in order: node archives (`--archive`,
// a node's data directory or database file, read only), the beacon node or anvil (`--blobs`), then peers' public
// archives (`--peer`, a node's host listener); every blob is checked against its on-chain versioned hash, so any
// source will do. Each quote is judged with the collateral of its time, in this order (the entry's `collateral` says
// which): the collateral the helper kept with its decision (src/tee/keptCollateral.ts), read from the same archives
// and peers, checked in full (hash, signatures, chain to the trusted root) and used at the time the helper judged;
// else the `--collateral` file whose window covers the quote's block time (src/tee/datedCollateral.ts); else (a PCCS
// serves only today's) the quote is judged now and the entry says so (`judgedAt`).
import { bytesToHex, createPublicClient, getAddress, http, isAddress, type Address, type Hex, type PublicClient } from 'viem'
import { chainFor } from '../chain/chain.ts'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { anvilBlobSource, beaconBlobSource, type BlobSource } from '../chain/beacon.ts'
import { fetchVerifiedBlobsWithFallback, peerArchiveBlobSource } from '../chain/peerBlobs.ts'
import { blobsToEnvelope } from '../chain/envelope.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { createRegistryClient, type OnboardRequest, type RegistryClient } from '../chain/registry.ts'
import { DEFAULT_MAX_LOG_RANGE, getLogsBounded } from '../chain/logs.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { bootstrapReportData, registerReportData } from '../keys/reportData.ts'
import { createDcapVerifier } from '../tee/dcap.ts'
import { datedCollateral } from '../tee/datedCollateral.ts'
import { checkPolicy } from '../tee/policy.ts'
import {
  KEPT_COLLATERAL_FAULTS,
  parseKeptCollateral,
  peerKeptCollateralSource,
  verifyWithKeptCollateral,
  type KeptCollateral,
  type KeptCollateralSource,
} from '../tee/keptCollateral.ts'
import { keptCollateralReader } from '../store/keptCollateral.ts'
import { QuoteVerificationError, type QuoteVerifier, type VerifiedQuote } from '../tee/types.ts'
import { parseFlags, UsageError } from './args.ts'
import { loadTrustedRoots, quoteVerifierFromOptions } from './quote.ts'

export const AUDIT_USAGE =
  'usage: keymanager audit --rpc URL --registry ADDR [--blobs URL [--blobs-kind anvil|beacon]] [--archive DIR]... [--peer URL]... [--from-block N] [--max-log-range BLOCKS] [--root-ca FILE]... [--pccs URL | --collateral F...] [--json]'

export type AuditEntry = {
  what: 'bootstrap' | `request ${string}`
  /** On-chain outcome: the secret went out (bootstrapped / fulfilled / confirmed) or not (pending / expired). */
  onChain: string
  /** The block of the quote's blob transaction (decimal) and its timestamp (unix seconds): the time it is judged at. */
  block: string
  blockTime: number
  ok: boolean
  reason: string | null
  measurementId: Hex | null
  /** The settingsDigest the envelope carries; bound by the quote when `ok`. */
  settingsDigest: Hex | null
  status: string | null
  /** The on-chain policy and allow-list applied today. */
  policyNow: string
  /**
   * `decision time`: with the collateral kept with the helper's decision, at the time the helper judged it; `block time`:
   * at its block's time with the collateral of then; `now`: only newer collateral was at hand.
   */
  judgedAt: JudgedAt | null
  /** Which collateral judged it: `kept` with the decision, a dated `file`, or the `pccs`'s (today's). */
  collateral: CollateralUsed | null
  /** Kept collateral found for this quote but refused (forged, broken, or not valid when it claims), with why. */
  keptRefused: string | null
}

type JudgedAt = 'decision time' | 'block time' | 'now'
type CollateralUsed = 'kept' | 'file' | 'pccs'
type Verdict = { judgedAt: JudgedAt; collateral: CollateralUsed; keptRefused: string | null }

type Judged =
  | ({ ok: true; measurementId: Hex; settingsDigest: Hex; status: string; policyNow: string } & Verdict)
  | { ok: false; reason: string; measurementId: Hex | null; settingsDigest: Hex | null; status: string | null; judgedAt: JudgedAt | null; collateral: CollateralUsed | null; keptRefused: string | null }

/**
 * Judges the quote with the collateral kept with its decision, from the first source whose record reads back correctly
 * (src/tee/keptCollateral.ts `parseKeptCollateral`) and passes the DCAP checks on itself at the time it claims. A source
 * that fails, or whose collateral is itself bad (KEPT_COLLATERAL_FAULTS: forged, broken, another root, a time outside
 * the window), is noted and the next one tried, so one lying archive cannot hide another's genuine copy. Any other
 * failure is that collateral's verdict on the quote.
 */
async function judgeWithKept(
  sources: readonly KeptCollateralSource[],
  quoteBlobHash: Hex,
  quote: Uint8Array,
  window: Parameters<typeof verifyWithKeptCollateral>[2],
): Promise<{ verified?: VerifiedQuote; verdict?: QuoteVerificationError; refused: string[] }> {
  const refused: string[] = []
  for (const source of sources) {
    let kept: KeptCollateral
    try {
      const value = await source.get(quoteBlobHash)
      if (value === undefined) continue
      kept = parseKeptCollateral(value, quoteBlobHash)
    } catch (error) {
      refused.push(`${source.name}: ${error instanceof QuoteVerificationError ? `${error.reason}: ` : ''}${(error as Error).message}`)
      continue
    }
    try {
      return { verified: await verifyWithKeptCollateral(quote, kept, window), refused }
    } catch (error) {
      if (!(error instanceof QuoteVerificationError)) throw error
      if (!KEPT_COLLATERAL_FAULTS.has(error.reason)) return { verdict: error, refused }
      refused.push(`${source.name}: collateral ${kept.collateralHash}: ${error.reason}: ${error.message}`)
    }
  }
  return { refused }
}

async function judgeQuote(args: {
  registry: RegistryClient
  verifier: QuoteVerifier
  blobs: readonly BlobSource[]
  blockNumber: bigint
  blockHash: Hex
  blockTimestamp: bigint
  quoteBlobHash: Hex
  /** Where kept collateral is looked for, and the latest time the decision could have been made (request expiry or head). */
  kept: readonly KeptCollateralSource[]
  decidedBy: bigint
  trustedRootCaDer: readonly Uint8Array[]
  /** What judges without kept collateral: `file` (dated --collateral files) or `pccs` (today's). */
  fallback: 'file' | 'pccs'
  expect: (envelope: ReturnType<typeof blobsToEnvelope>) => { reportData: Uint8Array } | string
}): Promise<Judged> {
  let envelope
  try {
    const blobs = await fetchVerifiedBlobsWithFallback(args.blobs, {
      blockNumber: args.blockNumber,
      blockHash: args.blockHash,
      blockTimestamp: args.blockTimestamp,
      versionedHashes: [args.quoteBlobHash],
    })
    envelope = blobsToEnvelope(blobs)
  } catch (error) {
    // The first line, and the facts that say what to do (a pruned blob names the archives and peers to use).
    const { message, metaMessages } = error as Error & { metaMessages?: string[] }
    const facts = (metaMessages ?? []).filter((line) => line.length > 0).join('; ')
    return { ok: false, reason: `blob: ${message.split('\n')[0]}${facts ? ` (${facts})` : ''}`, measurementId: null, settingsDigest: null, status: null, judgedAt: null, collateral: null, keptRefused: null }
  }
  const settingsDigest = envelope.kind === 'onboard' ? null : bytesToHex(envelope.settingsDigest)
  const expected = args.expect(envelope)
  if (typeof expected === 'string') return { ok: false, reason: expected, measurementId: null, settingsDigest, status: null, judgedAt: null, collateral: null, keptRefused: null }
  const quote = envelope.kind === 'onboard' ? new Uint8Array() : envelope.quote
  let verified: VerifiedQuote | undefined
  // First the collateral the helper kept with its decision: untrusted until the verifier has checked it at that time.
  // One that is itself bad (KEPT_COLLATERAL_FAULTS) is refused, said so, and the quote judged as without it; any other
  // failure is that collateral's verdict on the quote.
  const withKept = await judgeWithKept(args.kept, args.quoteBlobHash, quote, {
    notBefore: Number(args.blockTimestamp),
    notAfter: Number(args.decidedBy),
    trustedRootCaDer: args.trustedRootCaDer,
  })
  const refusedKept = withKept.refused
  let verdict: Verdict = { judgedAt: 'block time', collateral: args.fallback, keptRefused: null }
  if (withKept.verdict)
    return {
      ok: false,
      reason: `${withKept.verdict.reason}: ${withKept.verdict.message}`,
      measurementId: null,
      settingsDigest,
      status: null,
      judgedAt: 'decision time',
      collateral: 'kept',
      keptRefused: refusedKept.length > 0 ? refusedKept.join('; ') : null,
    }
  if (withKept.verified) {
    verified = withKept.verified
    verdict = { judgedAt: 'decision time', collateral: 'kept', keptRefused: null }
  }
  if (refusedKept.length > 0) verdict.keptRefused = refusedKept.join('; ')
  if (!verified) {
    try {
      try {
        verified = await args.verifier.verify(quote, { now: Number(args.blockTimestamp) })
      } catch (error) {
        // Collateral issued after the quote's time cannot judge it then: judge it now, and say so.
        if (!(error instanceof QuoteVerificationError) || (error.reason !== 'collateral_not_yet_valid' && error.reason !== 'collateral_unavailable')) throw error
        verdict.judgedAt = 'now'
        verified = await args.verifier.verify(quote)
      }
    } catch (error) {
      if (error instanceof QuoteVerificationError)
        return { ok: false, reason: `${error.reason}: ${error.message}`, measurementId: null, settingsDigest, status: null, ...verdict }
      throw error
    }
  }
  if (!constantTimeEqual(verified.reportData, expected.reportData))
    return {
      ok: false,
      reason: 'report_data_mismatch: the quote does not bind what the chain recorded',
      measurementId: verified.measurementId,
      settingsDigest,
      status: verified.status,
      ...verdict,
    }
  const policy = await args.registry.tcbPolicy()
  const now = await checkPolicy(
    verified,
    { ...policy, isFmspcAllowed: (f: Hex) => args.registry.isFmspcAllowed(f), isMeasurementAllowed: (id: Hex) => args.registry.isMeasurementAllowed(id) },
    Math.floor(Date.now() / 1000),
  )
  return { ok: true, measurementId: verified.measurementId, settingsDigest: settingsDigest!, status: verified.status, policyNow: now.ok ? 'accepted' : now.reason, ...verdict }
}

export async function runAudit(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const { values } = parseFlags(argv, {
    rpc: { type: 'string' },
    registry: { type: 'string' },
    blobs: { type: 'string' },
    'blobs-kind': { type: 'string', default: 'beacon' },
    'from-block': { type: 'string', default: '0' },
    'max-log-range': { type: 'string', default: String(DEFAULT_MAX_LOG_RANGE) },
    'root-ca': { type: 'string', multiple: true },
    pccs: { type: 'string' },
    collateral: { type: 'string', multiple: true },
    archive: { type: 'string', multiple: true },
    peer: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  })
  const archives = values.archive ?? []
  const peers = values.peer ?? []
  if (!values.rpc || !values.registry) throw new UsageError(`--rpc and --registry are required\n${AUDIT_USAGE}`)
  if (!values.blobs && archives.length === 0 && peers.length === 0)
    throw new UsageError(`give at least one blob source: --blobs, --archive or --peer\n${AUDIT_USAGE}`)
  const urls: [string, string][] = [['--rpc', values.rpc], ...(values.blobs ? [['--blobs', values.blobs] as [string, string]] : []), ...peers.map((p) => ['--peer', p] as [string, string])]
  for (const [flag, value] of urls) {
    try {
      if (!/^https?:$/.test(new URL(value).protocol)) throw new Error()
    } catch {
      throw new UsageError(`${flag} must be an http(s) URL`)
    }
  }
  if (!isAddress(values.registry, { strict: false })) throw new UsageError('--registry must be a 0x address')
  if (values['blobs-kind'] !== 'anvil' && values['blobs-kind'] !== 'beacon') throw new UsageError('--blobs-kind must be anvil or beacon')
  if (!/^\d{1,20}$/.test(values['from-block'])) throw new UsageError('--from-block must be a block number')
  if (!/^\d{1,7}$/.test(values['max-log-range']) || Number(values['max-log-range']) < 1) throw new UsageError('--max-log-range must be a number of blocks, 1 or more')
  const maxLogRange = Number(values['max-log-range'])
  if (values.pccs && values.collateral) throw new UsageError('give --pccs or --collateral, not both')
  const archiveFiles = archives.map((path) => {
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'keymanager.sqlite') : path
    if (!existsSync(file)) throw new UsageError(`--archive ${path}: no node database there (a node's data directory or its keymanager.sqlite)`)
    return file
  })

  const { verifier: pccsVerifier } = quoteVerifierFromOptions(
    {
      ...(values['root-ca'] ? { trustedRootCaFiles: values['root-ca'] } : {}),
      ...(values.pccs ? { pccsUrl: values.pccs } : {}),
    },
    (_roots, message) => err(`warning: ${message}`),
  )
  // Collateral files: the one valid at each quote's time (src/tee/datedCollateral.ts).
  const trustedRootCaDer = loadTrustedRoots(values['root-ca']).map((r) => r.der)
  const verifier = values.collateral ? createDcapVerifier({ collateral: datedCollateral(values.collateral), trustedRootCaDer }) : pccsVerifier
  const fallback = values.collateral ? 'file' : 'pccs'
  const transport = http(values.rpc)
  const chainId = await createPublicClient({ transport }).getChainId()
  const chain = chainFor(chainId, values.rpc)
  const publicClient = createPublicClient({ chain, transport })
  const address: Address = getAddress(values.registry.toLowerCase())
  const fromBlock = BigInt(values['from-block'])
  const registry = createRegistryClient({ publicClient, address })
  const blobs: BlobSource[] = [
    ...archiveFiles.map(archiveBlobSource),
    ...(values.blobs ? [values['blobs-kind'] === 'anvil' ? anvilBlobSource(values.blobs) : beaconBlobSource(values.blobs, { chainId })] : []),
    ...peers.map((peer) => peerArchiveBlobSource(peer)),
  ]
  // Kept collateral lives beside the blobs: in the same archives, and at the same peers.
  const kept: KeptCollateralSource[] = [...archiveFiles.map(archiveKeptCollateralSource), ...peers.map((peer) => peerKeptCollateralSource(peer))]
  const blockTime = async (blockNumber: bigint) => (await publicClient.getBlock({ blockNumber })).timestamp

  const entries: AuditEntry[] = []
  // Every registry event since the deployment block, read range by range (docs/protocol.md#limits).
  const head = await publicClient.getBlockNumber()
  err(`reading registry events from block ${fromBlock} to ${head}, ${maxLogRange} blocks per request…`)
  const headTime = await blockTime(head)
  const logs = await getLogsBounded({
    publicClient: publicClient as PublicClient,
    address,
    abi: keyManagerAbi,
    eventNames: ['Bootstrapped', 'OnboardRequested'],
    fromBlock,
    toBlock: head,
    maxRange: maxLogRange,
  })
  for (const log of logs.filter((l) => l.eventName === 'Bootstrapped')) {
    const a = log.args as unknown as { masterPubkey: Hex; quoteBlobHash: Hex }
    err(`checking the bootstrap quote (block ${log.blockNumber})…`)
    const blockTimestamp = await blockTime(log.blockNumber!)
    const judged = await judgeQuote({
      registry,
      verifier,
      blobs,
      blockNumber: log.blockNumber!,
      blockHash: log.blockHash!,
      blockTimestamp,
      quoteBlobHash: a.quoteBlobHash,
      // Nobody judges the bootstrap quote before it is taken: kept collateral for it could only claim its block's time.
      kept,
      decidedBy: blockTimestamp,
      trustedRootCaDer,
      fallback,
      expect: (envelope) =>
        envelope.kind !== 'bootstrap'
          ? `bad_envelope: expected bootstrap, got ${envelope.kind}`
          : { reportData: bootstrapReportData({ chainId, registry: address, masterPubkey64: a.masterPubkey, settingsDigest: envelope.settingsDigest }) },
    })
    entries.push({ what: 'bootstrap', onChain: 'bootstrapped', block: String(log.blockNumber), blockTime: Number(blockTimestamp), ...entryOf(judged) })
  }
  const requests = logs
    .filter((l) => l.eventName === 'OnboardRequested')
    .map((log) => ({ ...(log.args as unknown as Omit<OnboardRequest, 'blockNumber' | 'blockHash' | 'transactionHash'>), blockNumber: log.blockNumber!, blockHash: log.blockHash! }))
  for (const request of requests) {
    err(`checking request ${request.requestId} (block ${request.blockNumber})…`)
    const blockTimestamp = await blockTime(request.blockNumber)
    const stored = await registry.getRequest(request.requestId)
    // A helper decides before the request expires (fulfillOnboard reverts after): the latest time it can have judged.
    const decidedBy = stored.expiresAt > 0n && stored.expiresAt < head ? await blockTime(stored.expiresAt) : headTime
    const judged = await judgeQuote({
      registry,
      verifier,
      blobs,
      blockNumber: request.blockNumber,
      blockHash: request.blockHash,
      blockTimestamp,
      quoteBlobHash: request.quoteBlobHash,
      kept,
      decidedBy,
      trustedRootCaDer,
      fallback,
      expect: (envelope) => {
        if (envelope.kind !== 'register') return `bad_envelope: expected register, got ${envelope.kind}`
        return {
          reportData: registerReportData({
            chainId,
            registry: address,
            pubkey64: request.pubkey64,
            refBlockNumber: request.refBlockNumber,
            refBlockHash: request.refBlockHash,
            settingsDigest: envelope.settingsDigest,
          }),
        }
      },
    })
    entries.push({ what: `request ${request.requestId}`, onChain: stored.status, block: String(request.blockNumber), blockTime: Number(blockTimestamp), ...entryOf(judged) })
  }

  // The secret went out for the bootstrap and for every fulfilled or confirmed request: those quotes must hold.
  const breaches = entries.filter((e) => !e.ok && (e.onChain === 'bootstrapped' || e.onChain === 'fulfilled' || e.onChain === 'confirmed'))
  if (values.json) out(JSON.stringify({ chainId, registry: address, ok: breaches.length === 0, entries }, null, 2))
  else {
    for (const e of entries)
      out(
        `${e.ok ? '[ok]  ' : e.onChain === 'pending' ? '[refused]' : '[FAIL]'} ${e.what} (${e.onChain}, block ${e.block}): ${
          e.ok
            ? `${e.status} at ${e.judgedAt} with ${e.collateral === 'kept' ? 'the collateral kept with the decision' : e.collateral === 'file' ? 'a dated collateral file' : "the PCCS's collateral"}, measurement ${e.measurementId}, settings ${e.settingsDigest}, policy now ${e.policyNow}`
            : e.reason
        }${e.keptRefused ? ` [kept collateral refused: ${e.keptRefused}]` : ''}`,
      )
    out(breaches.length === 0 ? `audit passed: ${entries.length} quotes, every secret handed out went to a verified quote` : `AUDIT FAILED: ${breaches.length} secret(s) went to quotes that do not verify`)
  }
  return breaches.length === 0 ? 0 : 1
}

function entryOf(judged: Judged): Omit<AuditEntry, 'what' | 'onChain' | 'block' | 'blockTime'> {
  return judged.ok
    ? { ok: true, reason: null, measurementId: judged.measurementId, settingsDigest: judged.settingsDigest, status: judged.status, policyNow: judged.policyNow, judgedAt: judged.judgedAt, collateral: judged.collateral, keptRefused: judged.keptRefused }
    : { ok: false, reason: judged.reason, measurementId: judged.measurementId, settingsDigest: judged.settingsDigest, status: judged.status, policyNow: '-', judgedAt: judged.judgedAt, collateral: judged.collateral, keptRefused: judged.keptRefused }
}

/**
 * A node's blob archive (docs/protocol.md#node-state), opened read only: the blobs it used, by versioned hash. The
 * caller checks each against its on-chain hash like any other source's.
 */
function archiveBlobSource(file: string): BlobSource {
  let db: Database.Database | undefined
  return {
    async fetchBlobs({ versionedHashes }) {
      db ??= new Database(file, { readonly: true, fileMustExist: true })
      const get = db.prepare<[string], { data: Buffer }>('SELECT data FROM blobs WHERE versioned_hash = ?')
      return versionedHashes.flatMap((hash) => {
        const row = get.get(hash.toLowerCase())
        return row ? [new Uint8Array(row.data)] : []
      })
    },
  }
}

/**
 * The collateral a node's archive kept with its decisions (docs/protocol.md#node-state), read only; a database from a
 * build that kept none has none. Untrusted like the rest of the archive: the caller checks it in full.
 */
function archiveKeptCollateralSource(file: string): KeptCollateralSource {
  let reader: ReturnType<typeof keptCollateralReader> | undefined
  return {
    name: `archive ${file}`,
    async get(quoteBlobHash: Hex): Promise<unknown> {
      reader ??= keptCollateralReader(new Database(file, { readonly: true, fileMustExist: true }))
      const row = reader.get(quoteBlobHash)
      if (!row) return undefined
      let collateral: unknown
      try {
        collateral = JSON.parse(row.collateral)
      } catch {
        throw new QuoteVerificationError('collateral_invalid', 'kept collateral is not JSON')
      }
      return { quoteBlobHash: row.quoteBlobHash, collateralHash: row.collateralHash, judgedAt: row.judgedAt, collateral }
    },
  }
}
