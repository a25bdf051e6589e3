// An `eth_getProof` answer (EIP-1186) for the registry, checked against a verified state root
// (docs/protocol.md#verified-chain-view):
//   1. the account proof leads from the state root to the registry's account; the account RLP is decoded here;
//   2. its code hash must be the runtime code hash pinned in the measured settings: that pins the bytecode and with
//      it the immutables (`measurementDelay`, the cached chain id and domain separator), so the slots below mean what
//      `layout.ts` says they mean;
//   3. each storage proof leads from the storage root *decoded from the proven account*, never the `storageHash`
//      the RPC also sends, to the slot's value (absent = 0).
// Every value, nonce, balance or hash the RPC states beside its proofs is ignored.
import { fromRlp, getAddress, hexToBigInt, numberToHex, type Address, type Hex } from 'viem'
import { ChainViewError } from './errors.ts'
import { trieKey, verifyMptProof } from './mpt.ts'

export type GetProofResponse = {
  address?: unknown
  accountProof?: unknown
  storageProof?: unknown
}

export type ProvenAccount = { nonce: bigint; balance: bigint; storageRoot: Hex; codeHash: Hex }

function invalid(message: string): never {
  throw new ChainViewError('invalid_proof', message)
}

function hexList(value: unknown, what: string): Hex[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) invalid(`${what} is not a list of hex strings`)
  return value as Hex[]
}

const bytesToBigInt = (bytes: Uint8Array): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`))
const bytes32Hex = (bytes: Uint8Array, what: string): Hex => {
  if (bytes.length !== 32) invalid(`${what} is ${bytes.length} bytes, not 32`)
  return `0x${Buffer.from(bytes).toString('hex')}`
}

/** The account `address` as the proof shows it at `stateRoot`, or null when the proof shows no account there. */
export function verifyAccountProof(stateRoot: Hex, address: Address, proof: readonly Hex[]): ProvenAccount | null {
  const leaf = verifyMptProof(stateRoot, trieKey(address), proof)
  if (leaf === null) return null
  let fields: unknown
  try {
    fields = fromRlp(leaf, 'bytes')
  } catch {
    invalid('account leaf is not RLP')
  }
  if (!Array.isArray(fields) || fields.length !== 4 || fields.some((f) => !(f instanceof Uint8Array))) invalid('account leaf is not [nonce, balance, storageRoot, codeHash]')
  const [nonce, balance, storageRoot, codeHash] = fields as Uint8Array[]
  return {
    nonce: bytesToBigInt(nonce!),
    balance: bytesToBigInt(balance!),
    storageRoot: bytes32Hex(storageRoot!, 'storageRoot'),
    codeHash: bytes32Hex(codeHash!, 'codeHash'),
  }
}

/** The value of one storage slot as the proof shows it under `storageRoot` (0 when absent). */
export function verifyStorageProof(storageRoot: Hex, slot: bigint, proof: readonly Hex[]): bigint {
  const leaf = verifyMptProof(storageRoot, trieKey(numberToHex(slot, { size: 32 })), proof)
  if (leaf === null) return 0n
  let value: unknown
  try {
    value = fromRlp(leaf, 'bytes')
  } catch {
    invalid('storage leaf is not RLP')
  }
  // The bytes are what the trie committed to, so their encoding cannot be forged; only the length is checked. (anvil
  // keeps a slot set back to zero as an empty value where clients delete the key: both mean 0.)
  if (!(value instanceof Uint8Array) || value.length > 32) invalid('storage leaf is not an integer of at most 32 bytes')
  return bytesToBigInt(value)
}

/**
 * Verifies a whole `eth_getProof(address, slots, block)` answer against `stateRoot` and returns each slot's value.
 * The account must exist and carry `codeHash` (`registry_code_mismatch` otherwise).
 */
export function verifyRegistryProof(
  response: GetProofResponse | null | undefined,
  expected: { stateRoot: Hex; address: Address; codeHash: Hex; slots: readonly bigint[] },
): { account: ProvenAccount; values: Map<bigint, bigint> } {
  if (!response || typeof response !== 'object') invalid('eth_getProof answered nothing')
  const account = verifyAccountProof(expected.stateRoot, getAddress(expected.address), hexList(response.accountProof, 'accountProof'))
  if (!account) throw new ChainViewError('registry_code_mismatch', `no account at the registry address ${expected.address} in the verified state`)
  if (account.codeHash.toLowerCase() !== expected.codeHash.toLowerCase())
    throw new ChainViewError('registry_code_mismatch', `the registry's code hash is ${account.codeHash}, the measured settings pin ${expected.codeHash}`)
  const entries = response.storageProof
  if (!Array.isArray(entries)) invalid('storageProof is not a list')
  const proofs = new Map<bigint, Hex[]>()
  for (const entry of entries as { key?: unknown; proof?: unknown }[]) {
    if (!entry || typeof entry.key !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(entry.key)) invalid('storage proof entry without a valid key')
    const slot = hexToBigInt(entry.key as Hex)
    if (proofs.has(slot)) invalid(`two storage proofs for slot ${entry.key}`)
    proofs.set(slot, hexList(entry.proof, `storage proof of ${entry.key}`))
  }
  const values = new Map<bigint, bigint>()
  for (const slot of expected.slots) {
    const proof = proofs.get(slot)
    if (!proof) invalid(`no storage proof for slot ${numberToHex(slot, { size: 32 })}`)
    values.set(slot, verifyStorageProof(account.storageRoot, slot, proof))
  }
  return { account, values }
}
