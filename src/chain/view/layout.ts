// The KeyManager storage layout, in one place (docs/protocol.md#verified-chain-view): which slot holds what, and how a
// proven 32-byte slot value becomes a typed field. `layout.test.ts` pins every entry against
// `forge inspect KeyManager storageLayout`, so a contract change that moves a variable fails the tests instead of
// making the node read the wrong slot.
//
// Solidity's rules ("Layout of State Variables in Storage"): value types pack into a slot from its low-order bytes
// (`offset` counts bytes from the right); a mapping entry lives at keccak256(abi.encode(key, slot)) (a bytesN key is
// left-aligned, an integer key right-aligned: exactly abi.encode); a struct's members follow from that slot on.
import { encodeAbiParameters, getAddress, keccak256, numberToHex, type Address, type Hex } from 'viem'

export type SlotField = { label: string; slot: bigint; offset: number; bytes: number; type: string }

/** The state variables a decision reads (docs/protocol.md#registry-contract). */
export const KEY_MANAGER_LAYOUT = {
  owner: { label: '_owner', slot: 0n, offset: 0, bytes: 20, type: 't_address' },
  xPub: { label: '_xPub', slot: 2n, offset: 0, bytes: 20, type: 't_address' },
  generation: { label: '_generation', slot: 2n, offset: 20, bytes: 8, type: 't_uint64' },
  masterPubkeyPrefix: { label: '_masterPubkeyPrefix', slot: 2n, offset: 28, bytes: 1, type: 't_uint8' },
  currentRevoked: { label: '_currentRevoked', slot: 2n, offset: 29, bytes: 1, type: 't_bool' },
  proposalPending: { label: '_proposalPending', slot: 2n, offset: 30, bytes: 1, type: 't_bool' },
  masterPubkeyX: { label: '_masterPubkeyX', slot: 3n, offset: 0, bytes: 32, type: 't_bytes32' },
  requestCount: { label: '_requestCount', slot: 5n, offset: 0, bytes: 8, type: 't_uint64' },
  requestTtl: { label: '_requestTtl', slot: 5n, offset: 8, bytes: 8, type: 't_uint64' },
  acceptedTcbStatuses: { label: '_acceptedTcbStatuses', slot: 5n, offset: 16, bytes: 2, type: 't_uint16' },
  maxCollateralAge: { label: '_maxCollateralAge', slot: 5n, offset: 18, bytes: 8, type: 't_uint64' },
  fmspcAllowlistOn: { label: '_fmspcAllowlistOn', slot: 5n, offset: 26, bytes: 1, type: 't_bool' },
  minTcbEvaluationDataNumber: { label: '_minTcbEvaluationDataNumber', slot: 5n, offset: 27, bytes: 4, type: 't_uint32' },
  bootstrapper: { label: '_bootstrapper', slot: 9n, offset: 0, bytes: 20, type: 't_address' },
  memberCount: { label: '_memberCount', slot: 13n, offset: 0, bytes: 8, type: 't_uint64' },
  proposalCount: { label: '_proposalCount', slot: 13n, offset: 8, bytes: 8, type: 't_uint64' },
  guardianSetCount: { label: '_guardianSetCount', slot: 20n, offset: 0, bytes: 8, type: 't_uint64' },
  settledGuardianSet: { label: '_settledGuardianSet', slot: 20n, offset: 8, bytes: 8, type: 't_uint64' },
  pendingGuardianSet: { label: '_pendingGuardianSet', slot: 20n, offset: 16, bytes: 8, type: 't_uint64' },
  recoveryRequestId: { label: '_recoveryRequestId', slot: 23n, offset: 0, bytes: 32, type: 't_uint256' },
} as const satisfies Record<string, SlotField>

/** State variables that are structs (docs/protocol.md#generations): base slot and the struct's name. */
export const KEY_MANAGER_STRUCTS = {
  rotation: { label: '_rotation', slot: 14n, struct: 'Rotation' },
  proposal: { label: '_proposal', slot: 15n, struct: 'Proposal' },
} as const

/** Mappings: their base slot, key type and value type as forge names them. */
export const KEY_MANAGER_MAPPINGS = {
  measurementActivatesAt: { label: '_measurementActivatesAt', slot: 6n, key: 'bytes32', type: 't_mapping(t_bytes32,t_uint64)' },
  fmspcAllowed: { label: '_fmspcAllowed', slot: 7n, key: 'bytes6', type: 't_mapping(t_bytes6,t_bool)' },
  requests: { label: '_requests', slot: 8n, key: 'uint256', type: 't_mapping(t_uint256,t_struct(Request)' },
  freshnessMarkedAt: { label: '_freshnessMarkedAt', slot: 10n, key: 'bytes32', type: 't_mapping(t_bytes32,t_uint64)' },
  generations: { label: '_generations', slot: 11n, key: 'uint64', type: 't_mapping(t_uint64,t_struct(Generation)' },
  generationOf: { label: '_generationOf', slot: 12n, key: 'address', type: 't_mapping(t_address,t_uint64)' },
  acknowledged: { label: '_acknowledged', slot: 19n, key: 'uint64', type: 't_mapping(t_uint64,t_mapping(t_uint256,t_bool))' },
  guardianSets: { label: '_guardianSets', slot: 21n, key: 'uint64', type: 't_mapping(t_uint64,t_struct(GuardianSet)' },
  guardianIndex: { label: '_guardianIndex', slot: 22n, key: 'uint64', type: 't_mapping(t_uint64,t_mapping(t_address,t_uint8))' },
  releasedShares: { label: '_releasedShares', slot: 24n, key: 'uint256', type: 't_mapping(t_uint256,t_mapping(t_uint64,t_uint256))' },
} as const

/** Members of `struct Request`, relative to the entry's slot. A request id is also its member id. */
export const REQUEST_MEMBERS = {
  key: { label: 'key', slot: 0n, offset: 0, bytes: 20, type: 't_address' },
  expiresAt: { label: 'expiresAt', slot: 0n, offset: 20, bytes: 5, type: 't_uint40' },
  status: { label: 'status', slot: 0n, offset: 25, bytes: 1, type: 't_uint8' },
  /** The generation the request was last answered under (0 while unanswered). */
  generation: { label: 'generation', slot: 0n, offset: 26, bytes: 6, type: 't_uint48' },
  commitment: { label: 'commitment', slot: 1n, offset: 0, bytes: 32, type: 't_bytes32' },
} as const satisfies Record<string, SlotField>

/** Members of `struct Generation` (`generationInfo`), relative to the entry's slot. */
export const GENERATION_MEMBERS = {
  xPub: { label: 'xPub', slot: 0n, offset: 0, bytes: 20, type: 't_address' },
  retiresAt: { label: 'retiresAt', slot: 0n, offset: 20, bytes: 8, type: 't_uint64' },
  pubkeyPrefix: { label: 'pubkeyPrefix', slot: 0n, offset: 28, bytes: 1, type: 't_uint8' },
  revoked: { label: 'revoked', slot: 0n, offset: 29, bytes: 1, type: 't_bool' },
  purged: { label: 'purged', slot: 0n, offset: 30, bytes: 1, type: 't_bool' },
  pubkeyX: { label: 'pubkeyX', slot: 1n, offset: 0, bytes: 32, type: 't_bytes32' },
  quoteBlobHash: { label: 'quoteBlobHash', slot: 2n, offset: 0, bytes: 32, type: 't_bytes32' },
  escrowHash: { label: 'escrowHash', slot: 3n, offset: 0, bytes: 32, type: 't_bytes32' },
  escrowGuardianSet: { label: 'escrowGuardianSet', slot: 4n, offset: 0, bytes: 8, type: 't_uint64' },
  committedAt: { label: 'committedAt', slot: 4n, offset: 8, bytes: 8, type: 't_uint64' },
} as const satisfies Record<string, SlotField>

/** Members of `struct Rotation` (`_rotation`, slot 14). */
export const ROTATION_MEMBERS = {
  open: { label: 'open', slot: 0n, offset: 0, bytes: 1, type: 't_bool' },
  emergency: { label: 'emergency', slot: 0n, offset: 1, bytes: 1, type: 't_bool' },
  overlap: { label: 'overlap', slot: 0n, offset: 2, bytes: 8, type: 't_uint64' },
  forceDelay: { label: 'forceDelay', slot: 0n, offset: 10, bytes: 8, type: 't_uint64' },
  startedAt: { label: 'startedAt', slot: 0n, offset: 18, bytes: 8, type: 't_uint64' },
} as const satisfies Record<string, SlotField>

/** Members of `struct Proposal` (`_proposal`, slots 15-18). */
export const PROPOSAL_MEMBERS = {
  id: { label: 'id', slot: 0n, offset: 0, bytes: 8, type: 't_uint64' },
  generation: { label: 'generation', slot: 0n, offset: 8, bytes: 8, type: 't_uint64' },
  proposedAt: { label: 'proposedAt', slot: 0n, offset: 16, bytes: 8, type: 't_uint64' },
  recipients: { label: 'recipients', slot: 0n, offset: 24, bytes: 4, type: 't_uint32' },
  acks: { label: 'acks', slot: 0n, offset: 28, bytes: 4, type: 't_uint32' },
  xPub: { label: 'xPub', slot: 1n, offset: 0, bytes: 20, type: 't_address' },
  proposerId: { label: 'proposerId', slot: 1n, offset: 20, bytes: 8, type: 't_uint64' },
  pubkeyPrefix: { label: 'pubkeyPrefix', slot: 1n, offset: 28, bytes: 1, type: 't_uint8' },
  pubkeyX: { label: 'pubkeyX', slot: 2n, offset: 0, bytes: 32, type: 't_bytes32' },
  blobHash: { label: 'blobHash', slot: 3n, offset: 0, bytes: 32, type: 't_bytes32' },
} as const satisfies Record<string, SlotField>

/** Members of `struct GuardianSet`, relative to the entry's slot. */
export const GUARDIAN_SET_MEMBERS = {
  pubkeysHash: { label: 'pubkeysHash', slot: 0n, offset: 0, bytes: 32, type: 't_bytes32' },
  threshold: { label: 'threshold', slot: 1n, offset: 0, bytes: 1, type: 't_uint8' },
  count: { label: 'count', slot: 1n, offset: 1, bytes: 1, type: 't_uint8' },
  activatesAt: { label: 'activatesAt', slot: 1n, offset: 2, bytes: 8, type: 't_uint64' },
} as const satisfies Record<string, SlotField>

export const slotHex = (slot: bigint): Hex => numberToHex(slot, { size: 32 })

export type MappingKeyType = 'bytes32' | 'bytes6' | 'uint256' | 'uint64' | 'address'

/** keccak256(abi.encode(key, slot)): where `mapping[key]` lives (a nested mapping applies this twice, outer key first). */
export function mappingSlot(base: bigint, keyType: MappingKeyType, key: Hex | bigint): bigint {
  return BigInt(keccak256(encodeAbiParameters([{ type: keyType }, { type: 'uint256' }], [key as never, base])))
}

/** The member bytes of a packed slot value, as an unsigned integer. */
export function member(value: bigint, field: Pick<SlotField, 'offset' | 'bytes'>): bigint {
  return (value >> BigInt(field.offset * 8)) & ((1n << BigInt(field.bytes * 8)) - 1n)
}

export const asAddress = (value: bigint): Address => getAddress(numberToHex(value, { size: 20 }))
export const asBytes32 = (value: bigint): Hex => numberToHex(value, { size: 32 })

export const requestSlot = (requestId: bigint): bigint => mappingSlot(KEY_MANAGER_MAPPINGS.requests.slot, 'uint256', requestId)
export const measurementSlot = (id: Hex): bigint => mappingSlot(KEY_MANAGER_MAPPINGS.measurementActivatesAt.slot, 'bytes32', id)
export const fmspcSlot = (fmspc: Hex): bigint => mappingSlot(KEY_MANAGER_MAPPINGS.fmspcAllowed.slot, 'bytes6', fmspc)
/** Where `markFresh(mark)` stores the block of the mark's first recording (docs/protocol.md#registry-contract). */
export const freshnessSlot = (mark: Hex): bigint => mappingSlot(KEY_MANAGER_MAPPINGS.freshnessMarkedAt.slot, 'bytes32', mark)

// Generations (docs/protocol.md#generations): the entries a node proves to know who is a member, which generations
// verify, the rotation's state, guardians and recovery. A member is `requests[id]` with status 3 (confirmed); 4 is
// revoked; `memberCount` counts status 3.
const M = KEY_MANAGER_MAPPINGS
export const generationSlot = (generation: bigint): bigint => mappingSlot(M.generations.slot, 'uint64', generation)
export const generationOfSlot = (xPub: Address): bigint => mappingSlot(M.generationOf.slot, 'address', xPub)
export const acknowledgedSlot = (proposal: bigint, memberId: bigint): bigint =>
  mappingSlot(mappingSlot(M.acknowledged.slot, 'uint64', proposal), 'uint256', memberId)
export const guardianSetSlot = (guardianSet: bigint): bigint => mappingSlot(M.guardianSets.slot, 'uint64', guardianSet)
export const guardianIndexSlot = (guardianSet: bigint, guardian: Address): bigint =>
  mappingSlot(mappingSlot(M.guardianIndex.slot, 'uint64', guardianSet), 'address', guardian)
export const releasedSharesSlot = (requestId: bigint, generation: bigint): bigint =>
  mappingSlot(mappingSlot(M.releasedShares.slot, 'uint256', requestId), 'uint64', generation)
