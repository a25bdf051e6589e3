// `keymanager escrow publish|status` and `keymanager recover` (docs/protocol.md#guardians, docs/protocol.md#recovery,
// docs/protocol.md#command-line).
//   escrow publish --node HOST_URL [--token-file F]           the node escrows every generation it holds that is not
//                                                             escrowed to the active guardian set (POST /escrow)
//   escrow status --rpc URL --registry ADDR                   guardian sets and each generation's escrow (eth_call reads,
//                                                             for people: a guardian decides with `guardian verify`)
//   escrow guardians (PUBKEY… --threshold K | none) --rpc URL --registry ADDR (--owner-key-file F | --unsigned)
//                                                             the owner names the guardians: setGuardians(pubkeys, k),
//                                                             active after measurementDelay; none: no further escrow
//   recover start REQUEST_ID|cancel --rpc URL --registry ADDR (--owner-key-file F | --unsigned)
//                                                             the owner names a fresh enclave's request for recovery
//   recover ENCKEY --node HOST_URL [--token-file F]           the enclave reassembles every escrowed generation from the
//                                                             released shares, checks, seals and confirms (POST /recover)
// --unsigned (owner verbs): print a Safe Transaction Builder batch for a multisig owner, send nothing (policy.ts).
// Exit 0; 1 when the node or the chain refuses, or a recovery is still pending (one line); 2 on bad flags (one line).
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { parseEventLogs, type Address, type Hex } from 'viem'
import { createGenerationsClient } from '../chain/generations.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { parseFlags, UsageError } from './args.ts'
import { call, nodeTarget } from './hostApi.ts'
import { checkSigner, connect, PolicyError, printUnsigned, readOwnerKey, send, short } from './policy.ts'

export const ESCROW_USAGE =
  'usage: keymanager escrow publish --node HOST_URL [--token-file F] | escrow status --rpc URL --registry ADDR | escrow guardians (PUBKEY… --threshold K | none) --rpc URL --registry ADDR (--owner-key-file F | --unsigned) | recover start REQUEST_ID|cancel --rpc URL --registry ADDR (--owner-key-file F | --unsigned) | recover ENCKEY --node HOST_URL [--token-file F] [--json]'

const FLAGS = {
  node: { type: 'string' },
  'token-file': { type: 'string' },
  rpc: { type: 'string' },
  registry: { type: 'string' },
  'owner-key-file': { type: 'string' },
  json: { type: 'boolean', default: false },
  unsigned: { type: 'boolean', default: false },
  confirmations: { type: 'string' },
  threshold: { type: 'string' },
} as const

/** The contract's limit on a guardian set (KeyManager.sol MAX_GUARDIANS). */
const MAX_GUARDIANS = 32

/**
 * Guardian public keys as `guardian keygen` prints them: 64 bytes of hex (x ‖ y), optionally 0x; each must be a point
 * on secp256k1 and appear once (the contract refuses both, this names the key first). Returns them concatenated.
 */
function guardianKeys(positionals: string[], thresholdText: string | undefined): { pubkeys: Hex; threshold: number } {
  if (positionals.length === 1 && positionals[0] === 'none') {
    if (thresholdText !== undefined) throw new UsageError('escrow guardians none names no guardians: drop --threshold')
    return { pubkeys: '0x', threshold: 0 }
  }
  if (positionals.length === 0) throw new UsageError('escrow guardians takes the guardians\' public keys (as guardian keygen prints them), in order, or none')
  if (positionals.length > MAX_GUARDIANS) throw new UsageError(`escrow guardians takes at most ${MAX_GUARDIANS} keys, got ${positionals.length}`)
  const keys = positionals.map((value, i) => {
    const hex = value.replace(/^0x/, '').toLowerCase()
    if (!/^[0-9a-f]{128}$/.test(hex)) throw new UsageError(`guardian key ${i + 1} must be 64 bytes of hex (x ‖ y, as guardian keygen prints it), got '${value.slice(0, 20)}${value.length > 20 ? '…' : ''}'`)
    try {
      secp256k1.Point.fromHex('04' + hex).assertValidity()
    } catch {
      throw new UsageError(`guardian key ${i + 1} is not a point on secp256k1`)
    }
    return hex
  })
  const duplicate = keys.findIndex((k, i) => keys.indexOf(k) !== i)
  if (duplicate !== -1) throw new UsageError(`guardian key ${duplicate + 1} is given twice`)
  if (thresholdText === undefined) throw new UsageError(`give --threshold K: how many of the ${keys.length} guardians together can recover`)
  if (!/^[0-9]{1,2}$/.test(thresholdText) || Number(thresholdText) < 2 || Number(thresholdText) > keys.length)
    throw new UsageError(`--threshold must be from 2 to the number of guardians (${keys.length}), got '${thresholdText}'`)
  return { pubkeys: `0x${keys.join('')}`, threshold: Number(thresholdText) }
}

type Env = Record<string, string | undefined>
type Out = (line: string) => void

const stringify = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)

type EscrowAnswer = {
  guardianSet: string
  threshold: number
  count: number
  generations: { generation: number; status: string; reason?: string; outcome?: { sent: boolean; txHash?: Hex } }[]
}

type RecoverAnswer =
  | { state: 'recovered'; requestId: string; xPub: Address; generation: number; recovered: number[]; confirm: { sent: boolean; txHash?: Hex } }
  | { state: 'pending'; requestId: string; generations: { generation: number; valid: number[]; needed: number; rejected: { index: number; reason: string }[] }[] }

async function escrow(argv: string[], env: Env, out: Out, err: Out): Promise<number> {
  const [verb, ...rest] = argv
  if (verb !== 'publish' && verb !== 'status' && verb !== 'guardians') throw new UsageError('escrow needs one of: publish, status, guardians')
  const { values, positionals } = parseFlags(rest, FLAGS)
  if (values.threshold !== undefined && verb !== 'guardians') throw new UsageError('--threshold belongs to escrow guardians')
  if (verb === 'guardians') {
    if (values.node !== undefined) throw new UsageError("escrow guardians is the owner's: give --rpc URL --registry ADDR, not --node")
    checkSigner(values, undefined)
    const { pubkeys, threshold } = guardianKeys(positionals, values.threshold)
    const account = values.unsigned ? undefined : readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    const call = { functionName: 'setGuardians', args: [pubkeys, threshold] }
    const count = (pubkeys.length - 2) / 128
    if (values.unsigned) return printUnsigned(connection, `escrow guardians ${count === 0 ? 'none' : `${threshold} of ${count}`}`, [call], out)
    const txHash = await send(connection, account!, call.functionName, call.args, err)
    // The set's number comes from this tx's own GuardiansProposed event, not from a later read.
    const receipt = await connection.publicClient.getTransactionReceipt({ hash: txHash })
    const [proposed] = parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName: 'GuardiansProposed' } as never) as unknown as { args: { guardianSet: bigint; activatesAt: bigint } }[]
    if (!proposed) throw new PolicyError(`setGuardians: tx ${txHash} emitted no GuardiansProposed`)
    const { guardianSet, activatesAt } = proposed.args
    const active = (await createGenerationsClient({ publicClient: connection.publicClient, address: connection.registry }).activeGuardianSet()) === guardianSet
    if (values.json) return out(stringify({ action: 'guardians_proposed', guardianSet, threshold, count, activatesAt, active, txHash })), 0
    out(`✓ guardian set ${guardianSet}: ${count === 0 ? 'no guardians (no further escrow)' : `${threshold} of ${count}`}, ${active ? 'active now' : `active from ${new Date(Number(activatesAt) * 1000).toISOString()}`}`)
    out(`  tx ${txHash}`)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`escrow ${verb} takes no arguments`)
  if (values.unsigned || values['owner-key-file'] !== undefined) throw new UsageError(`escrow ${verb} sends no owner call: --unsigned and --owner-key-file do not apply`)
  if (verb === 'publish') {
    if (values.rpc !== undefined || values.registry !== undefined) throw new UsageError('escrow publish talks to a node: give --node HOST_URL, not --rpc/--registry')
    const answer = await call<EscrowAnswer>(nodeTarget(values, env), 'POST', '/escrow')
    if (values.json) return out(stringify(answer)), 0
    out(`guardian set ${answer.guardianSet}: ${answer.threshold} of ${answer.count}`)
    for (const g of answer.generations)
      out(`  generation ${g.generation}: ${g.status}${g.reason ? ` (${g.reason})` : ''}${g.outcome?.txHash ? ` in ${g.outcome.txHash}` : g.outcome && !g.outcome.sent ? ' (transaction returned for the host to send)' : ''}`)
    return 0
  }
  if (values.node !== undefined) throw new UsageError('escrow status reads the chain: give --rpc URL --registry ADDR, not --node')
  const connection = await connect(values)
  const generations = createGenerationsClient({ publicClient: connection.publicClient, address: connection.registry })
  const read = async <T>(what: string, fn: () => Promise<T>) => {
    try {
      return await fn()
    } catch (error) {
      throw new PolicyError(`${what}: ${short(error)}`)
    }
  }
  const [active, pending, recovery] = await read('guardian sets', () => Promise.all([generations.activeGuardianSet(), generations.pendingGuardianSet(), generations.recoveryRequest()]))
  const sets = await Promise.all(
    [active, pending].filter((s) => s !== 0n).map(async (s) => ({ guardianSet: s, ...(await read(`guardian set ${s}`, () => generations.guardianSetInfo(s))) })),
  )
  const current = await read('generation', () => connection.publicClient.readContract({ address: connection.registry, abi: keyManagerAbi, functionName: 'generation' } as never) as Promise<bigint>)
  const records = []
  for (let g = 1n; g <= current; g++) {
    const info = await read(`generation ${g}`, () => generations.generationInfo(g))
    records.push({
      generation: g,
      xPub: info.xPub,
      revoked: info.revoked,
      purged: info.purged,
      escrowGuardianSet: info.escrowGuardianSet,
      escrowHash: info.escrowGuardianSet === 0n ? null : info.escrowHash,
      released: recovery === 0n || info.escrowGuardianSet === 0n ? null : await read('released shares', () => generations.releasedShares(recovery, g)),
    })
  }
  if (values.json) return out(stringify({ activeGuardianSet: active, pendingGuardianSet: pending, sets, recoveryRequest: recovery, generations: records })), 0
  const describe = (s: (typeof sets)[number]) => `${s.threshold} of ${s.count}${s.count === 0 ? ' (no guardians)' : ''}`
  const activeSet = sets.find((s) => s.guardianSet === active)
  out(active === 0n ? 'no guardian set is active' : `active guardian set ${active}: ${describe(activeSet!)}`)
  const pendingSet = sets.find((s) => s.guardianSet === pending)
  if (pendingSet) out(`pending guardian set ${pending}: ${describe(pendingSet)}, active from ${new Date(Number(pendingSet.activatesAt) * 1000).toISOString()}`)
  out(recovery === 0n ? 'no recovery open' : `recovery open for request ${recovery}`)
  for (const r of records) {
    const bits = r.released === null ? '' : `; released shares ${[...Array(33).keys()].filter((i) => (r.released! >> BigInt(i)) & 1n).join(',') || 'none'}`
    const state = r.purged ? 'purged' : r.escrowGuardianSet === 0n ? (r.revoked ? 'revoked, not escrowed' : 'NOT ESCROWED') : `escrowed to set ${r.escrowGuardianSet}${r.escrowGuardianSet === active ? '' : ' (not the active set: run escrow publish)'}${r.revoked ? ', revoked' : ''}`
    out(`  generation ${r.generation} (${r.xPub}): ${state}${bits}`)
  }
  return 0
}

async function recover(argv: string[], env: Env, out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS)
  const [first, second, ...extra] = positionals
  if (first === 'start' || first === 'cancel') {
    if (values.node !== undefined) throw new UsageError(`recover ${first} is the owner's: give --rpc URL --registry ADDR --owner-key-file F (or --unsigned), not --node`)
    if (first === 'start' && (second === undefined || !/^[1-9][0-9]{0,77}$/.test(second) || BigInt(second) >= 1n << 256n))
      throw new UsageError(`recover start takes the request id of the fresh enclave (a decimal integer), got '${second ?? ''}'`)
    if ((first === 'cancel' && second !== undefined) || extra.length > 0) throw new UsageError(`recover ${first} takes ${first === 'start' ? 'one argument' : 'no argument'}`)
    checkSigner(values, undefined)
    const account = values.unsigned ? undefined : readOwnerKey(values['owner-key-file'])
    const connection = await connect(values)
    const call = first === 'start' ? { functionName: 'startRecovery', args: [BigInt(second!)] } : { functionName: 'cancelRecovery', args: [] }
    if (values.unsigned) return printUnsigned(connection, `recover ${first}${second ? ' ' + second : ''}`, [call], out)
    const txHash = await send(connection, account!, call.functionName, call.args, err)
    if (values.json) out(stringify({ action: first === 'start' ? 'recovery_started' : 'recovery_cancelled', requestId: second ?? null, txHash }))
    else {
      out(first === 'start' ? `✓ recovery opened for request ${second}: guardians may now run keymanager guardian release` : '✓ recovery cancelled')
      out(`  tx ${txHash}`)
    }
    return 0
  }
  if (first === undefined || !/^0x[0-9a-fA-F]{40}$/.test(first) || second !== undefined)
    throw new UsageError(`recover takes the enclave's registration key ENCKEY (the address keymanager register printed), or start REQUEST_ID, or cancel; got '${positionals.join(' ')}'`)
  if (values.rpc !== undefined || values.registry !== undefined) throw new UsageError('recover ENCKEY talks to the node: give --node HOST_URL, not --rpc/--registry')
  if (values.unsigned || values['owner-key-file'] !== undefined || values.threshold !== undefined)
    throw new UsageError('recover ENCKEY talks to the node: --unsigned, --owner-key-file and --threshold do not apply')
  const answer = await call<RecoverAnswer>(nodeTarget(values, env), 'POST', `/recover/${first}`)
  if (values.json) out(stringify(answer))
  else if (answer.state === 'recovered')
    out(`✓ recovered generations ${answer.recovered.join(', ')} of request ${answer.requestId}: master key ${answer.xPub} (generation ${answer.generation}); ${answer.confirm.sent ? `confirmed in ${answer.confirm.txHash}` : 'confirmOnboard returned for the host to send'}`)
  else
    for (const g of answer.generations)
      out(
        `… generation ${g.generation}: ${g.valid.length} of ${g.needed} valid shares released (${g.valid.join(',') || 'none'})${g.rejected.length ? `; rejected ${g.rejected.map((r) => `${r.index}: ${r.reason}`).join(', ')}` : ''}`,
      )
  return answer.state === 'recovered' ? 0 : 1
}

export async function runEscrow(
  group: 'escrow' | 'recover',
  argv: string[],
  env: Env,
  out: Out,
  err: Out = (line) => void process.stderr.write(line + '\n'),
): Promise<number> {
  try {
    return group === 'escrow' ? await escrow(argv, env, out, err) : await recover(argv, env, out, err)
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager ${group}: ${error.message.split('\n')[0]}`)
      return 2
    }
    err(`keymanager ${group}: ${error instanceof PolicyError ? error.message : error instanceof Error && !('walk' in error) ? error.message.split('\n')[0] : short(error)}`)
    return 1
  }
}
