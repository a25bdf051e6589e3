// `keymanager policy add|remove|list|tcb` (docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#registry-contract, docs/protocol.md#command-line): the registry's measurement allow-list and TCB
// policy, for its owner. Reads need --rpc and --registry; writes also --owner-key-file (0x + 64 hex digits in a
// file, never on the command line). Neither the key nor the RPC URL (it may carry an API key) is ever printed.
//   add (QUOTE_FILE | RAW_HEX)   addMeasurement(id, raw): raw from a quote (binary or hex file) or given as hex
//   remove (ID | QUOTE_FILE)     removeMeasurement(id)
//   list                         every measurement ever added (MeasurementAdded/Removed events), allowed now or not
//   tcb                          show the TCB policy; with --accept, --max-collateral-age, --fmspc-allowlist,
//                                --allow-fmspc, --disallow-fmspc, --min-tcb-evaluation: setTcbPolicy / setFmspc /
//                                setMinTcbEvaluationDataNumber, then show it
//   bootstrapper [ADDR | none]   show the account that may send the bootstrap blob tx besides the owner; with an
//                                argument setBootstrapper(ADDR or 0) (docs/protocol.md#bootstrap: a multisig owner
//                                names one, with --unsigned, since it cannot send a blob tx itself)
//   owner [ADDR | none | accept] show the owner and a pending owner; ADDR: transferOwnership(ADDR) (none cancels a
//                                pending transfer); accept: acceptOwnership(), sent by the pending owner
//   request-ttl [BLOCKS]         show the onboarding request TTL; with BLOCKS setRequestTtl(BLOCKS)
// Every write takes --owner-key-file F, or --unsigned: print a Safe Transaction Builder batch instead (unsignedBatch).
// Exit 0; 1 when the chain refuses or cannot be reached (one line naming the revert); 2 on bad flags (one line).
import { existsSync, readFileSync } from 'node:fs'
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  getAddress,
  http,
  isAddress,
  keccak256,
  encodeFunctionData,
  zeroAddress,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { chainFor } from '../chain/chain.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { DEFAULT_MAX_LOG_RANGE, getLogsBounded } from '../chain/logs.ts'
import { defaultConfirmations, waitForConfirmations } from '../chain/confirmations.ts'
import { measurementOf } from '../tee/measurement.ts'
import { QuoteVerificationError, TCB_STATUS_BITS } from '../tee/types.ts'
import { parseFlags, UsageError } from './args.ts'
import { readQuoteFile } from './quote.ts'
import { KeymanagerError } from '../errors.ts'

export const POLICY_USAGE =
  'usage: keymanager policy add (QUOTE_FILE | RAW_HEX) | remove (ID | QUOTE_FILE) | list | bootstrapper [ADDR | none] | owner [ADDR | none | accept] | request-ttl [BLOCKS] | tcb [--accept S,…] [--max-collateral-age SECONDS] [--fmspc-allowlist on|off] [--allow-fmspc HEX]… [--disallow-fmspc HEX]… [--min-tcb-evaluation N] --rpc URL --registry ADDR [--owner-key-file F] [--from-block N] [--max-log-range BLOCKS] [--confirmations N] [--unsigned] [--json]'

const writeErr = (line: string) => void process.stderr.write(line + '\n')

/** The chain refused or could not be asked; the message names the call and the revert, never a key or the RPC URL. */
export class PolicyError extends KeymanagerError {
  override name = 'PolicyError'
  constructor(message: string) {
    super('upstream_failed', message)
  }
}

const TDX_RAW_LENGTH = 1 + 48 * 6 + 8 + 8
const SGX_RAW_LENGTH = 1 + 32 + 32 + 2 + 2
const TDX_FIELDS = [['mrTd', 48], ['rtMr0', 48], ['rtMr1', 48], ['rtMr2', 48], ['rtMr3', 48], ['mrConfigId', 48], ['xfam', 8], ['tdAttributes', 8]] as const
const SGX_FIELDS = [['mrEnclave', 32], ['mrSigner', 32], ['isvProdId', 2], ['isvSvn', 2]] as const
const STATUS_NAMES = Object.keys(TCB_STATUS_BITS) as (keyof typeof TCB_STATUS_BITS)[]

type Measurement = { id: Hex; raw: Hex; teeType: 'tdx' | 'sgx'; fields: Record<string, Hex> }

/** The packed preimage of docs/protocol.md#measurements-and-tcb-policy, checked for shape: TDX 305 bytes starting 0x01, SGX 69 bytes starting 0x02. */
function measurementFromRaw(raw: Hex): Measurement {
  const bytes = Buffer.from(raw.slice(2), 'hex')
  const teeType = bytes[0] === 1 && bytes.length === TDX_RAW_LENGTH ? 'tdx' : bytes[0] === 2 && bytes.length === SGX_RAW_LENGTH ? 'sgx' : undefined
  if (!teeType) {
    throw new UsageError(`a raw measurement is ${TDX_RAW_LENGTH} bytes starting 01 (TDX) or ${SGX_RAW_LENGTH} bytes starting 02 (SGX), got ${bytes.length} bytes`)
  }
  const fields: Record<string, Hex> = {}
  let offset = 1
  for (const [name, length] of teeType === 'tdx' ? TDX_FIELDS : SGX_FIELDS) {
    fields[name] = `0x${bytes.subarray(offset, offset + length).toString('hex')}`
    offset += length
  }
  return { id: keccak256(raw), raw: raw.toLowerCase() as Hex, teeType, fields }
}

const isHexArgument = (value: string) => /^(0x)?([0-9a-fA-F]{2})+$/.test(value) && !existsSync(value)

/** A quote file's measurement (unverified: the owner decides what to allow), or raw hex. */
function measurementArgument(value: string): Measurement {
  if (isHexArgument(value)) {
    const hex = `0x${value.replace(/^0x/, '').toLowerCase()}` as Hex
    if (hex.length === 66) throw new UsageError('add takes a quote file or a raw measurement, not a measurement id (the contract needs the raw fields)')
    return measurementFromRaw(hex)
  }
  try {
    return measurementFromRaw(measurementOf(readQuoteFile(value)).measurementRaw)
  } catch (error) {
    if (error instanceof QuoteVerificationError) throw new UsageError(`${value}: ${error.message}`)
    throw error
  }
}

function idArgument(value: string): Hex {
  if (isHexArgument(value)) {
    const hex = value.replace(/^0x/, '').toLowerCase()
    if (hex.length !== 64) throw new UsageError(`remove takes a measurement id (32 bytes of hex) or a quote file, got ${hex.length / 2} bytes of hex`)
    return `0x${hex}`
  }
  return measurementArgument(value).id
}

export function readOwnerKey(file: string | undefined): PrivateKeyAccount {
  if (file === undefined) throw new UsageError('this command sends a transaction: give --owner-key-file F (the registry owner\'s key)')
  let key: string
  try {
    key = readFileSync(file, 'utf8').trim()
  } catch (error) {
    throw new UsageError(`--owner-key-file: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('--owner-key-file must hold 0x followed by 64 hex digits')
  try {
    return privateKeyToAccount(key as Hex)
  } catch {
    throw new UsageError('--owner-key-file does not hold a valid secp256k1 private key')
  }
}

function parseFmspc(value: string, flag: string): Hex {
  const hex = value.replace(/^0x/, '').toLowerCase()
  if (!/^[0-9a-f]{12}$/.test(hex)) throw new UsageError(`${flag} takes an FMSPC, 6 bytes of hex, got '${value}'`)
  return `0x${hex}`
}

function parseStatuses(value: string): number {
  let mask = 0
  for (const name of value.split(',').map((s) => s.trim())) {
    if (!STATUS_NAMES.includes(name as never)) {
      throw new UsageError(`--accept takes TCB statuses from ${STATUS_NAMES.join(', ')} (Revoked is never accepted), got '${name}'`)
    }
    mask |= 1 << TCB_STATUS_BITS[name as keyof typeof TCB_STATUS_BITS]
  }
  return mask
}

const statusNames = (mask: number) => STATUS_NAMES.filter((name) => (mask >> TCB_STATUS_BITS[name]) & 1)
const iso = (seconds: bigint | number) => new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z')
const duration = (seconds: bigint) => {
  const [n, unit] = seconds % 86_400n === 0n ? [seconds / 86_400n, 'day'] : seconds % 3_600n === 0n ? [seconds / 3_600n, 'hour'] : [seconds, 'second']
  return `${n} ${unit}${n === 1n ? '' : 's'}`
}

export function short(error: unknown): string {
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError)
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName) {
      const args = (revert.data.args ?? []).map((a) => (typeof a === 'bigint' ? a.toString() : String(a)))
      return `${revert.data.errorName}(${args.join(', ')})`
    }
    return error.shortMessage.split('\n')[0]!
  }
  return (error as Error).message.split('\n')[0]!
}

export async function connect(values: { rpc?: string; registry?: string; confirmations?: string }) {
  if (values.rpc === undefined) throw new UsageError('give --rpc URL')
  if (values.confirmations !== undefined && (!/^\d{1,3}$/.test(values.confirmations) || Number(values.confirmations) < 1))
    throw new UsageError('--confirmations must be a number of blocks from 1 to 999')
  let url: URL
  try {
    url = new URL(values.rpc)
  } catch {
    throw new UsageError('--rpc is not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--rpc must be an http(s) URL')
  if (values.registry === undefined) throw new UsageError('give --registry ADDR')
  if (!isAddress(values.registry, { strict: false })) throw new UsageError(`--registry must be a 0x address, got '${values.registry}'`)
  const registry = getAddress(values.registry.toLowerCase())
  const transport = http(values.rpc, { retryCount: 1 })
  let chainId: number
  try {
    chainId = await createPublicClient({ transport }).getChainId()
  } catch (error) {
    throw new PolicyError(`cannot reach the RPC: ${short(error)}`)
  }
  const chain = chainFor(chainId, values.rpc)
  // Short polling: a CLI run waits for a handful of receipts, and devnets mine at once.
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 250 }) as PublicClient
  if (!(await publicClient.getCode({ address: registry }))) throw new PolicyError(`no contract at ${registry} on chain ${chainId}`)
  const confirmations = values.confirmations === undefined ? defaultConfirmations(chainId) : Number(values.confirmations)
  return { publicClient, registry, chain, transport, confirmations }
}
export type Connection = Awaited<ReturnType<typeof connect>>

export function reader({ publicClient, registry }: Connection) {
  return <T>(functionName: string, args: readonly unknown[] = []): Promise<T> =>
    (publicClient.readContract({ address: registry, abi: keyManagerAbi, functionName, args } as never) as Promise<T>).catch((error: unknown) => {
      throw new PolicyError(`${functionName}: ${short(error)}`)
    })
}

/** Simulates (so a revert is named before anything is sent), sends, and waits for a successful receipt. */
export async function send(
  connection: Connection,
  account: PrivateKeyAccount,
  functionName: string,
  args: readonly unknown[],
  progress: (line: string) => void,
): Promise<Hex> {
  const { publicClient, registry, chain, transport } = connection
  const wallet = createWalletClient({ account, chain, transport })
  let hash: Hex
  try {
    const { request } = await publicClient.simulateContract({ address: registry, abi: keyManagerAbi, functionName, args, account } as never)
    // On a live network, say what is about to be sent before it is.
    if (connection.confirmations > 1)
      progress(`${functionName}(${args.map((a) => String(a)).join(', ')}) to ${registry} on chain ${chain.id} from ${account.address}, then ${connection.confirmations} confirmations`)
    hash = await wallet.writeContract(request as never)
  } catch (error) {
    throw new PolicyError(`${functionName} refused: ${short(error)}`)
  }
  progress(`${functionName}: sent ${hash}, waiting for its receipt …`)
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new PolicyError(`${functionName} reverted in tx ${hash}`)
  if (connection.confirmations > 1) await waitForConfirmations(publicClient, receipt, connection.confirmations, progress)
  return hash
}

/** Registry events since `fromBlock`, read at most `maxLogRange` blocks per request (docs/protocol.md#limits). */
async function events(connection: Connection, eventNames: string[], fromBlock: bigint, maxLogRange: number) {
  try {
    const head = await connection.publicClient.getBlockNumber({ cacheTime: 0 })
    return await getLogsBounded({ publicClient: connection.publicClient, address: connection.registry, abi: keyManagerAbi, eventNames, fromBlock, toBlock: head, maxRange: maxLogRange })
  } catch (error) {
    throw new PolicyError(`reading ${eventNames.join(' and ')} events: ${short(error)}`)
  }
}

async function listMeasurements(connection: Connection, fromBlock: bigint, maxLogRange: number) {
  const read = reader(connection)
  // In chain order already: ranges are read in order, and each range's logs come in block and log order.
  const logs = await events(connection, ['MeasurementAdded', 'MeasurementRemoved'], fromBlock, maxLogRange)
  const seen = new Map<Hex, Measurement>()
  for (const log of logs) {
    const args = (log as unknown as { args: { id: Hex; raw?: Hex } }).args
    if (args.raw && !seen.has(args.id)) seen.set(args.id, measurementFromRaw(args.raw))
  }
  const now = (await connection.publicClient.getBlock({ blockTag: 'latest' })).timestamp
  return Promise.all(
    [...seen.values()].map(async (m) => {
      const [allowed, activatesAt] = await Promise.all([read<boolean>('isMeasurementAllowed', [m.id]), read<bigint>('measurementActivatesAt', [m.id])])
      const status = allowed ? 'allowed' : activatesAt === 0n ? 'removed' : activatesAt > now ? 'pending' : 'not allowed'
      return { ...m, status, allowed, activatesAt: activatesAt === 0n ? null : Number(activatesAt) }
    }),
  )
}

async function tcbPolicy(connection: Connection, fromBlock: bigint, maxLogRange: number) {
  const read = reader(connection)
  const [acceptedStatuses, maxCollateralAge, fmspcAllowlistOn] = await read<readonly [number, bigint, boolean]>('tcbPolicy')
  const minTcbEvaluationDataNumber = await read<number>('minTcbEvaluationDataNumber')
  const fmspcs = new Map<Hex, boolean>()
  for (const log of await events(connection, ['FmspcSet'], fromBlock, maxLogRange)) {
    const args = (log as unknown as { args: { fmspc: Hex; allowed: boolean } }).args
    fmspcs.set(args.fmspc.toLowerCase() as Hex, args.allowed)
  }
  return {
    acceptedStatuses: statusNames(acceptedStatuses),
    acceptedStatusesMask: acceptedStatuses,
    maxCollateralAge: Number(maxCollateralAge),
    fmspcAllowlistOn,
    allowedFmspcs: [...fmspcs].filter(([, allowed]) => allowed).map(([fmspc]) => fmspc),
    minTcbEvaluationDataNumber,
  }
}

const FLAGS = {
  rpc: { type: 'string' },
  registry: { type: 'string' },
  'owner-key-file': { type: 'string' },
  'from-block': { type: 'string' },
  'max-log-range': { type: 'string' },
  json: { type: 'boolean', default: false },
  accept: { type: 'string' },
  'max-collateral-age': { type: 'string' },
  'fmspc-allowlist': { type: 'string' },
  'allow-fmspc': { type: 'string', multiple: true },
  'disallow-fmspc': { type: 'string', multiple: true },
  'min-tcb-evaluation': { type: 'string' },
  unsigned: { type: 'boolean', default: false },
  confirmations: { type: 'string' },
} as const
const TCB_FLAGS = ['accept', 'max-collateral-age', 'fmspc-allowlist', 'allow-fmspc', 'disallow-fmspc', 'min-tcb-evaluation'] as const

/**
 * `--from-block N` (the registry's deployment block: logs before it cannot be the registry's) and `--max-log-range N`
 * (blocks per `eth_getLogs`, default 1,000: public RPCs refuse wider ranges), for every verb that reads events
 * (docs/protocol.md#limits).
 */
export function logRange(values: { 'from-block'?: string; 'max-log-range'?: string }): { fromBlock: bigint; maxLogRange: number } {
  const fromBlockText = values['from-block'] ?? '0'
  if (!/^[0-9]{1,15}$/.test(fromBlockText)) throw new UsageError(`--from-block must be a block number, got '${fromBlockText}'`)
  const rangeText = values['max-log-range'] ?? String(DEFAULT_MAX_LOG_RANGE)
  if (!/^[0-9]{1,7}$/.test(rangeText) || Number(rangeText) < 1) throw new UsageError(`--max-log-range must be a number of blocks, 1 or more, got '${rangeText}'`)
  return { fromBlock: BigInt(fromBlockText), maxLogRange: Number(rangeText) }
}

/** One contract call of an owner action: what `send` signs, or what `--unsigned` prints. */
export type OwnerCall = { functionName: string; args: readonly unknown[] }

/**
 * `--unsigned` (every owner verb: policy, rotate, revoke, purge, recover start|cancel, escrow guardians): the owner is
 * a multisig (docs/protocol.md#bootstrap), so nothing is signed here. Each call is simulated from the owner's address
 * (or `from`: `policy owner accept` is the pending owner's) so a revert is named now, not in the Safe, then printed as
 * a Safe Transaction Builder batch (`{version, chainId, createdAt, meta, transactions: [{to, value, data}]}`) to import
 * and sign in the Safe.
 */
export async function unsignedBatch(connection: Connection, name: string, calls: OwnerCall[], from?: Address) {
  const sender = from ?? (await reader(connection)<Address>('owner'))
  const transactions = []
  for (const { functionName, args } of calls) {
    try {
      await connection.publicClient.simulateContract({ address: connection.registry, abi: keyManagerAbi, functionName, args, account: sender } as never)
    } catch (error) {
      throw new PolicyError(`${functionName} would revert for the ${from === undefined ? 'owner' : 'sender'} ${sender}: ${short(error)}`)
    }
    transactions.push({ to: connection.registry, value: '0', data: encodeFunctionData({ abi: keyManagerAbi, functionName, args } as never), contractMethod: null, contractInputsValues: null })
  }
  return {
    version: '1.0',
    chainId: String(connection.chain.id),
    createdAt: Date.now(),
    meta: { name, description: `keymanager ${name} on registry ${connection.registry}`, txBuilderVersion: '1.16.5', createdFromSafeAddress: sender, createdFromOwnerAddress: '' },
    transactions,
  }
}

/** Prints the `--unsigned` batch of `calls` (one JSON document on stdout; nothing is sent). */
export async function printUnsigned(connection: Connection, name: string, calls: OwnerCall[], out: (line: string) => void, from?: Address): Promise<number> {
  out(JSON.stringify(await unsignedBatch(connection, name, calls, from), (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2))
  return 0
}

/** `--unsigned` and `--owner-key-file` exclude each other; a verb that only reads takes neither. */
export function checkSigner(values: { unsigned?: boolean; 'owner-key-file'?: string }, readsOnly: string | undefined): void {
  if (values.unsigned && values['owner-key-file'] !== undefined) throw new UsageError('--unsigned signs nothing: leave out --owner-key-file')
  if (values.unsigned && readsOnly !== undefined) throw new UsageError(`${readsOnly} only reads: --unsigned does not apply`)
}

async function policyCommand(verb: string | undefined, argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (verb === undefined) throw new UsageError(POLICY_USAGE.replace(/^usage: /, 'policy needs a command: '))
  if (!['add', 'remove', 'list', 'tcb', 'bootstrapper', 'owner', 'request-ttl'].includes(verb))
    throw new UsageError(`unknown policy command '${verb}' (add, remove, list, tcb, bootstrapper, owner or request-ttl)`)
  const { values, positionals } = parseFlags(argv, FLAGS)
  if (verb !== 'tcb') {
    const stray = TCB_FLAGS.find((flag) => values[flag] !== undefined)
    if (stray) throw new UsageError(`--${stray} belongs to policy tcb`)
  }
  const wantsPositional = verb === 'add' || verb === 'remove'
  const optionalPositional = verb === 'bootstrapper' || verb === 'owner' || verb === 'request-ttl'
  if (optionalPositional && positionals.length > 1) throw new UsageError(`policy ${verb} takes at most one argument, got ${positionals.length}`)
  if (!optionalPositional && positionals.length !== (wantsPositional ? 1 : 0)) {
    throw new UsageError(wantsPositional ? `policy ${verb} takes one argument, got ${positionals.length}` : `policy ${verb} takes no arguments, got ${positionals.length}`)
  }
  const { fromBlock, maxLogRange } = logRange(values)
  const emit = (json: unknown, lines: string[]) => {
    if (values.json) out(JSON.stringify(json, null, 2))
    else for (const line of lines) out(line)
  }

  checkSigner(values, verb === 'list' ? 'policy list' : optionalPositional && positionals.length === 0 ? `policy ${verb} without an argument` : undefined)
  if (verb === 'add' || verb === 'remove') {
    const argument = positionals[0]!
    const measurement = verb === 'add' ? measurementArgument(argument) : undefined
    const id = measurement?.id ?? idArgument(argument)
    if (values.unsigned) {
      const connection = await connect(values)
      const call = verb === 'add' ? { functionName: 'addMeasurement', args: [id, measurement!.raw] } : { functionName: 'removeMeasurement', args: [id] }
      return printUnsigned(connection, `policy ${verb} ${id}`, [call], out)
    }
    const account = readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    if (verb === 'add') {
      const txHash = await send(connection, account, 'addMeasurement', [id, measurement!.raw], err)
      const activatesAt = Number(await reader(connection)<bigint>('measurementActivatesAt', [id]))
      emit({ action: 'added', id, teeType: measurement!.teeType, raw: measurement!.raw, activatesAt, txHash }, [
        `✓ measurement ${id} (${measurement!.teeType.toUpperCase()}) added, allowed from ${iso(activatesAt)}`,
        `  tx ${txHash}`,
      ])
    } else {
      const txHash = await send(connection, account, 'removeMeasurement', [id], err)
      emit({ action: 'removed', id, txHash }, [`✓ measurement ${id} removed`, `  tx ${txHash}`])
    }
    return 0
  }

  if (verb === 'bootstrapper') {
    const argument = positionals[0]
    if (argument === undefined) {
      const connection = await connect(values)
      const current = await reader(connection)<Address>('bootstrapper')
      const named = current !== zeroAddress
      emit({ bootstrapper: named ? current : null }, [named ? `bootstrapper ${current}` : 'no bootstrapper: only the owner can send bootstrap'])
      return 0
    }
    if (argument !== 'none' && !isAddress(argument, { strict: false })) throw new UsageError(`policy bootstrapper takes a 0x address or none, got '${argument}'`)
    const address = argument === 'none' ? zeroAddress : getAddress(argument.toLowerCase())
    if (values.unsigned) {
      const connection = await connect(values)
      return printUnsigned(connection, `policy bootstrapper ${argument}`, [{ functionName: 'setBootstrapper', args: [address] }], out)
    }
    const account = readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    const txHash = await send(connection, account, 'setBootstrapper', [address], err)
    emit({ bootstrapper: address === zeroAddress ? null : address, txHash }, [
      address === zeroAddress ? '✓ bootstrapper removed: only the owner can send bootstrap' : `✓ bootstrapper ${address} may send bootstrap`,
      `  tx ${txHash}`,
    ])
    return 0
  }

  if (verb === 'owner') {
    // Two steps (docs/protocol.md#registry-contract): the owner names the next owner (transferOwnership), which then
    // accepts (acceptOwnership, sent by the pending owner: its key in --owner-key-file, or --unsigned for its Safe).
    const argument = positionals[0]
    if (argument !== undefined && argument !== 'accept' && argument !== 'none' && !isAddress(argument, { strict: false }))
      throw new UsageError(`policy owner takes a 0x address (transferOwnership), none (cancel a pending transfer) or accept, got '${argument}'`)
    const account = argument === undefined || values.unsigned ? undefined : readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    const read = reader(connection)
    if (argument === undefined) {
      const [current, pending] = await Promise.all([read<Address>('owner'), read<Address>('pendingOwner')])
      emit({ owner: current, pendingOwner: pending === zeroAddress ? null : pending }, [
        `owner ${current}`,
        pending === zeroAddress ? 'no ownership transfer pending' : `pending owner ${pending} (it accepts with policy owner accept)`,
      ])
      return 0
    }
    if (argument === 'accept') {
      const pending = await read<Address>('pendingOwner')
      if (pending === zeroAddress) throw new PolicyError('no ownership transfer is pending: the owner starts one with policy owner ADDR')
      if (values.unsigned) return printUnsigned(connection, 'policy owner accept', [{ functionName: 'acceptOwnership', args: [] }], out, pending)
      const txHash = await send(connection, account!, 'acceptOwnership', [], err)
      emit({ owner: account!.address, txHash }, [`✓ ${account!.address} is the registry's owner`, `  tx ${txHash}`])
      return 0
    }
    const next = argument === 'none' ? zeroAddress : getAddress(argument.toLowerCase())
    if (values.unsigned) return printUnsigned(connection, `policy owner ${argument}`, [{ functionName: 'transferOwnership', args: [next] }], out)
    const txHash = await send(connection, account!, 'transferOwnership', [next], err)
    emit({ pendingOwner: next === zeroAddress ? null : next, txHash }, [
      next === zeroAddress ? '✓ no ownership transfer pending' : `✓ ownership transfer to ${next} started: it takes effect when ${next} sends policy owner accept`,
      `  tx ${txHash}`,
    ])
    return 0
  }

  if (verb === 'request-ttl') {
    // setRequestTtl(blocks): how long an onboarding request stays answerable (docs/protocol.md#registry-contract).
    const argument = positionals[0]
    if (argument !== undefined && (!/^[0-9]{1,10}$/.test(argument) || Number(argument) < 1 || Number(argument) > 0xffffffff))
      throw new UsageError(`policy request-ttl takes a number of blocks from 1 to 4294967295, got '${argument}'`)
    const account = argument === undefined || values.unsigned ? undefined : readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    if (argument === undefined) {
      const ttl = await reader(connection)<bigint>('requestTtl')
      emit({ requestTtl: Number(ttl) }, [`request TTL ${ttl} blocks`])
      return 0
    }
    const call = { functionName: 'setRequestTtl', args: [BigInt(argument)] }
    if (values.unsigned) return printUnsigned(connection, `policy request-ttl ${argument}`, [call], out)
    const txHash = await send(connection, account!, call.functionName, call.args, err)
    emit({ requestTtl: Number(argument), txHash }, [`✓ request TTL ${argument} blocks`, `  tx ${txHash}`])
    return 0
  }

  if (verb === 'list') {
    if (values['owner-key-file'] !== undefined) err('note: policy list only reads; --owner-key-file is not used')
    const connection = await connect(values)
    const measurements = await listMeasurements(connection, fromBlock, maxLogRange)
    emit(
      measurements,
      measurements.length === 0
        ? [`no measurement was ever added to ${connection.registry}`]
        : measurements.map(
            (m) => `${m.id}  ${m.teeType}  ${m.status === 'pending' ? `pending until ${iso(m.activatesAt!)}` : m.status}${m.status === 'allowed' ? ` since ${iso(m.activatesAt!)}` : ''}`,
          ),
    )
    return 0
  }

  // tcb
  const accept = values.accept === undefined ? undefined : parseStatuses(values.accept)
  const maxAgeText = values['max-collateral-age']
  if (maxAgeText !== undefined && (!/^[0-9]{1,19}$/.test(maxAgeText) || BigInt(maxAgeText) === 0n || BigInt(maxAgeText) >= 2n ** 64n)) {
    throw new UsageError(`--max-collateral-age must be a positive number of seconds, got '${maxAgeText}'`)
  }
  const allowlist = values['fmspc-allowlist']
  if (allowlist !== undefined && allowlist !== 'on' && allowlist !== 'off') throw new UsageError(`--fmspc-allowlist takes on or off, got '${allowlist}'`)
  const allow = (values['allow-fmspc'] ?? []).map((f) => parseFmspc(f, '--allow-fmspc'))
  const disallow = (values['disallow-fmspc'] ?? []).map((f) => parseFmspc(f, '--disallow-fmspc'))
  const both = allow.find((f) => disallow.includes(f))
  if (both) throw new UsageError(`FMSPC ${both.slice(2)} is both allowed and disallowed`)
  const minEvaluationText = values['min-tcb-evaluation']
  if (minEvaluationText !== undefined && (!/^[0-9]{1,10}$/.test(minEvaluationText) || Number(minEvaluationText) > 0xffffffff)) {
    throw new UsageError(`--min-tcb-evaluation must be a TCB evaluation data number (0 for none), got '${minEvaluationText}'`)
  }
  const setsPolicy = accept !== undefined || maxAgeText !== undefined || allowlist !== undefined
  const writes = setsPolicy || allow.length > 0 || disallow.length > 0 || minEvaluationText !== undefined
  if (values.unsigned) {
    if (!writes) throw new UsageError('policy tcb --unsigned needs a change to print (--accept, --max-collateral-age, --fmspc-allowlist, --allow-fmspc, --disallow-fmspc, --min-tcb-evaluation)')
    const connection = await connect(values)
    const calls: { functionName: string; args: readonly unknown[] }[] = []
    if (setsPolicy) {
      const [currentMask, currentAge, currentAllowlist] = await reader(connection)<readonly [number, bigint, boolean]>('tcbPolicy')
      calls.push({ functionName: 'setTcbPolicy', args: [accept ?? currentMask, maxAgeText === undefined ? currentAge : BigInt(maxAgeText), allowlist === undefined ? currentAllowlist : allowlist === 'on'] })
    }
    for (const fmspc of allow) calls.push({ functionName: 'setFmspc', args: [fmspc, true] })
    for (const fmspc of disallow) calls.push({ functionName: 'setFmspc', args: [fmspc, false] })
    if (minEvaluationText !== undefined) calls.push({ functionName: 'setMinTcbEvaluationDataNumber', args: [Number(minEvaluationText)] })
    return printUnsigned(connection, 'policy tcb', calls, out)
  }
  const account = writes ? readOwnerKey(values['owner-key-file']) : undefined
  const connection = await connect(values)
  const txHashes: Hex[] = []
  if (writes) {
    if (setsPolicy) {
      const [currentMask, currentAge, currentAllowlist] = await reader(connection)<readonly [number, bigint, boolean]>('tcbPolicy')
      const args = [accept ?? currentMask, maxAgeText === undefined ? currentAge : BigInt(maxAgeText), allowlist === undefined ? currentAllowlist : allowlist === 'on']
      txHashes.push(await send(connection, account!, 'setTcbPolicy', args, err))
    }
    for (const fmspc of allow) txHashes.push(await send(connection, account!, 'setFmspc', [fmspc, true], err))
    for (const fmspc of disallow) txHashes.push(await send(connection, account!, 'setFmspc', [fmspc, false], err))
    if (minEvaluationText !== undefined)
      txHashes.push(await send(connection, account!, 'setMinTcbEvaluationDataNumber', [Number(minEvaluationText)], err))
  }
  const policy = await tcbPolicy(connection, fromBlock, maxLogRange)
  emit({ ...policy, ...(writes ? { txHashes } : {}) }, [
    ...(writes ? [`✓ TCB policy updated (${txHashes.length} tx: ${txHashes.join(', ')})`] : []),
    `accepted TCB statuses  ${policy.acceptedStatuses.join(', ')}`,
    `max collateral age     ${duration(BigInt(policy.maxCollateralAge))}`,
    `FMSPC allow-list       ${policy.fmspcAllowlistOn ? 'on' : 'off'}${policy.allowedFmspcs.length ? ` (${policy.fmspcAllowlistOn ? '' : 'when on: '}${policy.allowedFmspcs.map((f) => f.slice(2)).join(', ')})` : policy.fmspcAllowlistOn ? ' (empty: no platform is allowed)' : ''}`,
    `min TCB evaluation     ${policy.minTcbEvaluationDataNumber === 0 ? 'none' : policy.minTcbEvaluationDataNumber}`,
  ])
  return 0
}

/** `keymanager policy …`: exit 0, 1 when the chain refuses or cannot be reached, 2 on bad input; errors are one line. */
export async function runPolicy(argv: string[], out: (line: string) => void, err: (line: string) => void = writeErr): Promise<number> {
  const [verb, ...rest] = argv
  try {
    return await policyCommand(verb, rest, out, err)
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager policy: ${error.message}`)
      return 2
    }
    err(`keymanager policy: ${error instanceof PolicyError ? error.message : short(error)}`)
    return 1
  }
}
