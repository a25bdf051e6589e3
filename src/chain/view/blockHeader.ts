// The block path of the verified chain view (docs/protocol.md#verified-chain-view): the light client vouches for an
// execution block hash; the RPC serves the block; its header, RLP-encoded, must hash to that very hash, and only then
// is its state root (and number and timestamp) believed. Light-client headers of later forks keep only the block
// hash, so this path is the one every decision takes, whatever the fork.
//
// The header is the RLP list of the yellow paper's fields in order, then the fields later forks appended: London
// `baseFeePerGas`, Shanghai `withdrawalsRoot`, Cancun `blobGasUsed`, `excessBlobGas`, `parentBeaconBlockRoot`, Prague
// `requestsHash` (EIP-7685; Osaka added none). A header with a field this list does not know hashes differently and
// is refused: the code fails closed on an unknown fork.
import { keccak256, toRlp, type Hex } from 'viem'
import { ChainViewError } from './errors.ts'

/** A block header as `eth_getBlockByHash` returns it (JSON-RPC hex strings); only the fields hashed are read. */
export type RpcBlockHeader = Record<string, unknown>

type Field = { name: string; kind: 'bytes' | 'quantity'; length?: number }

const BASE_FIELDS: Field[] = [
  { name: 'parentHash', kind: 'bytes', length: 32 },
  { name: 'sha3Uncles', kind: 'bytes', length: 32 },
  { name: 'miner', kind: 'bytes', length: 20 },
  { name: 'stateRoot', kind: 'bytes', length: 32 },
  { name: 'transactionsRoot', kind: 'bytes', length: 32 },
  { name: 'receiptsRoot', kind: 'bytes', length: 32 },
  { name: 'logsBloom', kind: 'bytes', length: 256 },
  { name: 'difficulty', kind: 'quantity' },
  { name: 'number', kind: 'quantity' },
  { name: 'gasLimit', kind: 'quantity' },
  { name: 'gasUsed', kind: 'quantity' },
  { name: 'timestamp', kind: 'quantity' },
  { name: 'extraData', kind: 'bytes' },
  { name: 'mixHash', kind: 'bytes', length: 32 },
  { name: 'nonce', kind: 'bytes', length: 8 },
]

/** Appended by later forks, in this order; a header carries a prefix of this list. */
const FORK_FIELDS: Field[] = [
  { name: 'baseFeePerGas', kind: 'quantity' },
  { name: 'withdrawalsRoot', kind: 'bytes', length: 32 },
  { name: 'blobGasUsed', kind: 'quantity' },
  { name: 'excessBlobGas', kind: 'quantity' },
  { name: 'parentBeaconBlockRoot', kind: 'bytes', length: 32 },
  { name: 'requestsHash', kind: 'bytes', length: 32 },
]

function invalid(message: string): never {
  throw new ChainViewError('invalid_block', message)
}

function fieldBytes(block: RpcBlockHeader, field: Field): Hex {
  const value = block[field.name]
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]*$/.test(value)) invalid(`block field ${field.name} is not hex`)
  if (field.kind === 'quantity') {
    if (value.length > 66) invalid(`block field ${field.name} is over 256 bits`)
    const n = BigInt(value === '0x' ? '0x0' : value)
    if (n === 0n) return '0x'
    const hex = n.toString(16)
    return `0x${hex.length % 2 ? '0' : ''}${hex}`
  }
  if (value.length % 2 !== 0) invalid(`block field ${field.name} has an odd number of hex digits`)
  if (field.length !== undefined && value.length !== 2 + field.length * 2) invalid(`block field ${field.name} is not ${field.length} bytes`)
  return value.toLowerCase() as Hex
}

/** The RLP encoding of a header, from the JSON-RPC block; keccak256 of it is the block hash. */
export function encodeBlockHeader(block: RpcBlockHeader): Uint8Array {
  const fields = BASE_FIELDS.map((f) => fieldBytes(block, f))
  let missing: string | undefined
  for (const field of FORK_FIELDS) {
    const present = block[field.name] !== undefined && block[field.name] !== null
    if (!present) {
      missing ??= field.name
      continue
    }
    if (missing) invalid(`block has ${field.name} but not ${missing}, which an earlier fork added`)
    fields.push(fieldBytes(block, field))
  }
  return toRlp(fields, 'bytes')
}

export type VerifiedBlock = { hash: Hex; number: bigint; stateRoot: Hex; timestamp: bigint }

/**
 * The header fields the view believes, once the RPC's block hashes to `expectedHash`: the block's number, state
 * root and timestamp. Throws `invalid_block` when it does not.
 */
export function verifyBlockHeader(block: RpcBlockHeader | null | undefined, expectedHash: Hex): VerifiedBlock {
  if (!block || typeof block !== 'object') invalid(`the RPC has no block ${expectedHash}`)
  const hash = keccak256(encodeBlockHeader(block))
  if (hash.toLowerCase() !== expectedHash.toLowerCase()) invalid(`the block served for ${expectedHash} hashes to ${hash}`)
  const stateRoot = fieldBytes(block, { name: 'stateRoot', kind: 'bytes', length: 32 })
  return {
    hash: expectedHash.toLowerCase() as Hex,
    number: quantity(block, 'number'),
    stateRoot,
    timestamp: quantity(block, 'timestamp'),
  }
}

function quantity(block: RpcBlockHeader, name: string): bigint {
  const bytes = fieldBytes(block, { name, kind: 'quantity' })
  return bytes === '0x' ? 0n : BigInt(bytes)
}
