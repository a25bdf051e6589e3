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
  masterPubkeyX: { label: '_masterPubkeyX', slot: 3n, offset: 0, bytes: 32, type: 't_bytes32' },
  requestCount: { label: '_requestCount', slot: 5n, offset: 0, bytes: 8, type: 't_uint64' },
  requestTtl: { label: '_requestTtl', slot: 5n, offset: 8, bytes: 8, type: 't_uint64' },
  acceptedTcbStatuses: { label: '_acceptedTcbStatuses', slot: 5n, offset: 16, bytes: 2, type: 't_uint16' },
  maxCollateralAge: { label: '_maxCollateralAge', slot: 5n, offset: 18, bytes: 8, type: 't_uint64' },
  fmspcAllowlistOn: { label: '_fmspcAllowlistOn', slot: 5n, offset: 26, bytes: 1, type: 't_bool' },
  minTcbEvaluationDataNumber: { label: '_minTcbEvaluationDataNumber', slot: 5n, offset: 27, bytes: 4, type: 't_uint32' },
  bootstrapper: { label: '_bootstrapper', slot: 9n, offset: 0, bytes: 20, type: 't_address' },
} as const satisfies Record<string, SlotField>

/** Mappings: their base slot, key type and value type as forge names them. */
export const KEY_MANAGER_MAPPINGS = {
  measurementActivatesAt: { label: '_measurementActivatesAt', slot: 6n, key: 'bytes32', type: 't_mapping(t_bytes32,t_uint64)' },
  fmspcAllowed: { label: '_fmspcAllowed', slot: 7n, key: 'bytes6', type: 't_mapping(t_bytes6,t_bool)' },
  requests: { label: '_requests', slot: 8n, key: 'uint256', type: 't_mapping(t_uint256,t_struct(Request)' },
  freshnessMarkedAt: { label: '_freshnessMarkedAt', slot: 10n, key: 'bytes32', type: 't_mapping(t_bytes32,t_uint64)' },
} as const

/** Members of `struct Request`, relative to the entry's slot. */
export const REQUEST_MEMBERS = {
  key: { label: 'key', slot: 0n, offset: 0, bytes: 20, type: 't_address' },
  expiresAt: { label: 'expiresAt', slot: 0n, offset: 20, bytes: 8, type: 't_uint64' },
  status: { label: 'status', slot: 0n, offset: 28, bytes: 1, type: 't_uint8' },
  commitment: { label: 'commitment', slot: 1n, offset: 0, bytes: 32, type: 't_bytes32' },
} as const satisfies Record<string, SlotField>

export const slotHex = (slot: bigint): Hex => numberToHex(slot, { size: 32 })

/** keccak256(abi.encode(key, slot)): where `mapping[key]` lives. */
export function mappingSlot(base: bigint, keyType: 'bytes32' | 'bytes6' | 'uint256', key: Hex | bigint): bigint {
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
