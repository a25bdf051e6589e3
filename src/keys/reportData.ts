// The 64 report-data bytes a quote binds (docs/protocol.md#report-data), version 2: keccak256 of a standard
// `abi.encode` (not packed, so the string tag and the public key are dynamic: offset words, length words, zero
// padding) as the first 32 bytes, and PROTOCOL_MARKER = keccak256("keymanager.report-data.v2") as the last 32. ABI
// types, in order:
//   bootstrap: (string tag, uint256 chainId, address registry, bytes masterPubkey64, bytes32 settingsDigest)
//   register:  (string tag, uint256 chainId, address registry, bytes pubkey64, uint64 refBlockNumber,
//               bytes32 refBlockHash, bytes32 settingsDigest)
//   rotate:    (string tag, uint256 chainId, address registry, uint64 generation, bytes masterPubkey64,
//               bytes32 settingsDigest)
// with tag "keymanager.bootstrap.v2" / "keymanager.register.v2" / "keymanager.rotate.v2". settingsDigest is the
// quoting node's (docs/protocol.md#measured-settings): a verifier takes it from the envelope, and the quote's measurement
// vouches for it (the settings file is part of the measured image).
//
// The marker is what keeps pods from obtaining protocol quotes: the pod `GetQuote` (src/tee/podQuote.ts) refuses
// exactly the report data whose last 32 bytes equal it, and serves everything else, dstack's usual 32-byte data
// (zero-padded) included. A marker, unlike v1's 32 zero bytes, is a shape no dstack app produces by accident.
import { encodeAbiParameters, keccak256, stringToBytes, type Address, type Hex } from 'viem'
import { hexToBytes } from '@noble/hashes/utils.js'
import { assertAddress, bytesFrom, parseUint, toHex0x } from './bytes.ts'
import { isValidPublicKey } from './signature.ts'

export const BOOTSTRAP_TAG = 'keymanager.bootstrap.v2'
export const REGISTER_TAG = 'keymanager.register.v2'
export const ROTATE_TAG = 'keymanager.rotate.v2'
/** keccak256(utf8("keymanager.report-data.v2")): the last 32 bytes of every protocol report data. */
export const PROTOCOL_MARKER: Uint8Array = hexToBytes(keccak256(stringToBytes('keymanager.report-data.v2')).slice(2))

/** True when `reportData` (64 bytes) ends in PROTOCOL_MARKER: the shape reserved for protocol quotes. */
export function isProtocolShaped(reportData: Uint8Array): boolean {
  if (reportData.length !== 64) return false
  let diff = 0
  for (let i = 0; i < 32; i++) diff |= reportData[32 + i]! ^ PROTOCOL_MARKER[i]!
  return diff === 0
}

function reportDataOf(encoded: Hex): Uint8Array {
  const out = new Uint8Array(64)
  out.set(hexToBytes(keccak256(encoded).slice(2)), 0)
  out.set(PROTOCOL_MARKER, 32)
  return out
}

function pubkey64(value: unknown, name: string): Hex {
  const bytes = bytesFrom(value, 64, name)
  // A report binding something that is not a point can never be used on chain (the contract checks the curve).
  if (!isValidPublicKey(bytes)) throw new RangeError(`${name} is not a point on secp256k1`)
  return toHex0x(bytes)
}

const bytes32 = (value: unknown, name: string): Hex => toHex0x(bytesFrom(value, 32, name))

type Common = {
  chainId: number | bigint
  registry: Address
  /** The quoting node's settingsDigest (docs/protocol.md#measured-settings). */
  settingsDigest: Uint8Array | Hex
}

function common(args: Common): { chainId: bigint; settingsDigest: Hex } {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  return { chainId, settingsDigest: bytes32(args.settingsDigest, 'settingsDigest') }
}

export type BootstrapReportDataArgs = Common & {
  /** Uncompressed master public key without the 0x04 prefix. */
  masterPubkey64: Uint8Array | Hex
}

/** keccak256(abi.encode("keymanager.bootstrap.v2", chainId, registry, masterPubkey64, settingsDigest)) ‖ PROTOCOL_MARKER. */
export function bootstrapReportData(args: BootstrapReportDataArgs): Uint8Array {
  const { chainId, settingsDigest } = common(args)
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'bytes' }, { type: 'bytes32' }],
    [BOOTSTRAP_TAG, chainId, args.registry, pubkey64(args.masterPubkey64, 'masterPubkey64'), settingsDigest],
  )
  return reportDataOf(encoded)
}

export type RegisterReportDataArgs = Common & {
  /** The newcomer's node key, uncompressed without 0x04. */
  pubkey64: Uint8Array | Hex
  refBlockNumber: number | bigint
  refBlockHash: Uint8Array | Hex
}

/**
 * keccak256(abi.encode("keymanager.register.v2", chainId, registry, pubkey64, refBlockNumber, refBlockHash,
 * settingsDigest)) ‖ PROTOCOL_MARKER.
 */
export function registerReportData(args: RegisterReportDataArgs): Uint8Array {
  const { chainId, settingsDigest } = common(args)
  const refBlockNumber = parseUint(args.refBlockNumber, { name: 'refBlockNumber', bits: 64 })
  const refBlockHash = bytes32(args.refBlockHash, 'refBlockHash')
  const encoded = encodeAbiParameters(
    [
      { type: 'string' },
      { type: 'uint256' },
      { type: 'address' },
      { type: 'bytes' },
      { type: 'uint64' },
      { type: 'bytes32' },
      { type: 'bytes32' },
    ],
    [REGISTER_TAG, chainId, args.registry, pubkey64(args.pubkey64, 'pubkey64'), refBlockNumber, refBlockHash, settingsDigest],
  )
  return reportDataOf(encoded)
}

export type RotateReportDataArgs = Common & {
  /** The generation the new master secret is for (docs/protocol.md#generations). */
  generation: number | bigint
  /** The new generation's master public key, uncompressed without 0x04. */
  masterPubkey64: Uint8Array | Hex
}

/**
 * keccak256(abi.encode("keymanager.rotate.v2", chainId, registry, generation, masterPubkey64, settingsDigest))
 * ‖ PROTOCOL_MARKER (docs/protocol.md#generations).
 */
export function rotateReportData(args: RotateReportDataArgs): Uint8Array {
  const { chainId, settingsDigest } = common(args)
  const generation = parseUint(args.generation, { name: 'generation', bits: 64, min: 1n })
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint64' }, { type: 'bytes' }, { type: 'bytes32' }],
    [ROTATE_TAG, chainId, args.registry, generation, pubkey64(args.masterPubkey64, 'masterPubkey64'), settingsDigest],
  )
  return reportDataOf(encoded)
}
