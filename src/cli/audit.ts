// `keymanager audit` (docs/protocol.md#command-line): re-verify every quote the registry took. For the bootstrap and for each
// onboarding request it fetches the quote blob (checked against its on-chain versioned hash), decodes the envelope,
// verifies the quote with the production verifier and checks that it binds exactly what the chain recorded. A
// fulfilled request whose quote does not hold means a helper gave the master secret away: exit 1. Requests refused
// and never fulfilled are listed but are not failures. The TCB policy and allow-list are evaluated as they stand now.
// Each entry names the settingsDigest the node's quote binds (docs/protocol.md#measured-settings): which measured settings
// every node ever onboarded runs with.
import { bytesToHex, createPublicClient, getAddress, http, isAddress, type Address, type Hex, type PublicClient } from 'viem'
import { chainFor } from '../chain/chain.ts'
import { anvilBlobSource, beaconBlobSource, fetchVerifiedBlobs, type BlobSource } from '../chain/beacon.ts'
import { blobsToEnvelope } from '../chain/envelope.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { createRegistryClient, type OnboardRequest, type RegistryClient } from '../chain/registry.ts'
import { DEFAULT_MAX_LOG_RANGE, getLogsBounded } from '../chain/logs.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { bootstrapReportData, registerReportData } from '../keys/reportData.ts'
import { checkPolicy } from '../tee/policy.ts'
import { QuoteVerificationError, type QuoteVerifier } from '../tee/types.ts'
import { parseFlags, UsageError } from './args.ts'
import { quoteVerifierFromOptions } from './quote.ts'

export const AUDIT_USAGE =
  'usage: keymanager audit --rpc URL --registry ADDR --blobs URL [--blobs-kind anvil|beacon] [--from-block N] [--max-log-range BLOCKS] [--root-ca FILE]... [--pccs URL | --collateral F] [--json]'

export type AuditEntry = {
  what: 'bootstrap' | `request ${string}`
  /** On-chain outcome: the secret went out (bootstrapped / fulfilled / confirmed) or not (pending / expired). */
  onChain: string
  ok: boolean
  reason: string | null
  measurementId: Hex | null
  /** The settingsDigest the envelope carries; bound by the quote when `ok`. */
  settingsDigest: Hex | null
  status: string | null
  /** The on-chain policy and allow-list applied today. */
  policyNow: string
}

type Judged =
  | { ok: true; measurementId: Hex; settingsDigest: Hex; status: string; policyNow: string }
  | { ok: false; reason: string; measurementId: Hex | null; settingsDigest: Hex | null; status: string | null }

async function judgeQuote(args: {
  registry: RegistryClient
  verifier: QuoteVerifier
  blobs: BlobSource
  blockNumber: bigint
  blockHash: Hex
  blockTimestamp: bigint
  quoteBlobHash: Hex
  expect: (envelope: ReturnType<typeof blobsToEnvelope>) => { reportData: Uint8Array } | string
}): Promise<Judged> {
  let envelope
  try {
    const blobs = await fetchVerifiedBlobs(args.blobs, {
      blockNumber: args.blockNumber,
      blockHash: args.blockHash,
      blockTimestamp: args.blockTimestamp,
      versionedHashes: [args.quoteBlobHash],
    })
    envelope = blobsToEnvelope(blobs)
  } catch (error) {
    return { ok: false, reason: `blob: ${(error as Error).message.split('\n')[0]}`, measurementId: null, settingsDigest: null, status: null }
  }
  const settingsDigest = envelope.kind === 'onboard' ? null : bytesToHex(envelope.settingsDigest)
  const expected = args.expect(envelope)
  if (typeof expected === 'string') return { ok: false, reason: expected, measurementId: null, settingsDigest, status: null }
  let verified
  try {
    verified = await args.verifier.verify(envelope.kind === 'onboard' ? new Uint8Array() : envelope.quote)
  } catch (error) {
    if (error instanceof QuoteVerificationError)
      return { ok: false, reason: `${error.reason}: ${error.message}`, measurementId: null, settingsDigest, status: null }
    throw error
  }
  if (!constantTimeEqual(verified.reportData, expected.reportData))
    return {
      ok: false,
      reason: 'report_data_mismatch: the quote does not bind what the chain recorded',
      measurementId: verified.measurementId,
      settingsDigest,
      status: verified.status,
    }
  const policy = await args.registry.tcbPolicy()
  const now = await checkPolicy(
    verified,
    { ...policy, isFmspcAllowed: (f: Hex) => args.registry.isFmspcAllowed(f), isMeasurementAllowed: (id: Hex) => args.registry.isMeasurementAllowed(id) },
    Math.floor(Date.now() / 1000),
  )
  return { ok: true, measurementId: verified.measurementId, settingsDigest: settingsDigest!, status: verified.status, policyNow: now.ok ? 'accepted' : now.reason }
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
    collateral: { type: 'string' },
    json: { type: 'boolean', default: false },
  })
  if (!values.rpc || !values.registry || !values.blobs) throw new UsageError(`--rpc, --registry and --blobs are required\n${AUDIT_USAGE}`)
  for (const [flag, value] of [['--rpc', values.rpc], ['--blobs', values.blobs]] as const) {
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

  const { verifier } = quoteVerifierFromOptions(
    {
      ...(values['root-ca'] ? { trustedRootCaFiles: values['root-ca'] } : {}),
      ...(values.pccs ? { pccsUrl: values.pccs } : {}),
      ...(values.collateral ? { collateralFile: values.collateral } : {}),
    },
    (_roots, message) => err(`warning: ${message}`),
  )
  const transport = http(values.rpc)
  const chainId = await createPublicClient({ transport }).getChainId()
  const chain = chainFor(chainId, values.rpc)
  const publicClient = createPublicClient({ chain, transport })
  const address: Address = getAddress(values.registry.toLowerCase())
  const fromBlock = BigInt(values['from-block'])
  const registry = createRegistryClient({ publicClient, address })
  const blobs = values['blobs-kind'] === 'anvil' ? anvilBlobSource(values.blobs) : beaconBlobSource(values.blobs)
  const blockTime = async (blockNumber: bigint) => (await publicClient.getBlock({ blockNumber })).timestamp

  const entries: AuditEntry[] = []
  // Every registry event since the deployment block, read range by range (docs/protocol.md#limits).
  const head = await publicClient.getBlockNumber()
  err(`reading registry events from block ${fromBlock} to ${head}, ${maxLogRange} blocks per request…`)
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
    const judged = await judgeQuote({
      registry,
      verifier,
      blobs,
      blockNumber: log.blockNumber!,
      blockHash: log.blockHash!,
      blockTimestamp: await blockTime(log.blockNumber!),
      quoteBlobHash: a.quoteBlobHash,
      expect: (envelope) =>
        envelope.kind !== 'bootstrap'
          ? `bad_envelope: expected bootstrap, got ${envelope.kind}`
          : { reportData: bootstrapReportData({ chainId, registry: address, masterPubkey64: a.masterPubkey, settingsDigest: envelope.settingsDigest }) },
    })
    entries.push({ what: 'bootstrap', onChain: 'bootstrapped', ...entryOf(judged) })
  }
  const requests = logs
    .filter((l) => l.eventName === 'OnboardRequested')
    .map((log) => ({ ...(log.args as unknown as Omit<OnboardRequest, 'blockNumber' | 'blockHash' | 'transactionHash'>), blockNumber: log.blockNumber!, blockHash: log.blockHash! }))
  for (const request of requests) {
    err(`checking request ${request.requestId} (block ${request.blockNumber})…`)
    const judged = await judgeQuote({
      registry,
      verifier,
      blobs,
      blockNumber: request.blockNumber,
      blockHash: request.blockHash,
      blockTimestamp: await blockTime(request.blockNumber),
      quoteBlobHash: request.quoteBlobHash,
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
    const stored = await registry.getRequest(request.requestId)
    entries.push({ what: `request ${request.requestId}`, onChain: stored.status, ...entryOf(judged) })
  }

  // The secret went out for the bootstrap and for every fulfilled or confirmed request: those quotes must hold.
  const breaches = entries.filter((e) => !e.ok && (e.onChain === 'bootstrapped' || e.onChain === 'fulfilled' || e.onChain === 'confirmed'))
  if (values.json) out(JSON.stringify({ chainId, registry: address, ok: breaches.length === 0, entries }, null, 2))
  else {
    for (const e of entries)
      out(
        `${e.ok ? '[ok]  ' : e.onChain === 'pending' ? '[refused]' : '[FAIL]'} ${e.what} (${e.onChain}): ${
          e.ok ? `${e.status}, measurement ${e.measurementId}, settings ${e.settingsDigest}, policy now ${e.policyNow}` : e.reason
        }`,
      )
    out(breaches.length === 0 ? `audit passed: ${entries.length} quotes, every secret handed out went to a verified quote` : `AUDIT FAILED: ${breaches.length} secret(s) went to quotes that do not verify`)
  }
  return breaches.length === 0 ? 0 : 1
}

function entryOf(judged: Judged): Omit<AuditEntry, 'what' | 'onChain'> {
  return judged.ok
    ? { ok: true, reason: null, measurementId: judged.measurementId, settingsDigest: judged.settingsDigest, status: judged.status, policyNow: judged.policyNow }
    : { ok: false, reason: judged.reason, measurementId: judged.measurementId, settingsDigest: judged.settingsDigest, status: judged.status, policyNow: '-' }
}
