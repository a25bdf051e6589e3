// A small Merkle-Patricia trie builder for tests (yellow paper appendix D): roots and EIP-1186-shaped proofs for any
// set of 32-byte keys, including the shapes a real chain rarely shows (nodes under 32 bytes embedded in their parent,
// long extensions). Also what an attacker would use to forge a storage trie of their own.
import { fromRlp, keccak256, toRlp, type Hex } from 'viem'

type Item = { path: number[]; value: Uint8Array }
type Rlp = Uint8Array | Rlp[]
type Built = { raw: Rlp; encoded: Uint8Array }

const nibbles = (key: Uint8Array) => [...key].flatMap((b) => [b >> 4, b & 0x0f])

function compact(path: number[], leaf: boolean): Uint8Array {
  const odd = path.length % 2 === 1
  const flag = (leaf ? 2 : 0) + (odd ? 1 : 0)
  const all = odd ? [flag, ...path] : [flag, 0, ...path]
  const out = new Uint8Array(all.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = (all[2 * i]! << 4) | all[2 * i + 1]!
  return out
}

const encode = (raw: Rlp): Uint8Array => toRlp(raw as never, 'bytes')

export function buildTrie(entries: { key: Uint8Array; value: Uint8Array }[]) {
  const nodes = new Map<string, Uint8Array>() // hash → encoding, for every node of 32 bytes or more

  function reference(built: Built): Rlp {
    if (built.encoded.length < 32) return built.raw
    const hash = keccak256(built.encoded)
    nodes.set(hash, built.encoded)
    return Uint8Array.from(Buffer.from(hash.slice(2), 'hex'))
  }

  function build(items: Item[]): Built {
    if (items.length === 1) {
      const raw: Rlp = [compact(items[0]!.path, true), items[0]!.value]
      return { raw, encoded: encode(raw) }
    }
    let common = 0
    while (items.every((it) => it.path.length > common && it.path[common] === items[0]!.path[common])) common++
    if (common > 0) {
      const child = build(items.map((it) => ({ path: it.path.slice(common), value: it.value })))
      const raw: Rlp = [compact(items[0]!.path.slice(0, common), false), reference(child)]
      return { raw, encoded: encode(raw) }
    }
    const raw: Rlp[] = []
    for (let n = 0; n < 16; n++) {
      const group = items.filter((it) => it.path[0] === n).map((it) => ({ path: it.path.slice(1), value: it.value }))
      raw.push(group.length === 0 ? new Uint8Array() : reference(build(group)))
    }
    raw.push(new Uint8Array())
    return { raw, encoded: encode(raw) }
  }

  const items = entries.map((e) => ({ path: nibbles(e.key), value: e.value }))
  const rootBuilt: Built = items.length === 0 ? { raw: new Uint8Array(), encoded: encode(new Uint8Array()) } : build(items)
  const root = keccak256(rootBuilt.encoded)
  nodes.set(root, rootBuilt.encoded)

  /** The hashed nodes on the path to `key`, root first (embedded nodes travel inside their parents). */
  function prove(key: Uint8Array): Hex[] {
    const path = nibbles(key)
    const proof: Hex[] = [`0x${Buffer.from(rootBuilt.encoded).toString('hex')}`]
    let node: Rlp = rootBuilt.raw
    let at = 0
    for (;;) {
      if (node instanceof Uint8Array) return proof
      let child: Rlp
      if (node.length === 17) {
        child = node[path[at]!]!
        at++
      } else {
        const encodedPath = node[0] as Uint8Array
        const flag = encodedPath[0]! >> 4
        const p = nibbles(encodedPath).slice(flag % 2 === 1 ? 1 : 2)
        if (flag >= 2) return proof
        if (p.some((n, i) => path[at + i] !== n)) return proof
        at += p.length
        child = node[1]!
      }
      if (child instanceof Uint8Array) {
        if (child.length === 0) return proof
        const encoded = nodes.get(`0x${Buffer.from(child).toString('hex')}`)!
        proof.push(`0x${Buffer.from(encoded).toString('hex')}`)
        node = decodeBuilt(encoded)
      } else {
        node = child
      }
    }
  }

  return { root, prove }
}

const decodeBuilt = (encoded: Uint8Array): Rlp => fromRlp(encoded, 'bytes') as Rlp
