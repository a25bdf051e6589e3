// `keymanager rotate start|status` and `keymanager revoke node|generation` (docs/protocol.md#generations,
// docs/protocol.md#command-line): the owner's side of rotation and revocation. Reads need --rpc and --registry; writes
// also --owner-key-file (0x + 64 hex digits in a file, never on the command line). The nodes do the rest (propose,
// acknowledge, commit) by themselves in auto mode, or through their host API (`POST /rotation/propose` …).
//   rotate start [--emergency] [--overlap SECONDS] [--force-delay SECONDS]   startRotation(emergency, overlap, forceDelay)
//   rotate status                                                            generation, rotation, pending proposal
//   rotate cancel                                                            cancelRotation(): drops a pending proposal
//   rotate force-commit PROPOSAL_ID                                          forceCommitGeneration(id), from forceDelay after it
//   revoke node MEMBER_ID                                                    revokeNode(memberId)
//   revoke generation G                                                      revokeGeneration(g)
//   purge generation G                                                       purgeGeneration(g): nodes erase M_g, pods get 410
// Every write takes --owner-key-file F, or --unsigned: the owner is a multisig, so the calls are simulated from its
// address and printed as a Safe Transaction Builder batch (policy.ts printUnsigned), nothing is sent.
// Exit 0; 1 when the chain refuses or cannot be reached (one line naming the revert); 2 on bad flags (one line).
import { createGenerationsClient, type GenerationInfo } from '../chain/generations.ts'
import { parseFlags, UsageError } from './args.ts'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { checkSigner, connect, PolicyError, printUnsigned, readOwnerKey, send, short, type Connection, type OwnerCall } from './policy.ts'

export const GENERATIONS_USAGE =
  'usage: keymanager rotate start [--emergency] [--overlap SECONDS] [--force-delay SECONDS] | rotate status | rotate cancel | rotate force-commit PROPOSAL_ID | revoke node MEMBER_ID | revoke generation G | purge generation G --rpc URL --registry ADDR [--owner-key-file F | --unsigned] [--confirmations N] [--json]'

const MAX_DELAY = 365 * 86_400

const FLAGS = {
  rpc: { type: 'string' },
  registry: { type: 'string' },
  'owner-key-file': { type: 'string' },
  json: { type: 'boolean', default: false },
  emergency: { type: 'boolean', default: false },
  overlap: { type: 'string' },
  'force-delay': { type: 'string' },
  unsigned: { type: 'boolean', default: false },
  confirmations: { type: 'string' },
} as const

function seconds(value: string | undefined, flag: string, fallback: number): bigint {
  if (value === undefined) return BigInt(fallback)
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) > MAX_DELAY) throw new UsageError(`--${flag} must be whole seconds from 0 to ${MAX_DELAY} (365 days), got '${value}'`)
  return BigInt(value)
}

function positiveId(value: string | undefined, what: string, bits: number): bigint {
  if (value === undefined || !/^[1-9][0-9]{0,77}$/.test(value) || BigInt(value) >= 1n << BigInt(bits)) throw new UsageError(`${what} must be a decimal integer from 1 to 2^${bits}-1, got '${value ?? ''}'`)
  return BigInt(value)
}

const currentGeneration = ({ publicClient, registry }: Connection) =>
  publicClient.readContract({ address: registry, abi: keyManagerAbi, functionName: 'generation' } as never) as Promise<bigint>

const iso = (s: bigint) => (s === 0n ? '-' : new Date(Number(s) * 1000).toISOString().replace('.000Z', 'Z'))

async function command(group: 'rotate' | 'revoke' | 'purge', argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const [verb, ...rest] = argv
  const verbs = group === 'rotate' ? ['start', 'status', 'cancel', 'force-commit'] : group === 'purge' ? ['generation'] : ['node', 'generation']
  if (verb === undefined || !verbs.includes(verb)) throw new UsageError(`${group} needs one of: ${verbs.join(', ')}`)
  const { values, positionals } = parseFlags(rest, FLAGS)
  const rotationFlags = values.emergency || values.overlap !== undefined || values['force-delay'] !== undefined
  if (rotationFlags && !(group === 'rotate' && verb === 'start')) throw new UsageError('--emergency, --overlap and --force-delay belong to rotate start')
  const wantsId = group !== 'rotate' || verb === 'force-commit'
  if (positionals.length !== (wantsId ? 1 : 0))
    throw new UsageError(wantsId ? `${group} ${verb} takes one argument, got ${positionals.length}` : `rotate ${verb} takes no arguments`)
  checkSigner(values, group === 'rotate' && verb === 'status' ? 'rotate status' : undefined)
  // The signed path sends the calls; --unsigned prints them as a Safe batch instead (nothing is sent).
  const ownerAction = async (connection: Connection, account: ReturnType<typeof readOwnerKey> | undefined, call: OwnerCall): Promise<string | undefined> => {
    if (values.unsigned) {
      await printUnsigned(connection, `${group} ${verb}${positionals.length ? ' ' + positionals[0] : ''}`, [call], out)
      return undefined
    }
    return send(connection, account!, call.functionName, call.args, err)
  }
  const signer = () => (values.unsigned ? undefined : readOwnerKey(values['owner-key-file']))
  const emit = (json: unknown, lines: string[]) => {
    if (values.json) out(JSON.stringify(json, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2))
    else for (const line of lines) out(line)
  }

  if (group === 'rotate' && verb === 'start') {
    const overlap = seconds(values.overlap, 'overlap', values.emergency ? 0 : 86_400)
    const forceDelay = seconds(values['force-delay'], 'force-delay', 86_400)
    if (values.emergency && overlap !== 0n) throw new UsageError('an emergency rotation has no overlap (the outgoing generation is revoked at commit): drop --overlap')
    const account = signer()
    const connection = await connect(values)
    const txHash = await ownerAction(connection, account, { functionName: 'startRotation', args: [values.emergency, overlap, forceDelay] })
    if (txHash === undefined) return 0
    const generations = createGenerationsClient({ publicClient: connection.publicClient, address: connection.registry })
    const rotation = await generations.rotation()
    const next = await currentGeneration(connection)
    emit({ action: 'rotation_started', generation: next + 1n, emergency: values.emergency, overlap, forceDelay, startedAt: rotation.startedAt, txHash }, [
      `✓ ${values.emergency ? 'emergency' : 'planned'} rotation to generation ${next + 1n} started${values.emergency ? ' (the current generation is revoked at commit)' : `, overlap ${overlap} s`}; force possible ${forceDelay} s after a proposal`,
      `  tx ${txHash}`,
      '  members propose, acknowledge and commit it (auto mode, or POST /rotation/propose on one node)',
    ])
    return 0
  }

  // Arguments are checked before anything is asked of the chain.
  const target = wantsId ? positiveId(positionals[0], verb === 'node' ? 'MEMBER_ID' : verb === 'force-commit' ? 'PROPOSAL_ID' : 'G', verb === 'node' ? 256 : 64) : 0n
  const account = group === 'rotate' && verb === 'status' ? undefined : signer()
  const connection = await connect(values)
  const generations = createGenerationsClient({ publicClient: connection.publicClient, address: connection.registry })

  if (group === 'rotate' && verb === 'cancel') {
    const txHash = await ownerAction(connection, account, { functionName: 'cancelRotation', args: [] })
    if (txHash === undefined) return 0
    emit({ action: 'rotation_cancelled', txHash }, ['✓ rotation cancelled (a pending proposal is dropped)', `  tx ${txHash}`])
    return 0
  }
  if (group === 'rotate' && verb === 'force-commit') {
    const txHash = await ownerAction(connection, account, { functionName: 'forceCommitGeneration', args: [target] })
    if (txHash === undefined) return 0
    const current = await currentGeneration(connection)
    emit({ action: 'generation_force_committed', proposalId: target, generation: current, txHash }, [
      `✓ proposal ${target} committed by the owner: generation ${current} is current`,
      `  tx ${txHash}`,
    ])
    return 0
  }

  if (group === 'rotate') {
    if (values['owner-key-file'] !== undefined) err('note: rotate status only reads; --owner-key-file is not used')
    const [rotation, proposal, memberCount] = await Promise.all([generations.rotation(), generations.proposal(), generations.memberCount()])
    const current = await currentGeneration(connection)
    const infos: (GenerationInfo & { generation: bigint; valid: boolean })[] = []
    for (let g = 1n; g <= current; g++) infos.push({ ...(await generations.generationInfo(g)), generation: g, valid: await generations.isGenerationValid(g) })
    emit({ generation: current, memberCount, rotation, proposal: proposal.id === 0n ? null : proposal, generations: infos }, [
      `generation ${current}, ${memberCount} members`,
      rotation.open
        ? `rotation open: ${rotation.emergency ? 'emergency' : `planned, overlap ${rotation.overlap} s`}, started ${iso(rotation.startedAt)}`
        : 'no rotation open',
      proposal.id === 0n
        ? 'no proposal pending'
        : `proposal ${proposal.id} for generation ${proposal.generation} by member ${proposal.proposerId}: ${proposal.acks} of ${proposal.quorum} acknowledgements (${proposal.recipients} recipients), key ${proposal.xPub}`,
      ...infos.map(
        (i) =>
          `  generation ${i.generation}: ${i.xPub} ${i.purged ? 'purged' : i.revoked ? 'revoked' : i.valid ? (i.generation === current ? 'current' : `verifies until ${iso(i.retiresAt)}`) : 'retired'}`,
      ),
    ])
    return 0
  }

  if (verb === 'node') {
    const memberId = target
    const txHash = await ownerAction(connection, account, { functionName: 'revokeNode', args: [memberId] })
    if (txHash === undefined) return 0
    emit({ action: 'node_revoked', memberId, txHash }, [
      `✓ member ${memberId} revoked: it never again proposes, acknowledges or receives a generation`,
      `  tx ${txHash}`,
      '  it still holds every generation it had: start an emergency rotation (keymanager rotate start --emergency)',
    ])
    return 0
  }
  const generation = target
  if (group === 'purge') {
    const txHash = await ownerAction(connection, account, { functionName: 'purgeGeneration', args: [generation] })
    if (txHash === undefined) return 0
    emit({ action: 'generation_purged', generation, txHash }, [
      `✓ generation ${generation} purged: nodes erase its secret, pods get 410 for it, newcomers no longer receive it and it can no longer be recovered`,
      `  tx ${txHash}`,
    ])
    return 0
  }
  const txHash = await ownerAction(connection, account, { functionName: 'revokeGeneration', args: [generation] })
  if (txHash === undefined) return 0
  emit({ action: 'generation_revoked', generation, txHash }, [`✓ generation ${generation} revoked: its signatures no longer verify`, `  tx ${txHash}`])
  return 0
}

export async function runGenerations(
  group: 'rotate' | 'revoke' | 'purge',
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (line) => void process.stderr.write(line + '\n'),
): Promise<number> {
  try {
    return await command(group, argv, out, err)
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager ${group}: ${error.message.split('\n')[0]}`)
      return 2
    }
    err(`keymanager ${group}: ${error instanceof PolicyError ? error.message : short(error)}`)
    return 1
  }
}
