// The 64 report-data bytes a quote binds (docs/protocol.md#report-data): keccak256 of a standard `abi.encode` (not packed, so the
// string tag and the public key are dynamic: offset words, length words, zero padding) as the first 32 bytes, and
// 32 zero bytes after it. ABI types, in order:
//   bootstrap: (string tag, uint256 chainId, address registry, bytes masterPubkey64)
//   register:  (string tag, uint256 chainId, address registry, bytes pubkey64, uint64 refBlockNumber, bytes32 refBlockHash)
// with tag "keymanager.bootstrap.v1" / "keymanager.register.v1". The contract and verifiers recompute the same.
import { encodeAbiParameters, keccak256, type Address } from 'viem'
import { hexToBytes } from '@noble/hashes/utils.js'
import { assertAddress, bytesFrom, parseUint, toHex0x } from './bytes.ts'
import { isValidPublicKey } from './signature.ts'

export const BOOTSTRAP_TAG = 'keymanager.bootstrap.v1'
export const REGISTER_TAG = 'keymanager.register.v1'

function reportDataOf(encoded: `0x${string}`): Uint8Array {
  const out = new Uint8Array(64)
  out.set(hexToBytes(keccak256(encoded).slice(2)), 0)
  return out
}

function pubkey64(value: unknown, name: string): `0x${string}` {
  const bytes = bytesFrom(value, 64, name)
  // A report binding something that is not a point can never be used on chain (the contract checks the curve).
  if (!isValidPublicKey(bytes)) throw new RangeError(`${name} is not a point on secp256k1`)
  return toHex0x(bytes)
}

export type BootstrapReportDataArgs = {
  chainId: number | bigint
  registry: Address
  /** Uncompressed master public key without the 0x04 prefix. */
  masterPubkey64: Uint8Array | `0x${string}`
}

/** keccak256(abi.encode("keymanager.bootstrap.v1", chainId, registry, masterPubkey64)) ‖ 32 zero bytes. */
export function bootstrapReportData(args: BootstrapReportDataArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const encoded = encodeAbiParameters(
    [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'bytes' }],
    [BOOTSTRAP_TAG, chainId, args.registry, pubkey64(args.masterPubkey64, 'masterPubkey64')],
  )
  return reportDataOf(encoded)
}

export type RegisterReportDataArgs = {
  chainId: number | bigint
  registry: Address
  /** The newcomer's ephemeral public key, uncompressed without 0x04. */
  pubkey64: Uint8Array | `0x${string}`
  refBlockNumber: number | bigint
  refBlockHash: Uint8Array | `0x${string}`
}

/**
 * keccak256(abi.encode("keymanager.register.v1", chainId, registry, pubkey64, refBlockNumber, refBlockHash))
 * ‖ 32 zero bytes.
 */
export function registerReportData(args: RegisterReportDataArgs): Uint8Array {
  const chainId = parseUint(args.chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(args.registry, 'registry')
  const refBlockNumber = parseUint(args.refBlockNumber, { name: 'refBlockNumber', bits: 64 })
  const refBlockHash = toHex0x(bytesFrom(args.refBlockHash, 32, 'refBlockHash'))
  const encoded = encodeAbiParameters(
    [
      { type: 'string' },
      { type: 'uint256' },
      { type: 'address' },
      { type: 'bytes' },
      { type: 'uint64' },
      { type: 'bytes32' },
    ],
    [REGISTER_TAG, chainId, args.registry, pubkey64(args.pubkey64, 'pubkey64'), refBlockNumber, refBlockHash],
  )
  return reportDataOf(encoded)
}
