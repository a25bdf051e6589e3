// Building blocks of the devnet beacon chain (a SIMULATOR: anvil has no beacon chain; docs/protocol.md#verified-chain-view).
// They turn anvil blocks into the light-client data a real beacon node serves, signed by a devnet sync committee, so
// that devnet nodes go through the same light-client code path as on mainnet. beaconServer.ts follows anvil with them;
// tests use them directly to craft bad data (too few signers, wrong keys, bad branches, another fork, a fake committee).
//
// What is real and what is simplified:
// - Beacon block headers are real `BeaconBlockHeader`s: `parent_root` chains them, `state_root` is the
//   hash_tree_root of a real `BeaconState` value of the block's fork, `body_root` the hash_tree_root of a real
//   `BlindedBeaconBlockBody`. Both containers hold default values except the fields a light client proves against:
//   the state's genesis time and validators root, slot, fork, latest block header, finalized checkpoint, current and
//   next sync committee and latest execution payload header; the body's execution payload header. (lodestar 1.28.1
//   types Fulu with Electra's containers, so a Fulu state here lacks the later `proposer_lookahead` field; the
//   light-client gindices are the same.)
// - The execution payload header carries anvil's block hash, parent hash, state root, receipts root, logs bloom,
//   number, gas, timestamp, extra data, base fee, blob gas and mix hash. `transactions_root` and `withdrawals_root` are
//   the SSZ roots of empty lists: the simulator does not fetch raw transactions, and no consumer reads them.
// - The sync committee has 512 members over `DEVNET_COMMITTEE_DISTINCT_KEYS` distinct BLS keys per period (member i
//   holds key i mod 16): 16 keys cost ~10 ms to derive where 512 cost ~350 ms, per period and per process, which
//   every devnet test would pay; lodestar's own interop committee uses one key 512 times. Signatures still aggregate
//   exactly as on mainnet: a client aggregates the 512 (or k) member pubkeys and checks one BLS signature. An
//   aggregate over k members is signed once with the sum of their secret scalars, which BLS linearity makes equal
//   to the aggregate of their k signatures.
import bls from '@chainsafe/bls'
import { LeafNode, subtreeFillToContents, Tree, zeroNode, type Node } from '@chainsafe/persistent-merkle-tree'
import { BitArray } from '@chainsafe/ssz'
import type { BeaconConfig } from '@lodestar/config'
import { computeSyncPeriodAtSlot } from '@lodestar/light-client/utils'
import {
  BLOCK_BODY_EXECUTION_PAYLOAD_GINDEX,
  DOMAIN_SYNC_COMMITTEE,
  FINALIZED_ROOT_GINDEX_ELECTRA,
  ForkName,
  isForkPostElectra,
  NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA,
  SLOTS_PER_EPOCH,
  SYNC_COMMITTEE_SIZE,
} from '@lodestar/params'
import { ssz, sszTypesFor, type altair, type LightClientBootstrap, type LightClientFinalityUpdate, type LightClientHeader, type LightClientOptimisticUpdate, type LightClientUpdate, type phase0 } from '@lodestar/types'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes, numberToBytes, type Hex } from 'viem'
import type { LightClientFork } from '../chain/lightClient/transport.ts'

export const DEVNET_COMMITTEE_DISTINCT_KEYS = 16
/** Order of the BLS12-381 scalar field: secret keys are integers in [1, r). */
const BLS_R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n
const CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA = 86

export type DevnetCommittee = {
  period: number
  /** Secret scalars of the distinct keys; member i holds `secretKeys[i % secretKeys.length]`. */
  secretKeys: readonly bigint[]
  syncCommittee: altair.SyncCommittee
  root: Uint8Array
}

const committeeCache = new Map<string, DevnetCommittee>()

/** The devnet sync committee of `period`, derived from `seed` (sha256 of seed, label, period, index). */
export function devnetCommittee(seed: Uint8Array, period: number, distinctKeys = DEVNET_COMMITTEE_DISTINCT_KEYS): DevnetCommittee {
  const key = `${bytesToHex(seed)}/${period}/${distinctKeys}`
  const cached = committeeCache.get(key)
  if (cached) return cached
  const secretKeys: bigint[] = []
  for (let j = 0; j < distinctKeys; j++) {
    const digest = sha256(new Uint8Array([...seed, ...new TextEncoder().encode('keymanager devnet sync committee'), ...numberToBytes(period, { size: 8 }), ...numberToBytes(j, { size: 4 })]))
    secretKeys.push((BigInt(bytesToHex(digest)) % (BLS_R - 1n)) + 1n)
  }
  const distinct = secretKeys.map((sk) => bls.SecretKey.fromBytes(numberToBytes(sk, { size: 32 })).toPublicKey())
  const pubkeys = Array.from({ length: SYNC_COMMITTEE_SIZE }, (_, i) => distinct[i % distinctKeys]!.toBytes())
  const aggregatePubkey = bls.PublicKey.aggregate(Array.from({ length: SYNC_COMMITTEE_SIZE }, (_, i) => distinct[i % distinctKeys]!)).toBytes()
  const syncCommittee = { pubkeys, aggregatePubkey }
  const committee = Object.freeze({ period, secretKeys: Object.freeze(secretKeys), syncCommittee, root: ssz.altair.SyncCommittee.hashTreeRoot(syncCommittee) })
  if (committeeCache.size > 64) committeeCache.clear()
  committeeCache.set(key, committee)
  return committee
}

/** Which of the 512 members sign: the first k, or an explicit list of booleans. */
export type Participation = number | readonly boolean[]

function participationBits(participation: Participation): BitArray {
  const bits = BitArray.fromBitLen(SYNC_COMMITTEE_SIZE)
  if (typeof participation === 'number') {
    if (!Number.isInteger(participation) || participation < 0 || participation > SYNC_COMMITTEE_SIZE) throw new RangeError('participation: 0…512 signers')
    for (let i = 0; i < participation; i++) bits.set(i, true)
  } else {
    if (participation.length !== SYNC_COMMITTEE_SIZE) throw new RangeError('participation: 512 booleans')
    participation.forEach((on, i) => bits.set(i, on))
  }
  return bits
}

/**
 * The sync aggregate `committee` produces for `attestedRoot` at `signatureSlot` (domain of signatureSlot − 1, as the
 * spec's `validate_light_client_update` checks it). `signingKeys` replaces the members' keys (a wrong-key signature).
 */
export function signSyncAggregate(parameters: {
  config: BeaconConfig
  committee: DevnetCommittee
  attestedRoot: Uint8Array
  signatureSlot: number
  participation?: Participation
  signingKeys?: readonly bigint[]
}): altair.SyncAggregate {
  const { config, committee, attestedRoot, signatureSlot } = parameters
  const bits = participationBits(parameters.participation ?? SYNC_COMMITTEE_SIZE)
  const keys = parameters.signingKeys ?? committee.secretKeys
  let scalar = 0n
  for (const i of bits.getTrueBitIndexes()) scalar = (scalar + keys[i % keys.length]!) % BLS_R
  if (scalar === 0n) return { syncCommitteeBits: bits, syncCommitteeSignature: G2_POINT_AT_INFINITY }
  const signingRoot = ssz.phase0.SigningData.hashTreeRoot({ objectRoot: attestedRoot, domain: config.getDomain(signatureSlot - 1, DOMAIN_SYNC_COMMITTEE) })
  return { syncCommitteeBits: bits, syncCommitteeSignature: bls.SecretKey.fromBytes(numberToBytes(scalar, { size: 32 })).sign(signingRoot).toBytes() }
}

const G2_POINT_AT_INFINITY = Uint8Array.from([0xc0, ...new Uint8Array(95)])

/** An anvil block as `eth_getBlockByNumber(n, false)` returns it (the fields the payload header needs). */
export type ExecutionBlock = {
  number: Hex
  hash: Hex
  parentHash: Hex
  miner: Hex
  stateRoot: Hex
  receiptsRoot: Hex
  logsBloom: Hex
  mixHash: Hex
  gasLimit: Hex
  gasUsed: Hex
  timestamp: Hex
  extraData: Hex
  baseFeePerGas?: Hex
  blobGasUsed?: Hex
  excessBlobGas?: Hex
  transactions: unknown[]
}

type ExecutionPayloadHeader = ReturnType<typeof ssz.deneb.ExecutionPayloadHeader.defaultValue>

export function executionPayloadHeader(block: ExecutionBlock): ExecutionPayloadHeader {
  const empty = ssz.bellatrix.Transactions.hashTreeRoot([])
  return {
    parentHash: hexToBytes(block.parentHash),
    feeRecipient: hexToBytes(block.miner),
    stateRoot: hexToBytes(block.stateRoot),
    receiptsRoot: hexToBytes(block.receiptsRoot),
    logsBloom: hexToBytes(block.logsBloom),
    prevRandao: hexToBytes(block.mixHash),
    blockNumber: Number(BigInt(block.number)),
    gasLimit: Number(BigInt(block.gasLimit)),
    gasUsed: Number(BigInt(block.gasUsed)),
    timestamp: Number(BigInt(block.timestamp)),
    extraData: hexToBytes(block.extraData),
    baseFeePerGas: BigInt(block.baseFeePerGas ?? 0),
    blockHash: hexToBytes(block.hash),
    transactionsRoot: empty,
    withdrawalsRoot: ssz.capella.Withdrawals.hashTreeRoot([]),
    blobGasUsed: BigInt(block.blobGasUsed ?? 0),
    excessBlobGas: BigInt(block.excessBlobGas ?? 0),
  }
}

// Default field roots of the state and body containers, per fork, computed once. A vector of zero-valued elements
// hashes to the zero subtree of its depth; hashing it element by element (randao_mixes is 65536 roots) takes seconds.
const defaultRootsCache = new Map<string, Uint8Array[]>()
type FieldEntry = { fieldName: string; fieldType: { depth: number; hashTreeRoot(v: unknown): Uint8Array; defaultValue(): unknown; constructor: { name: string } } }

export function defaultFieldRoots(fork: LightClientFork, container: 'BeaconState' | 'BlindedBeaconBlockBody'): Uint8Array[] {
  const key = `${fork}/${container}`
  let roots = defaultRootsCache.get(key)
  if (!roots) {
    const entries = (sszTypesFor(fork)[container] as unknown as { fieldsEntries: FieldEntry[] }).fieldsEntries
    roots = entries.map(({ fieldType }) =>
      fieldType.constructor.name === 'VectorCompositeType' || fieldType.constructor.name === 'VectorBasicType'
        ? zeroNode(fieldType.depth).root
        : fieldType.hashTreeRoot(fieldType.defaultValue()),
    )
    defaultRootsCache.set(key, roots)
  }
  return roots
}

function fieldIndex(fork: LightClientFork, container: 'BeaconState' | 'BlindedBeaconBlockBody', name: string): number {
  const index = (sszTypesFor(fork)[container] as unknown as { fieldsEntries: FieldEntry[] }).fieldsEntries.findIndex((f) => f.fieldName === name)
  if (index < 0) throw new Error(`${fork} ${container} has no field ${name}`)
  return index
}

function containerTree(roots: Uint8Array[], subtrees: Map<number, Node> = new Map()): Node {
  const depth = Math.ceil(Math.log2(roots.length))
  return subtreeFillToContents(
    roots.map((root, i) => subtrees.get(i) ?? LeafNode.fromRoot(root)),
    depth,
  )
}

/** One simulated beacon block, with what a light-client server needs to prove about it. */
export type DevnetBeaconBlock = {
  fork: LightClientFork
  slot: number
  header: phase0.BeaconBlockHeader
  root: Uint8Array
  execution: ExecutionPayloadHeader
  executionBranch: Uint8Array[]
  finalizedRoot: Uint8Array
  currentSyncCommittee: altair.SyncCommittee
  nextSyncCommittee: altair.SyncCommittee
  /** Branches from the state root (Electra gindices: finalized root 169, current committee 86, next 87). */
  finalityBranch: Uint8Array[]
  currentSyncCommitteeBranch: Uint8Array[]
  nextSyncCommitteeBranch: Uint8Array[]
}

export function buildBeaconBlock(parameters: {
  config: BeaconConfig
  genesisTime: number
  slot: number
  proposerIndex?: number
  parentRoot: Uint8Array
  execution: ExecutionPayloadHeader
  /** Root and slot of the block the state names as finalized (zero root at the chain's start). */
  finalized: { root: Uint8Array; slot: number }
  currentCommittee: DevnetCommittee
  nextCommittee: DevnetCommittee
}): DevnetBeaconBlock {
  const { config, slot, execution, finalized } = parameters
  const fork = config.getForkName(slot) as LightClientFork
  if (!isForkPostElectra(fork)) throw new Error(`devnet beacon blocks are Electra or later; slot ${slot} is ${fork}`)
  const forkInfo = config.getForkInfo(slot)

  const executionRoot = ssz.deneb.ExecutionPayloadHeader.hashTreeRoot(execution)
  const bodyRoots = [...defaultFieldRoots(fork, 'BlindedBeaconBlockBody')]
  bodyRoots[fieldIndex(fork, 'BlindedBeaconBlockBody', 'executionPayloadHeader')] = executionRoot
  const bodyNode = containerTree(bodyRoots)
  const executionBranch = new Tree(bodyNode).getSingleProof(BigInt(BLOCK_BODY_EXECUTION_PAYLOAD_GINDEX))

  const headerWithoutState: phase0.BeaconBlockHeader = {
    slot,
    proposerIndex: parameters.proposerIndex ?? slot % 64,
    parentRoot: parameters.parentRoot,
    stateRoot: new Uint8Array(32),
    bodyRoot: bodyNode.root,
  }
  const stateRoots = [...defaultFieldRoots(fork, 'BeaconState')]
  const set = (name: string, root: Uint8Array) => (stateRoots[fieldIndex(fork, 'BeaconState', name)] = root)
  set('genesisTime', ssz.UintNum64.hashTreeRoot(parameters.genesisTime))
  set('genesisValidatorsRoot', config.genesisValidatorsRoot)
  set('slot', ssz.Slot.hashTreeRoot(slot))
  set('fork', ssz.phase0.Fork.hashTreeRoot({ previousVersion: forkInfo.prevVersion, currentVersion: forkInfo.version, epoch: forkInfo.epoch }))
  // After process_block, the state's latest block header is the block's header with a zero state root.
  set('latestBlockHeader', ssz.phase0.BeaconBlockHeader.hashTreeRoot(headerWithoutState))
  set('currentSyncCommittee', parameters.currentCommittee.root)
  set('nextSyncCommittee', parameters.nextCommittee.root)
  set('latestExecutionPayloadHeader', executionRoot)
  const checkpoint = { epoch: Math.floor(finalized.slot / SLOTS_PER_EPOCH), root: finalized.root }
  const finalizedIndex = fieldIndex(fork, 'BeaconState', 'finalizedCheckpoint')
  stateRoots[finalizedIndex] = ssz.phase0.Checkpoint.hashTreeRoot(checkpoint)
  const stateNode = containerTree(stateRoots, new Map([[finalizedIndex, ssz.phase0.Checkpoint.value_toTree(checkpoint)]]))
  const stateTree = new Tree(stateNode)

  // A fresh object, not a spread: ssz caches a header's root on the value under a symbol, and a spread would copy
  // the zero-state-root header's cached root along.
  const header: phase0.BeaconBlockHeader = {
    slot,
    proposerIndex: headerWithoutState.proposerIndex,
    parentRoot: headerWithoutState.parentRoot,
    stateRoot: stateNode.root,
    bodyRoot: headerWithoutState.bodyRoot,
  }
  return {
    fork,
    slot,
    header,
    root: ssz.phase0.BeaconBlockHeader.hashTreeRoot(header),
    execution,
    executionBranch,
    finalizedRoot: finalized.root,
    currentSyncCommittee: parameters.currentCommittee.syncCommittee,
    nextSyncCommittee: parameters.nextCommittee.syncCommittee,
    finalityBranch: stateTree.getSingleProof(BigInt(FINALIZED_ROOT_GINDEX_ELECTRA)),
    currentSyncCommitteeBranch: stateTree.getSingleProof(BigInt(CURRENT_SYNC_COMMITTEE_GINDEX_ELECTRA)),
    nextSyncCommitteeBranch: stateTree.getSingleProof(BigInt(NEXT_SYNC_COMMITTEE_GINDEX_ELECTRA)),
  }
}

export function lightClientHeader(block: DevnetBeaconBlock): LightClientHeader {
  return { beacon: block.header, execution: block.execution, executionBranch: block.executionBranch } as LightClientHeader
}

export function lightClientBootstrap(block: DevnetBeaconBlock): LightClientBootstrap {
  return {
    header: lightClientHeader(block),
    currentSyncCommittee: block.currentSyncCommittee,
    currentSyncCommitteeBranch: block.currentSyncCommitteeBranch,
  } as LightClientBootstrap
}

export type SigningParameters = {
  config: BeaconConfig
  /** Signs at this slot (default: the attested slot + 1); its period picks the committee. */
  signatureSlot?: number
  committee: DevnetCommittee
  participation?: Participation
  signingKeys?: readonly bigint[]
}

function sign(attested: DevnetBeaconBlock, signing: SigningParameters) {
  const signatureSlot = signing.signatureSlot ?? attested.slot + 1
  return {
    signatureSlot,
    syncAggregate: signSyncAggregate({
      config: signing.config,
      committee: signing.committee,
      attestedRoot: attested.root,
      signatureSlot,
      ...(signing.participation !== undefined ? { participation: signing.participation } : {}),
      ...(signing.signingKeys ? { signingKeys: signing.signingKeys } : {}),
    }),
  }
}

/** A period update: `attested`'s next committee with its branch, `finalized` with the finality branch, signed. */
export function lightClientUpdate(attested: DevnetBeaconBlock, finalized: DevnetBeaconBlock, signing: SigningParameters): LightClientUpdate {
  if (!equalBytes(finalized.root, attested.finalizedRoot)) throw new Error('the attested state does not name this block as finalized')
  return {
    attestedHeader: lightClientHeader(attested),
    nextSyncCommittee: attested.nextSyncCommittee,
    nextSyncCommitteeBranch: attested.nextSyncCommitteeBranch,
    finalizedHeader: lightClientHeader(finalized),
    finalityBranch: attested.finalityBranch,
    ...sign(attested, signing),
  } as LightClientUpdate
}

export function lightClientFinalityUpdate(attested: DevnetBeaconBlock, finalized: DevnetBeaconBlock, signing: SigningParameters): LightClientFinalityUpdate {
  if (!equalBytes(finalized.root, attested.finalizedRoot)) throw new Error('the attested state does not name this block as finalized')
  return {
    attestedHeader: lightClientHeader(attested),
    finalizedHeader: lightClientHeader(finalized),
    finalityBranch: attested.finalityBranch,
    ...sign(attested, signing),
  } as LightClientFinalityUpdate
}

export function lightClientOptimisticUpdate(attested: DevnetBeaconBlock, signing: SigningParameters): LightClientOptimisticUpdate {
  return { attestedHeader: lightClientHeader(attested), ...sign(attested, signing) } as LightClientOptimisticUpdate
}

type LightClientTypeName = 'LightClientBootstrap' | 'LightClientUpdate' | 'LightClientFinalityUpdate' | 'LightClientOptimisticUpdate'

/** The beacon-APIs JSON form `{version, data}` of a light-client object of `fork`. */
export function toVersionedJson(fork: LightClientFork, typeName: LightClientTypeName, value: unknown): { version: string; data: unknown } {
  return { version: fork, data: (ssz[fork][typeName] as unknown as { toJson(v: unknown): unknown }).toJson(value) }
}

export function syncPeriodOf(slot: number): number {
  return computeSyncPeriodAtSlot(slot)
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

