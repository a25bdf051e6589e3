// Merkle-Patricia proof verification (the Ethereum yellow paper, appendix D; the proofs of EIP-1186 `eth_getProof`),
// on viem's RLP and keccak: docs/protocol.md#verified-chain-view.
//
// Written here rather than taken from @ethereumjs/mpt, whose `verifyMerkleProof` checks the root only when
// `opts.root` is passed: a forgotten option there silently accepts any proof. This verifier has no such mode: the
// first node must hash to the root, every later hashed node to the reference its parent holds, and nodes under 32
// bytes are read where their parent embeds them (they never appear in the proof list on their own).
//
// Result: the value stored under the key, or `null` when the proof shows the key is absent (an empty branch slot,
// or a leaf/extension whose path leaves the key). Anything else (a node that does not hash to its reference, a
// malformed node, an unused trailing node, a proof that stops early) throws `invalid_proof`.
import { fromRlp, keccak256, type Hex } from 'viem'
import { constantTimeEqual } from '../../keys/bytes.ts'
import { ChainViewError } from './errors.ts'

/** keccak256(rlp("")): the root of an empty trie (an account without storage). */
export const EMPTY_TRIE_ROOT: Hex = '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421'

type Node = Uint8Array | readonly Node[]

function invalid(message: string): never {
  throw new ChainViewError('invalid_proof', message)
}

function nibblesOf(key: Uint8Array): number[] {
  const out: number[] = []
  for (const byte of key) out.push(byte >> 4, byte & 0x0f)
  return out
}

/** Hex-prefix (compact) path of a leaf or extension node: its nibbles and whether it is a leaf. */
function decodeCompactPath(encoded: Uint8Array): { leaf: boolean; path: number[] } {
  if (encoded.length === 0) invalid('empty compact path')
  const flag = encoded[0]! >> 4
  if (flag > 3) invalid(`bad compact path flag ${flag}`)
  const odd = (flag & 1) === 1
  if (!odd && (encoded[0]! & 0x0f) !== 0) invalid('non-zero padding nibble in an even compact path')
  const nibbles = nibblesOf(encoded)
  return { leaf: flag >= 2, path: nibbles.slice(odd ? 1 : 2) }
}

function startsWith(key: number[], at: number, path: number[]): boolean {
  if (key.length - at < path.length) return false
  for (let i = 0; i < path.length; i++) if (key[at + i] !== path[i]) return false
  return true
}

function decodeNode(bytes: Uint8Array): Node {
  try {
    return fromRlp(bytes, 'bytes') as Node
  } catch (error) {
    return invalid(`malformed trie node: ${(error as Error).message.split('\n')[0]}`)
  }
}

/**
 * Verifies `proof` for `key` (already hashed: keccak256(address) for accounts, keccak256(slot) for storage) against
 * `root`, and returns the RLP value stored under the key, or null when the proof shows it absent.
 */
export function verifyMptProof(root: Hex, key: Uint8Array, proof: readonly Hex[]): Uint8Array | null {
  if (key.length !== 32) throw new RangeError(`key must be 32 bytes (a hashed key), got ${key.length}`)
  if (!/^0x[0-9a-fA-F]{64}$/.test(root)) throw new RangeError(`root must be 32 bytes, got ${root}`)
  const nibbles = nibblesOf(key)
  const rootBytes = hexBytes(root, 'root')
  if (proof.length === 0) {
    if (root.toLowerCase() === EMPTY_TRIE_ROOT) return null
    invalid('empty proof for a non-empty trie')
  }
  let at = 0 // nibbles of the key consumed so far
  let next = 0 // index of the next proof node to use
  /** The reference the next node must match: a 32-byte hash, or a node embedded in its parent. */
  let reference: { hash: Uint8Array } | { node: Node } = { hash: rootBytes }

  const done = (value: Uint8Array | null) => {
    if (next !== proof.length) invalid(`proof has ${proof.length - next} unused trailing node(s)`)
    return value
  }

  for (;;) {
    let node: Node
    if ('hash' in reference) {
      const encoded = proof[next]
      if (encoded === undefined) invalid(`proof ends after ${next} node(s) before reaching the key`)
      const bytes = hexBytes(encoded, `proof node ${next}`)
      if (!constantTimeEqual(hexBytes(keccak256(bytes), 'hash'), reference.hash)) invalid(`proof node ${next} does not hash to the reference of its parent`)
      next++
      node = decodeNode(bytes)
      if (node instanceof Uint8Array) {
        // Only the root of an empty trie is a bare string: rlp("").
        if (node.length === 0 && next === 1) return done(null)
        invalid(`proof node ${next - 1} is not a list`)
      }
    } else {
      node = reference.node
    }
    if (node instanceof Uint8Array) invalid('trie node is not a list')
    const items = node as readonly Node[]

    let child: Node
    if (items.length === 17) {
      if (at === nibbles.length) {
        const value = items[16]!
        if (!(value instanceof Uint8Array)) invalid('branch value is not a string')
        return done(value.length === 0 ? null : value)
      }
      child = items[nibbles[at]!]!
      at++
    } else if (items.length === 2) {
      const [pathBytes, second] = items as [Node, Node]
      if (!(pathBytes instanceof Uint8Array)) invalid('compact path is not a string')
      const { leaf, path } = decodeCompactPath(pathBytes)
      if (leaf) {
        if (!(second instanceof Uint8Array)) invalid('leaf value is not a string')
        if (second.length === 0) invalid('leaf with an empty value')
        const matches = nibbles.length - at === path.length && startsWith(nibbles, at, path)
        return done(matches ? second : null)
      }
      if (path.length === 0) invalid('extension node with an empty path')
      if (!startsWith(nibbles, at, path)) return done(null)
      at += path.length
      child = second
    } else {
      return invalid(`trie node has ${items.length} items (2 or 17 expected)`)
    }

    if (child instanceof Uint8Array) {
      if (child.length === 0) return done(null)
      if (child.length !== 32) invalid(`child reference of ${child.length} bytes (0 or 32 expected)`)
      reference = { hash: child }
    } else {
      reference = { node: child }
    }
  }
}

function hexBytes(value: string, what: string): Uint8Array {
  if (typeof value !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(value)) invalid(`${what} is not hex bytes`)
  return Uint8Array.from(Buffer.from(value.slice(2), 'hex'))
}

/** The trie key of an account (its address) or a storage slot (32 bytes): keccak256 of it (the "secure" trie). */
export const trieKey = (preimage: Hex): Uint8Array => hexBytes(keccak256(preimage), 'key')
