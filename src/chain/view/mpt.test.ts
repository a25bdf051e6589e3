// The proof verifier against tries built independently (test/referenceTrie.ts): leaves, branches, extensions and
// nodes under 32 bytes embedded in their parent, presence and absence, and every way a proof can be tampered with.
// Real `eth_getProof` answers from anvil are checked in accountProof.test.ts.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { fromRlp, keccak256, toRlp, type Hex } from 'viem'
import { buildTrie } from '../../../test/referenceTrie.ts'
import { ChainViewError } from './errors.ts'
import { EMPTY_TRIE_ROOT, verifyMptProof } from './mpt.ts'

const key = (hex: string) => Uint8Array.from(Buffer.from(hex.padStart(64, '0'), 'hex'))
const value = (text: string) => toRlp(Buffer.from(text).toString('hex') === '' ? '0x' : `0x${Buffer.from(text).toString('hex')}`, 'bytes')
const hexOf = (bytes: Uint8Array) => `0x${Buffer.from(bytes).toString('hex')}`

function rejects(fn: () => unknown, pattern?: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChainViewError, `expected a ChainViewError, got ${String(error)}`)
    assert.equal(error.reason, 'invalid_proof')
    if (pattern) assert.match(error.message, pattern)
    return true
  })
}

describe('verifyMptProof', () => {
  test('default: present keys give their values, absent keys null, in a trie with every node kind', () => {
    // Keys sharing 31 bytes end in a branch whose leaves are a few bytes long: embedded, not hashed.
    const shared = 'ab'.repeat(31)
    const entries = [
      { key: key(shared + '01'), value: value('a') },
      { key: key(shared + '02'), value: value('b') },
      { key: key(shared + 'f2'), value: value('c') },
      { key: key('11'.repeat(32)), value: value('a value long enough that its leaf is hashed, not embedded') },
      { key: key('12'.repeat(32)), value: value('d') },
    ]
    const trie = buildTrie(entries)
    for (const entry of entries) assert.equal(hexOf(verifyMptProof(trie.root, entry.key, trie.prove(entry.key))!), hexOf(entry.value))
    // Absent: an empty branch slot, a leaf for another key, an extension that leaves the key.
    for (const absent of [shared + '03', '13'.repeat(32), 'ab'.repeat(30) + 'cd01', '00'.repeat(32)]) {
      assert.equal(verifyMptProof(trie.root, key(absent), trie.prove(key(absent))), null, absent)
    }
    // The short leaves really are embedded: their proof ends with the branch that holds them, not with a leaf node.
    const last = fromRlp(trie.prove(entries[0]!.key).at(-1)!, 'bytes') as unknown[]
    assert.equal(last.length, 17)
    assert.ok(Array.isArray(last[0x0]), 'the leaf of key ...01 sits inside the branch')
  })

  test('default: the empty trie proves every key absent', () => {
    assert.equal(verifyMptProof(EMPTY_TRIE_ROOT, key('01'), []), null)
    assert.equal(verifyMptProof(EMPTY_TRIE_ROOT, key('01'), ['0x80']), null)
    rejects(() => verifyMptProof(keccak256('0x01'), key('01'), []), /empty proof/)
  })

  test('default: random tries, random keys (fast-check, fixed seed)', () => {
    const entryArb = fc.record({
      prefix: fc.integer({ min: 0, max: 31 }),
      tail: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      text: fc.string({ minLength: 1, maxLength: 40 }),
    })
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 24 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw, probe) => {
        // A common prefix of random length gives extensions and, at the bottom, embedded nodes.
        const stem = Buffer.alloc(32, 0x5a)
        const byKey = new Map<string, { key: Uint8Array; value: Uint8Array }>()
        for (const r of raw) {
          const k = Uint8Array.from(Buffer.concat([stem.subarray(0, r.prefix), Buffer.from(r.tail).subarray(r.prefix)]))
          byKey.set(hexOf(k), { key: k, value: value(r.text) })
        }
        const entries = [...byKey.values()]
        const trie = buildTrie(entries)
        for (const e of entries) assert.equal(hexOf(verifyMptProof(trie.root, e.key, trie.prove(e.key))!), hexOf(e.value))
        if (!byKey.has(hexOf(probe))) assert.equal(verifyMptProof(trie.root, probe, trie.prove(probe)), null)
      }),
      { seed: 20261101, numRuns: 200 },
    )
  })

  test('error: any changed byte of any proof node is refused', () => {
    const entries = Array.from({ length: 40 }, (_, i) => ({ key: Uint8Array.from(randomBytes(32)), value: value(`value ${i}`) }))
    const trie = buildTrie(entries)
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, where, xor) => {
        const target = entries[which % entries.length]!
        const proof = trie.prove(target.key)
        const n = which % proof.length
        const bytes = Buffer.from(proof[n]!.slice(2), 'hex')
        bytes[where % bytes.length]! ^= xor
        const tampered = proof.map((p, i) => (i === n ? (`0x${bytes.toString('hex')}` as Hex) : p))
        rejects(() => verifyMptProof(trie.root, target.key, tampered))
      }),
      { seed: 7, numRuns: 300 },
    )
  })

  test('error: wrong root, missing node, extra node, another key\'s proof', () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({ key: Uint8Array.from(randomBytes(32)), value: value(`v${i}`) }))
    const trie = buildTrie(entries)
    const [a, b] = entries as [(typeof entries)[0], (typeof entries)[0]]
    const proof = trie.prove(a.key)
    assert.ok(proof.length >= 2)
    rejects(() => verifyMptProof(keccak256('0x1234'), a.key, proof), /does not hash/)
    rejects(() => verifyMptProof(trie.root, a.key, proof.slice(0, -1)), /ends after/)
    rejects(() => verifyMptProof(trie.root, a.key, [...proof, proof.at(-1)!]), /unused trailing/)
    // b's proof for a's key: where their paths part, the next node is b's, which does not hash to a's reference.
    rejects(() => verifyMptProof(trie.root, a.key, trie.prove(b.key)))
    // A truncated proof cannot pass for an absence proof either.
    rejects(() => verifyMptProof(trie.root, a.key, proof.slice(0, 1)))
    rejects(() => verifyMptProof(trie.root, a.key, ['0xzz' as Hex]), /not hex/)
    assert.throws(() => verifyMptProof(trie.root, a.key.subarray(1), proof), RangeError)
  })

  test('error: a forged trie of the attacker\'s own does not verify under the real root', () => {
    const k = Uint8Array.from(randomBytes(32))
    const real = buildTrie([{ key: k, value: value('real') }, { key: Uint8Array.from(randomBytes(32)), value: value('x') }])
    const forged = buildTrie([{ key: k, value: value('forged') }])
    rejects(() => verifyMptProof(real.root, k, forged.prove(k)), /does not hash/)
  })
})
