// `keymanager guardian keygen|verify|release` (docs/protocol.md#guardians, docs/protocol.md#recovery): a guardian's side of
// escrow and recovery, run on the guardian's own machine with its own key file.
//   guardian keygen --key-file F                       a new guardian key (file mode 0600); prints the 64-byte public key
//                                                      the owner passes to setGuardians
//   guardian verify  --guardian-key-file F [--generation G] …view flags
//                                                      open this guardian's share of each escrowed generation and check
//                                                      it against the escrow's Feldman commitments; exit 1 when one fails
//   guardian release --guardian-key-file F --gas-key-file F --blobs URL [--pccs URL] [--root-ca F]… [--generation G] …view flags
//                                                      judge the open recovery's request (quote, TCB policy, measurement
//                                                      allowed) on a fresh verified view, then re-encrypt this guardian's
//                                                      shares to its key and send releaseShare
// View flags: --rpc URL --registry ADDR, and either --view-settings FILE --beacon URL (a light client from the settings'
// checkpoint: the JSON of a node's measured `chainView`), or --insecure-trusted-rpc (devnets only: believes the RPC).
//
// The RPC, the beacon node and the blob source are untrusted here as on a node (docs/protocol.md#actors-and-trust): the
// guardian decides only on slots proven at a verified header that holds a freshness mark it made for this release
// (docs/protocol.md#verified-chain-view), on the DCAP-verified quote, and on logs checked against proven hashes.
// Exit 0; 1 when a check fails or the chain refuses (one line naming the reason); 2 on bad flags (one line).
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import pino from 'pino'
import { bytesToHex, createPublicClient, createWalletClient, getAddress, hexToBytes, http, keccak256, type Address, type Hex, type PublicClient } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { anvilBlobSource, beaconBlobSource, BlobHashMismatchError } from '../chain/beacon.ts'
import { chainFor } from '../chain/chain.ts'
import { blobsToEnvelope, type Envelope } from '../chain/envelope.ts'
import { createGenerationsClient, generationCalldata } from '../chain/generations.ts'
import { createLightClientHeaderSource } from '../chain/lightClient/lightClient.ts'
import { chainOfSettings } from '../chain/lightClient/chains.ts'
import { lightClientSettingsSchema } from '../chain/lightClient/settings.ts'
import { fetchVerifiedBlobsWithFallback } from '../chain/peerBlobs.ts'
import { createRegistryClient } from '../chain/registry.ts'
import { createChainView, type ChainView, type ViewHeader } from '../chain/view/chainView.ts'
import { ChainViewError } from '../chain/view/errors.ts'
import { createFreshness, type FreshView } from '../chain/view/freshness.ts'
import { EscrowError, guardianAddress, openEscrowShare, releaseShare, type EscrowDomain } from '../keys/escrow.ts'
import { publicKey64 } from '../keys/signature.ts'
import { createJudge, Refusal } from '../node/judge.ts'
import { provenEscrow } from '../node/escrow.ts'
import { parseFlags, UsageError } from './args.ts'
import { logRange, short } from './policy.ts'
import { quoteVerifierFromOptions } from './quote.ts'
import { parseSettingsJson } from '../config.ts'

export const GUARDIAN_USAGE =
  'usage: keymanager guardian keygen --key-file F | guardian verify|release --guardian-key-file F --rpc URL --registry ADDR (--view-settings F --beacon URL | --insecure-trusted-rpc) [--generation G] [--from-block N] [--max-log-range BLOCKS] [--json]; release also --gas-key-file F --blobs URL [--blobs-kind anvil|beacon] [--pccs URL] [--root-ca F]...'

const FLAGS = {
  'key-file': { type: 'string' },
  'guardian-key-file': { type: 'string' },
  'gas-key-file': { type: 'string' },
  rpc: { type: 'string' },
  registry: { type: 'string' },
  'view-settings': { type: 'string' },
  beacon: { type: 'string' },
  'insecure-trusted-rpc': { type: 'boolean', default: false },
  generation: { type: 'string' },
  blobs: { type: 'string' },
  'blobs-kind': { type: 'string', default: 'beacon' },
  pccs: { type: 'string' },
  'root-ca': { type: 'string', multiple: true },
  'freshness-timeout': { type: 'string', default: '1800' },
  'max-reference-age': { type: 'string', default: '64' },
  'from-block': { type: 'string' },
  'max-log-range': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>['values']

/** Thrown for a check that failed (exit 1), with a stable reason first. */
class GuardianFailure extends Error {}

function readKeyFile(file: string | undefined, flag: string): Uint8Array {
  if (file === undefined) throw new UsageError(`--${flag} F is required`)
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (error) {
    throw new UsageError(`--${flag}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(text)) throw new UsageError(`--${flag} must hold 0x followed by 64 hex digits`)
  const key = hexToBytes(text as Hex)
  if (!secp256k1.utils.isValidSecretKey(key)) throw new UsageError(`--${flag} does not hold a valid secp256k1 private key`)
  return key
}

function parseGeneration(value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined
  if (!/^[1-9][0-9]{0,18}$/.test(value) || BigInt(value) >= 1n << 64n) throw new UsageError(`--generation must be an integer from 1 to 2^64-1, got '${value}'`)
  return BigInt(value)
}

function parseUrl(value: string | undefined, flag: string): string {
  if (value === undefined) throw new UsageError(`--${flag} URL is required`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--${flag} must be an http(s) URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${flag} must be an http(s) URL`)
  return value
}

/** The guardian's verified chain view: a light client from its own settings file, or (devnets) the RPC believed. */
async function openView(values: Values, err: (line: string) => void) {
  const rpc = parseUrl(values.rpc, 'rpc')
  if (!values.registry || !/^0x[0-9a-fA-F]{40}$/.test(values.registry)) throw new UsageError('--registry must be the registry address (0x and 40 hex digits)')
  const registry = getAddress(values.registry.toLowerCase())
  // Event hints (requests, guardian sets, escrows) are read from --from-block, the registry's deployment block.
  const { fromBlock, maxLogRange } = logRange(values)
  const trusted = values['insecure-trusted-rpc']
  if (trusted && (values['view-settings'] !== undefined || values.beacon !== undefined)) throw new UsageError('--insecure-trusted-rpc takes no --view-settings or --beacon')
  let settings: ReturnType<typeof parseViewSettings> | undefined
  if (!trusted) {
    if (values['view-settings'] === undefined) throw new UsageError('give --view-settings FILE (the chain view a node measures: registryCodeHash and lightClient) and --beacon URL, or --insecure-trusted-rpc on a devnet')
    settings = parseViewSettings(values['view-settings'])
    parseUrl(values.beacon, 'beacon')
  }
  const transport = http(rpc)
  const chainId = await createPublicClient({ transport }).getChainId()
  const publicClient = createPublicClient({ chain: chainFor(chainId, rpc), transport }) as PublicClient
  const logger = pino({ level: 'warn' }, pino.destination(2))
  let view: ChainView
  if (trusted || !settings) {
    err('INSECURE: --insecure-trusted-rpc believes every answer of the RPC (devnets only); a lying RPC can make this guardian release its share')
    view = createChainView({ mode: 'trusted-rpc', rpc: publicClient, registry, registryCodeHash: keccak256((await publicClient.getCode({ address: registry })) ?? '0x'), logger })
  } else {
    const headers = createLightClientHeaderSource({
      chain: chainOfSettings(settings.lightClient),
      checkpointRoot: settings.lightClient.checkpointRoot,
      beaconUrl: values.beacon!,
      ...(settings.lightClient.optimisticConfirmations === undefined ? {} : { optimisticConfirmations: settings.lightClient.optimisticConfirmations }),
      logger,
    })
    view = createChainView({ mode: 'light-client', headers, rpc: publicClient, registry, registryCodeHash: settings.registryCodeHash, logger, headerStatus: () => headers.status() })
  }
  const generations = createGenerationsClient({ publicClient, address: registry, fromBlock, maxRange: maxLogRange })
  return { view, publicClient, registry, chainId, generations, rpc }
}

/** A node's measured `chainView` (light-client verification): registry code hash and light-client trust root. */
function parseViewSettings(file: string) {
  let json: unknown
  try {
    // As `keymanager init` writes it: whole-line `//` comments are dropped.
    json = parseSettingsJson(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new UsageError(`--view-settings: cannot read it as JSON (${(error as NodeJS.ErrnoException).code ?? (error as Error).message.split('\n')[0]})`)
  }
  const object = (json ?? {}) as Record<string, unknown>
  const view = (object.chainView ?? object) as Record<string, unknown>
  const verification = (object.chain as Record<string, unknown> | undefined)?.verification
  if (verification !== undefined && verification !== 'light-client') throw new UsageError('--view-settings: only light-client verification is read from a file (devnets: --insecure-trusted-rpc)')
  if (typeof view.registryCodeHash !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(view.registryCodeHash)) throw new UsageError('--view-settings: registryCodeHash must be 0x and 64 hex digits')
  const parsed = lightClientSettingsSchema.safeParse(view.lightClient)
  if (!parsed.success) throw new UsageError(`--view-settings: lightClient: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return { registryCodeHash: view.registryCodeHash.toLowerCase() as Hex, lightClient: parsed.data }
}

type Opened = Awaited<ReturnType<typeof openView>>

/** Generations to act on: the one named, else every unpurged generation with an escrow, at `header`. */
async function escrowedGenerations(opened: Opened, header: ViewHeader, only: bigint | undefined) {
  const current = (await opened.view.read(header, { master: true })).master().generation
  if (only !== undefined && only > current) throw new GuardianFailure(`unknown_generation: generation ${only} does not exist (current ${current})`)
  const list = only !== undefined ? [only] : Array.from({ length: Number(current) }, (_, i) => BigInt(i + 1))
  const state = await opened.view.read(header, { generations: list })
  return list.map((g) => state.generation(g))
}

async function guardianIndex(opened: Opened, header: ViewHeader, guardianSet: bigint, me: Address): Promise<number> {
  return (await opened.view.read(header, { guardianIndexes: [{ guardianSet, guardian: me }] })).guardianIndex(guardianSet, me)
}

async function keygen(values: Values, out: (line: string) => void): Promise<number> {
  const file = values['key-file']
  if (file === undefined) throw new UsageError('--key-file F is required (where the new guardian key is written)')
  const key = secp256k1.utils.randomSecretKey()
  let fd: number
  try {
    fd = openSync(file, 'wx', 0o600)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(code === 'EEXIST' ? `--key-file ${file} exists: a guardian key is never overwritten` : `--key-file: cannot create it (${code ?? 'error'})`)
  }
  try {
    writeSync(fd, `${bytesToHex(key)}\n`)
  } finally {
    closeSync(fd)
  }
  const pubkey64 = publicKey64(key)
  key.fill(0)
  const result = { pubkey64: bytesToHex(pubkey64), address: guardianAddress(pubkey64), keyFile: file }
  if (values.json) out(JSON.stringify(result, null, 2))
  else {
    out(`guardian key written to ${file} (mode 0600; keep it offline, it decrypts this guardian's shares)`)
    out(`public key ${result.pubkey64}`)
    out(`address    ${result.address}`)
    out('the owner lists the public keys, in order, in setGuardians(pubkeys, k)')
  }
  return 0
}

async function verify(values: Values, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const guardianKey = readKeyFile(values['guardian-key-file'], 'guardian-key-file')
  const only = parseGeneration(values.generation)
  const opened = await openView(values, err)
  const domain: EscrowDomain = { chainId: opened.chainId, registry: opened.registry }
  const me = guardianAddress(publicKey64(guardianKey))
  const header = await opened.view.head()
  const records = await escrowedGenerations(opened, header, only)
  const results: { generation: string; guardianSet: string | null; index: number | null; ok: boolean; reason: string | null }[] = []
  for (const record of records) {
    const g = record.generation.toString()
    if (record.purged || record.escrowGuardianSet === 0n) {
      if (only !== undefined) results.push({ generation: g, guardianSet: null, index: null, ok: false, reason: record.purged ? 'purged' : 'not_escrowed' })
      continue
    }
    const escrow = (await provenEscrow(domain, opened.generations, record))!
    const index = await guardianIndex(opened, header, escrow.guardianSet, me)
    if (index === 0) {
      results.push({ generation: g, guardianSet: escrow.guardianSet.toString(), index: null, ok: false, reason: 'not_a_guardian' })
      continue
    }
    try {
      const share = openEscrowShare(domain, escrow, { index, guardianKey })
      share.value.fill(0)
      results.push({ generation: g, guardianSet: escrow.guardianSet.toString(), index, ok: true, reason: null })
    } catch (error) {
      if (!(error instanceof EscrowError)) throw error
      results.push({ generation: g, guardianSet: escrow.guardianSet.toString(), index, ok: false, reason: error.reason })
    }
  }
  guardianKey.fill(0)
  if (results.length === 0) throw new GuardianFailure('not_escrowed: no generation is escrowed in the verified chain')
  const ok = results.every((r) => r.ok)
  if (values.json) out(JSON.stringify({ guardian: me, block: header.blockNumber.toString(), ok, generations: results }, null, 2))
  else
    for (const r of results)
      out(
        r.ok
          ? `✓ generation ${r.generation}: share ${r.index} of guardian set ${r.guardianSet} matches the escrow's commitments`
          : `✗ generation ${r.generation}: ${r.reason}${r.index ? ` (share ${r.index} of guardian set ${r.guardianSet})` : ''}`,
      )
  return ok ? 0 : 1
}

async function release(values: Values, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const guardianKey = readKeyFile(values['guardian-key-file'], 'guardian-key-file')
  const gasKey = readKeyFile(values['gas-key-file'], 'gas-key-file')
  const only = parseGeneration(values.generation)
  const blobsUrl = parseUrl(values.blobs, 'blobs')
  if (values['blobs-kind'] !== 'anvil' && values['blobs-kind'] !== 'beacon') throw new UsageError(`--blobs-kind is anvil or beacon, got '${values['blobs-kind']}'`)
  const timeoutSeconds = Number(values['freshness-timeout'])
  if (!/^[0-9]{1,5}$/.test(values['freshness-timeout']) || timeoutSeconds < 1 || timeoutSeconds > 86_400) throw new UsageError('--freshness-timeout is whole seconds from 1 to 86400')
  if (!/^[0-9]{1,3}$/.test(values['max-reference-age']) || Number(values['max-reference-age']) < 1 || Number(values['max-reference-age']) > 256)
    throw new UsageError('--max-reference-age is a number of blocks from 1 to 256')
  const { verifier } = quoteVerifierFromOptions(
    { ...(values['root-ca'] ? { trustedRootCaFiles: values['root-ca'] } : {}), ...(values.pccs ? { pccsUrl: values.pccs } : {}) },
    (_roots, message) => err(`warning: ${message}`),
  )
  const opened = await openView(values, err)
  const { view, publicClient, registry, chainId, generations } = opened
  const domain: EscrowDomain = { chainId, registry }
  const me = guardianAddress(publicKey64(guardianKey))
  const account: PrivateKeyAccount = privateKeyToAccount(bytesToHex(gasKey))
  gasKey.fill(0)
  const walletClient = createWalletClient({ account, chain: chainFor(chainId, opened.rpc), transport: http(opened.rpc) })
  const registryClient = createRegistryClient({ publicClient, address: registry })
  async function send(label: string, data: Hex): Promise<{ hash: Hex; blockNumber: bigint }> {
    const hash = await walletClient.sendTransaction({ to: registry, data, chain: walletClient.chain })
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new GuardianFailure(`${label} reverted (tx ${hash})`)
    return { hash, blockNumber: receipt.blockNumber }
  }

  // The freshness rule: a random mark of this release, sent with the gas key, and a verified view that proves it.
  err('waiting for a verified view that holds this release\'s freshness mark…')
  const freshness = createFreshness({ view, timeoutMs: timeoutSeconds * 1000, pollMs: 500 })
  const fresh: FreshView = await freshness.requireFreshView(async (mark) => (await send('markFresh', registryClient.calldata.markFresh(mark))).blockNumber)
  const { header } = fresh
  const base = await view.read(header, { guardians: true })
  const requestId = base.recoveryRequest()
  if (requestId === 0n) throw new GuardianFailure('no_recovery: no recovery is open in the verified chain (the owner starts one with startRecovery)')
  const request = await generations.requestEvent(requestId)
  if (!request) throw new GuardianFailure(`upstream_failed: the RPC returned no OnboardRequested log for request ${requestId}`)
  const blobs = values['blobs-kind'] === 'anvil' ? anvilBlobSource(blobsUrl) : beaconBlobSource(blobsUrl, { chainId })
  const judge = createJudge({
    chainId,
    registryAddress: registry,
    chainView: view,
    quoteVerifier: verifier,
    maxReferenceAge: BigInt(values['max-reference-age']),
    async fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<{ envelope: Envelope }> {
      const block = await publicClient.getBlock({ blockNumber: at.blockNumber })
      const [blob] = await fetchVerifiedBlobsWithFallback([blobs], { blockNumber: at.blockNumber, blockHash: at.blockHash, blockTimestamp: block.timestamp, versionedHashes: [versionedHash] })
      if (!blob) throw new BlobHashMismatchError(versionedHash, [])
      return { envelope: blobsToEnvelope([bytesToHex(blob)]) }
    },
  })
  let judged
  try {
    judged = await judge(request, fresh)
  } catch (error) {
    if (error instanceof Refusal) throw new GuardianFailure(`release refused (${error.reason}): ${error.message}`)
    throw error
  }
  err(`request ${requestId}: quote verified, measurement ${judged.measurementId} allowed at block ${header.blockNumber}`)

  const results: { generation: string; index: number | null; status: string; txHash?: Hex }[] = []
  for (const record of await escrowedGenerations(opened, header, only)) {
    const g = record.generation
    if (record.purged || record.escrowGuardianSet === 0n) {
      if (only !== undefined) results.push({ generation: g.toString(), index: null, status: record.purged ? 'purged' : 'not_escrowed' })
      continue
    }
    const escrow = (await provenEscrow(domain, generations, record))!
    const index = await guardianIndex(opened, header, escrow.guardianSet, me)
    if (index === 0) {
      results.push({ generation: g.toString(), index: null, status: 'not_a_guardian' })
      continue
    }
    const released = (await view.read(header, { released: [{ requestId, generation: g }] })).releasedShares(requestId, g)
    if ((released >> BigInt(index)) & 1n) {
      results.push({ generation: g.toString(), index, status: 'already_released' })
      continue
    }
    let share
    try {
      share = openEscrowShare(domain, escrow, { index, guardianKey })
    } catch (error) {
      if (!(error instanceof EscrowError)) throw error
      results.push({ generation: g.toString(), index, status: error.reason })
      continue
    }
    const out = releaseShare(domain, { requestId, generation: g, share, requestKey: judged.pubkey64, guardianKey })
    share.value.fill(0)
    const sent = await send('releaseShare', generationCalldata.releaseShare(requestId, g, out.encryptedShare, out.signature))
    results.push({ generation: g.toString(), index, status: 'released', txHash: sent.hash })
  }
  guardianKey.fill(0)
  if (results.length === 0) throw new GuardianFailure('not_escrowed: no generation is escrowed in the verified chain')
  const ok = results.every((r) => r.status === 'released' || r.status === 'already_released')
  if (values.json) out(JSON.stringify({ guardian: me, requestId: requestId.toString(), measurementId: judged.measurementId, block: header.blockNumber.toString(), ok, generations: results }, null, 2))
  else
    for (const r of results)
      out(`${r.status === 'released' || r.status === 'already_released' ? '✓' : '✗'} generation ${r.generation}: ${r.status}${r.index ? ` (share ${r.index})` : ''}${r.txHash ? ` in ${r.txHash}` : ''}`)
  return ok ? 0 : 1
}

export async function runGuardian(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (line) => void process.stderr.write(line + '\n'),
): Promise<number> {
  try {
    const [verb, ...rest] = argv
    if (verb !== 'keygen' && verb !== 'verify' && verb !== 'release') throw new UsageError('guardian needs one of: keygen, verify, release')
    const { values, positionals } = parseFlags(rest, FLAGS)
    if (positionals.length > 0) throw new UsageError(`guardian ${verb} takes no arguments, got '${positionals[0]}'`)
    if (verb === 'keygen') return await keygen(values, out)
    if (verb === 'verify') return await verify(values, out, err)
    return await release(values, out, err)
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager guardian: ${error.message.split('\n')[0]}`)
      return 2
    }
    if (error instanceof GuardianFailure || error instanceof EscrowError) err(`keymanager guardian: ${error.message}`)
    else if (error instanceof ChainViewError) err(`keymanager guardian: ${error.reason}: ${error.shortMessage}`)
    else err(`keymanager guardian: ${short(error)}`)
    return 1
  }
}

