import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import fc from 'fast-check'
import { parseMeasuredSettings } from '../config.ts'
import { canonicalJson, settingsDigest } from './settingsDigest.ts'

type Vector = { file: unknown; canonical: string; settingsDigest: string }
const vectors = (JSON.parse(readFileSync(new URL('../../test/vectors/settings-digest.json', import.meta.url), 'utf8')) as { cases: Vector[] }).cases

test('default: the vectors of test/vectors/settings-digest.json (docs/protocol.md#measured-settings)', () => {
  assert.equal(vectors.length, 2)
  for (const v of vectors) {
    const measured = parseMeasuredSettings(v.file, 'vector')
    assert.equal(canonicalJson(measured), v.canonical)
    assert.equal(settingsDigest(measured), v.settingsDigest)
    // Independent checks: noble's keccak over the UTF-8 bytes, and the canonical text is the same data as the settings.
    assert.equal(`0x${bytesToHex(keccak_256(utf8ToBytes(v.canonical)))}`, v.settingsDigest)
    assert.deepEqual(JSON.parse(v.canonical), JSON.parse(JSON.stringify(measured)))
    assert.doesNotMatch(v.canonical, /\s/)
  }
})

test('default: JCS member order (UTF-16 code units), escapes and integers', () => {
  // U+00E9 < U+FF01 < U+1F600 in code points, but U+1F600 is the surrogate pair D83D DE00, which sorts before U+FF01.
  const value = { z: 1, a: [true, false, 'x'], '\u00e9': 0, '\uff01': -0, '\u{1f600}': 'q"\\\n\u0001\u007f€', B: {}, 10: 2, 9: 3 }
  assert.equal(
    canonicalJson(value),
    '{"10":2,"9":3,"B":{},"a":[true,false,"x"],"z":1,"\u00e9":0,"\u{1f600}":"q\\"\\\\\\n\\u0001\u007f€","\uff01":0}',
  )
  assert.equal(canonicalJson(Number.MAX_SAFE_INTEGER), '9007199254740991')
  assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}')
})

test('error: values canonical settings JSON has no form for', () => {
  const cases: [unknown, RegExp][] = [
    [{ a: { b: 1.5 } }, /^\$\.a\.b: canonical settings JSON takes integers within ±\(2\^53 − 1\) only, got 1\.5$/],
    [[2 ** 53], /^\$\[0\]: .*integers/],
    [{ a: null }, /^\$\.a: canonical settings JSON has no form for null$/],
    [{ a: 1n }, /bigint/],
    [new Date(0), /object/],
    [Number.NaN, /integers/],
  ]
  for (const [value, expected] of cases) assert.throws(() => canonicalJson(value), { name: 'TypeError', message: expected })
})

test('property: key order of the input does not matter; the text parses back to the same value', () => {
  const settingsLike = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
    ),
  })).value
  fc.assert(
    fc.property(settingsLike, (value) => {
      const text = canonicalJson(value)
      const reversed = JSON.parse(JSON.stringify(value), function (this: unknown, _key, inner: unknown) {
        if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner
        return Object.fromEntries(Object.entries(inner as object).reverse())
      })
      assert.equal(canonicalJson(reversed), text)
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)))
    }),
    { seed: 10, numRuns: 300 },
  )
})

test('security: a different setting, or a different spelling of one, moves the digest only when the meaning moves', () => {
  const base = vectors[0]!.file as Record<string, unknown>
  const digest = settingsDigest(parseMeasuredSettings(base, 'v'))
  // Same meaning, other spelling: checksummed vs lowercase registry, seal object vs shorthand, a default written out.
  const respelled = { ...base, chain: { chainId: 11155111, registry: '0x5fbdb2315678afecb367f032d93f642f64180aa3' }, seal: { provider: 'dstack' }, maxReferenceAge: 64 }
  assert.equal(settingsDigest(parseMeasuredSettings(respelled, 'v')), digest)
  // Another meaning: a pinned appId, another seal, another registry.
  const pods = base.pods as Record<string, unknown>
  for (const changed of [
    { ...base, pods: { ...pods, appIds: { web: `0x${'00'.repeat(20)}` } } },
    { ...base, seal: 'none' },
    { ...base, chain: { chainId: 11155111, registry: `0x${'11'.repeat(20)}` } },
    // Another trust root of the chain view, another pinned registry code, another freshness bound.
    { ...base, chainView: { ...(base.chainView as object), lightClient: { network: 'sepolia', checkpointRoot: `0x${'22'.repeat(32)}` } } },
    { ...base, chainView: { ...(base.chainView as object), registryCodeHash: `0x${'33'.repeat(32)}` } },
    { ...base, chainView: { ...(base.chainView as object), freshness: { timeoutSeconds: 60 } } },
  ])
    assert.notEqual(settingsDigest(parseMeasuredSettings(changed, 'v')), digest)
})
