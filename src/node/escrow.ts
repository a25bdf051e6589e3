// Guardian escrow and recovery on the node (docs/protocol.md#guardians, docs/protocol.md#recovery), and the proven reads
// the guardian's command line shares with it.
//
// What each step rests on (the host is the adversary, docs/protocol.md#actors-and-trust):
// - publish: shares of M_g are encrypted to keys, so this is a release of M and is decided on a view that proves this
//   decision's own freshness mark (docs/protocol.md#verified-chain-view). The active guardian set is computed from the
//   proven slots 20-21 at the verified block's time; its keys come from the `GuardiansProposed` log and must hash to
//   the proven `pubkeysHash`, in order, as many as the proven count, with the proven threshold. M_g is escrowed only
//   when its key is the proven key of g, and g is neither revoked nor purged.
// - recover: the request must be this node's and the open recovery (slot 23), proven; each generation's escrow is the
//   `EscrowPublished` log whose struct hash is the proven `escrowHash`; each released share must decrypt with the
//   request key and lie on the escrow's Feldman polynomial (C_0 = the proven master key); the reassembled M_g must be
//   the proven key. A host that hides or invents logs can stall a recovery, never change what is accepted.
// Events are hints everywhere: proven slots decide.
import { bytesToHex, hexToBytes, type Address, type Hex } from 'viem'
import type { GenerationsClient } from '../chain/generations.ts'
import type { ChainView, ViewHeader } from '../chain/view/chainView.ts'
import type { ProvenGeneration } from '../chain/view/registryState.ts'
import { KeymanagerError } from '../errors.ts'
import {
  escrowMatches,
  guardianKeysHash,
  makeEscrow,
  recoverFromReleases,
  splitGuardianKeys,
  type EscrowDomain,
  type PublishedEscrow,
} from '../keys/escrow.ts'
import { generationCalldata } from '../chain/generations.ts'
import { onboardReceiptDigest } from '../keys/typedData.ts'
import { signDigest } from '../keys/signature.ts'
import { createMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import type { MemberFlowDeps, TxOutcome } from './context.ts'

/** Why an escrow or a recovery step did not happen: stable strings (docs/protocol.md#guardians). */
export class EscrowRefusal extends KeymanagerError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super('conflict', `${reason}: ${message}`)
  }
}

export type ProvenGuardianSet = { guardianSet: bigint; threshold: number; keys: Uint8Array[]; activatesAt: bigint }

/**
 * The active guardian set at `header`, proven (undefined when there is none, or the active set names no guardians):
 * slot 20 says which set is settled and which pending, the pending set's proven activation time against the verified
 * block's timestamp says which is active (as `activeGuardianSet()` computes it), and the logged keys must hash to the
 * proven keys hash.
 */
export async function provenActiveGuardianSet(view: ChainView, generations: GenerationsClient, header: ViewHeader): Promise<ProvenGuardianSet | undefined> {
  const counters = (await view.read(header, { guardians: true })).guardianCounters()
  const active = (await view.read(header, { guardians: true, guardianSets: counters.pending === 0n ? [] : [counters.pending] })).activeGuardianSet()
  if (active === 0n) return undefined
  return provenGuardianSet(view, generations, header, active)
}

/** A guardian set's keys, proven: the logged keys must hash to the proven `pubkeysHash` (undefined: the set names no guardians). */
export async function provenGuardianSet(view: ChainView, generations: GenerationsClient, header: ViewHeader, guardianSet: bigint): Promise<ProvenGuardianSet | undefined> {
  const info = (await view.read(header, { guardianSets: [guardianSet] })).guardianSet(guardianSet)
  if (info.count === 0) return undefined
  const logged = await generations.guardiansProposed(guardianSet)
  if (!logged) throw new KeymanagerError('upstream_failed', `the RPC returned no GuardiansProposed log for guardian set ${guardianSet}`)
  let keys: Uint8Array[]
  try {
    keys = splitGuardianKeys(logged.pubkeys)
  } catch {
    throw new EscrowRefusal('guardian_keys_mismatch', `the logged keys of guardian set ${guardianSet} are not a valid key list`)
  }
  if (guardianKeysHash(keys).toLowerCase() !== info.pubkeysHash.toLowerCase() || keys.length !== info.count)
    throw new EscrowRefusal('guardian_keys_mismatch', `the logged keys of guardian set ${guardianSet} do not hash to the proven keys hash`)
  return { guardianSet, threshold: info.threshold, keys, activatesAt: info.activatesAt }
}

/**
 * The escrow of generation g the chain vouches for: the `EscrowPublished` log whose struct hash is the proven
 * `escrowHash` (undefined when g was never escrowed).
 */
export async function provenEscrow(domain: EscrowDomain, generations: GenerationsClient, record: ProvenGeneration): Promise<PublishedEscrow | undefined> {
  if (record.escrowGuardianSet === 0n) return undefined
  const logged = await generations.escrowsPublished(record.generation)
  const match = logged.reverse().find((e) => e.guardianSet === record.escrowGuardianSet && escrowMatches(domain, e, record.escrowHash))
  if (!match) throw new KeymanagerError('upstream_failed', `no EscrowPublished log of generation ${record.generation} matches its proven escrow hash`)
  return { generation: match.generation, guardianSet: match.guardianSet, commitments: match.commitments, encryptedShares: match.encryptedShares }
}

export type EscrowResult = {
  generation: number
  /** published: sent now; escrowed: already escrowed to the active set; skipped: revoked, purged or not held. */
  status: 'published' | 'escrowed' | 'skipped'
  reason?: string
  guardianSet?: string
  outcome?: TxOutcome
}

export type RecoveryResult =
  | { state: 'recovered'; requestId: string; xPub: Address; generation: number; recovered: number[]; confirm: TxOutcome }
  | { state: 'pending'; requestId: string; generations: { generation: number; valid: number[]; needed: number; rejected: { index: number; reason: string }[] }[] }

export type EscrowDeps = MemberFlowDeps & {
  /** `confirmOnboard` calldata (the registry client's). */
  confirmCalldata(requestId: bigint, signature: Hex): Hex
}

export function createEscrow(deps: EscrowDeps) {
  const { keyring, logger } = deps
  const domain: EscrowDomain = { chainId: deps.chainId, registry: deps.registryAddress }

  /** Whether the RPC says generation g is escrowed to `guardianSet` (a hint; a failed read says no). */
  async function escrowedMeanwhile(g: bigint, guardianSet: bigint): Promise<boolean> {
    return deps.generations.generationInfo(g).then(
      (info) => info.escrowGuardianSet === guardianSet,
      () => false,
    )
  }

  /**
   * What this node would escrow now (auto mode asks before it takes a freshness mark): the active guardian set and
   * the generations it holds that are neither revoked nor purged and not escrowed to that set, proven at the view's
   * newest header (undefined when no set with guardians is active). A hint for when to act: `publish` decides again on
   * a view that proves its own freshness mark.
   */
  async function needed(): Promise<{ guardianSet: bigint; generations: number[] } | undefined> {
    const header = await deps.viewAt()
    const counters = (await deps.view.read(header, { guardians: true })).guardianCounters()
    if (counters.settled === 0n && counters.pending === 0n) return undefined
    const state = await deps.view.read(header, { master: true, guardians: true, guardianSets: counters.pending === 0n ? [] : [counters.pending] })
    const active = state.activeGuardianSet()
    if (active === 0n) return undefined
    const current = state.master().generation
    const all = Array.from({ length: Number(current) }, (_, i) => BigInt(i + 1))
    const records = await deps.view.read(header, { guardianSets: [active], generations: all })
    if (records.guardianSet(active).count === 0) return undefined
    const generations = all
      .map((g) => records.generation(g))
      .filter((r) => !r.purged && !r.revoked && r.escrowGuardianSet !== active && keyring.get(Number(r.generation)) !== undefined)
      .map((r) => Number(r.generation))
    return { guardianSet: active, generations }
  }

  /**
   * Escrows every generation this node holds that is neither revoked nor purged and not yet escrowed to the active
   * guardian set (all of them again after a set change, docs/protocol.md#guardians), each in its own `publishEscrow`.
   */
  async function publish(): Promise<{ guardianSet: string; threshold: number; count: number; generations: EscrowResult[] }> {
    const header = await deps.fresh()
    const set = await provenActiveGuardianSet(deps.view, deps.generations, header)
    if (!set) throw new EscrowRefusal('no_guardians', 'no guardian set is active in the verified chain (the owner names one with setGuardians)')
    const current = (await deps.view.read(header, { master: true })).master().generation
    const all = Array.from({ length: Number(current) }, (_, i) => BigInt(i + 1))
    const state = await deps.view.read(header, { master: true, generations: all })
    const results: EscrowResult[] = []
    for (const g of all) {
      const record = state.generation(g)
      const gen = Number(g)
      if (record.purged || record.revoked) {
        results.push({ generation: gen, status: 'skipped', reason: record.purged ? 'purged' : 'revoked' })
        continue
      }
      if (record.escrowGuardianSet === set.guardianSet) {
        results.push({ generation: gen, status: 'escrowed', guardianSet: set.guardianSet.toString() })
        continue
      }
      const secret = keyring.get(gen)
      if (!secret) {
        results.push({ generation: gen, status: 'skipped', reason: 'not_held' })
        continue
      }
      if (secret.address.toLowerCase() !== record.xPub.toLowerCase())
        throw new EscrowRefusal('not_master_key', `the secret this node holds for generation ${gen} is not that generation's key in the verified chain`)
      // Not a decision about M (the fresh view above decided that): the RPC's newest state (a hint) spares a
      // publishEscrow that would revert because another node escrowed meanwhile. Skipping is always safe; a lying RPC
      // can only make this node skip, as it could by not relaying the transaction.
      if (await escrowedMeanwhile(g, set.guardianSet)) {
        results.push({ generation: gen, status: 'escrowed', reason: 'escrowed_meanwhile', guardianSet: set.guardianSet.toString() })
        continue
      }
      const escrow = secret.exportForSealing((bytes) =>
        makeEscrow(domain, { generation: g, guardianSet: set.guardianSet, guardianKeys: set.keys, threshold: set.threshold, secret: bytes }),
      )
      let outcome: TxOutcome
      try {
        outcome = await deps.submit(
          'publishEscrow',
          generationCalldata.publishEscrow(g, set.guardianSet, bytesToHex(escrow.commitments), escrow.encryptedShares, escrow.signature),
        )
      } catch (error) {
        // Two nodes that publish at once: the contract keeps the first escrow (KeyManagerAlreadyEscrowed) and the
        // other's transaction reverts. That is the outcome wanted, not a failure.
        if (!(await escrowedMeanwhile(g, set.guardianSet))) throw error
        logger.info({ generation: gen, guardianSet: set.guardianSet.toString() }, 'another node escrowed this generation first; this escrow reverted')
        results.push({ generation: gen, status: 'escrowed', reason: 'escrowed_meanwhile', guardianSet: set.guardianSet.toString() })
        continue
      }
      logger.info({ generation: gen, guardianSet: set.guardianSet.toString(), threshold: set.threshold, guardians: set.keys.length }, 'escrow published')
      results.push({ generation: gen, status: 'published', guardianSet: set.guardianSet.toString(), outcome })
    }
    return { guardianSet: set.guardianSet.toString(), threshold: set.threshold, count: set.keys.length, generations: results }
  }

  /**
   * The recovering enclave's side (docs/protocol.md#recovery): `request` is this node's own registration (its request
   * id and key). Reassembles every escrowed, unpurged generation from the released shares, checks each against its
   * proven key, and, once all are there, hands them to `accept` (which seals them and makes the node ready) and
   * confirms the request with `OnboardReceipt(requestId, xPub)` signed by the request key.
   */
  async function recover(
    request: { requestId: bigint; address: Address; secretKey: Uint8Array },
    accept: (secrets: { generation: number; secret: MasterSecret }[], current: number) => void,
  ): Promise<RecoveryResult> {
    const header = await deps.viewAt()
    const base = await deps.view.read(header, { master: true, guardians: true, requests: [request.requestId] })
    const proven = base.request(request.requestId)
    if (proven.key.toLowerCase() !== request.address.toLowerCase())
      throw new EscrowRefusal('not_our_request', `request ${request.requestId} in the verified chain belongs to ${proven.key}, not to this registration`)
    if (base.recoveryRequest() !== request.requestId)
      throw new EscrowRefusal('not_recovery_request', `request ${request.requestId} is not the open recovery in the verified chain (the owner starts it with startRecovery)`)
    if (proven.status !== 'pending') throw new EscrowRefusal('not_pending', `request ${request.requestId} is ${proven.status} in the verified chain`)
    const master = base.master()
    const all = Array.from({ length: Number(master.generation) }, (_, i) => BigInt(i + 1))
    const state = await deps.view.read(header, { generations: all })
    const wanted = all.map((g) => state.generation(g)).filter((r) => !r.purged && r.escrowGuardianSet !== 0n)
    if (!wanted.some((r) => r.generation === master.generation))
      throw new EscrowRefusal('not_escrowed', `the current generation ${master.generation} has no escrow in the verified chain: it cannot be recovered`)
    const recovered: { generation: number; secret: MasterSecret }[] = []
    const pending: Extract<RecoveryResult, { state: 'pending' }>['generations'] = []
    try {
      for (const record of wanted) {
        const escrow = await provenEscrow(domain, deps.generations, record)
        const releases = (await deps.generations.sharesReleased(request.requestId, record.generation)).map((e) => ({ index: Number(e.index), encryptedShare: e.encryptedShare }))
        const outcome = recoverFromReleases(domain, {
          requestId: request.requestId,
          generation: record.generation,
          requestSecretKey: request.secretKey,
          releases,
          commitments: escrow!.commitments,
          masterPubkey: hexToBytes(record.masterPubkey),
        })
        if (!outcome.recovered) {
          pending.push({ generation: Number(record.generation), valid: outcome.valid, needed: outcome.needed, rejected: outcome.rejected })
          continue
        }
        const secret = createMasterSecret(outcome.secret)
        outcome.secret.fill(0)
        if (secret.address.toLowerCase() !== record.xPub.toLowerCase()) {
          secret.expire()
          throw new EscrowRefusal('not_master_key', `the reassembled secret of generation ${record.generation} is not its key in the verified chain`)
        }
        if (outcome.rejected.length > 0) logger.warn({ generation: Number(record.generation), rejected: outcome.rejected }, 'released shares that do not match the escrow were skipped')
        recovered.push({ generation: Number(record.generation), secret })
      }
    } catch (error) {
      recovered.forEach((r) => r.secret.expire())
      throw error
    }
    if (pending.length > 0) {
      recovered.forEach((r) => r.secret.expire())
      logger.info({ requestId: request.requestId.toString(), pending }, 'recovery pending: not enough valid released shares yet')
      return { state: 'pending', requestId: request.requestId.toString(), generations: pending }
    }
    accept(recovered, Number(master.generation))
    const receipt = onboardReceiptDigest({ chainId: deps.chainId, registry: deps.registryAddress, requestId: request.requestId, xPub: master.xPub })
    const confirm = await deps.submit('confirmOnboard', deps.confirmCalldata(request.requestId, bytesToHex(signDigest(receipt, request.secretKey))))
    logger.info({ requestId: request.requestId.toString(), generations: recovered.map((r) => r.generation) }, 'recovered from guardian shares; confirmed')
    return { state: 'recovered', requestId: request.requestId.toString(), xPub: master.xPub, generation: Number(master.generation), recovered: recovered.map((r) => r.generation), confirm }
  }

  /** The confirmation of a recovery that was reassembled before (its request still pending and the open recovery). */
  async function reconfirm(request: { requestId: bigint; address: Address; secretKey: Uint8Array }, generation: number): Promise<RecoveryResult> {
    const header = await deps.viewAt()
    const state = await deps.view.read(header, { master: true, guardians: true, requests: [request.requestId] })
    const proven = state.request(request.requestId)
    const master = state.master()
    if (proven.status === 'confirmed' && proven.key.toLowerCase() === request.address.toLowerCase())
      throw new EscrowRefusal('already_confirmed', `request ${request.requestId} is confirmed: this node is a member`)
    if (proven.status !== 'pending' || state.recoveryRequest() !== request.requestId)
      throw new EscrowRefusal('not_recovery_request', `request ${request.requestId} is ${proven.status} and not the open recovery in the verified chain`)
    const receipt = onboardReceiptDigest({ chainId: deps.chainId, registry: deps.registryAddress, requestId: request.requestId, xPub: master.xPub })
    const confirm = await deps.submit('confirmOnboard', deps.confirmCalldata(request.requestId, bytesToHex(signDigest(receipt, request.secretKey))))
    return { state: 'recovered', requestId: request.requestId.toString(), xPub: master.xPub, generation, recovered: keyring.held(), confirm }
  }

  return { publish, needed, recover, reconfirm }
}
