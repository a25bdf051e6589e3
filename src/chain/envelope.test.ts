import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { bytesToHex, fromRlp, hexToBytes, toBlobs, toRlp, type Hex } from 'viem'
import {
  ECIES_CIPHERTEXT_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_ONBOARD_ENTRIES,
  MAX_SECRETS_LIST_BYTES,
  MAX_QUOTE_BYTES,
  ONE_BLOB_ENVELOPE_BYTES,
  blobsToEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  envelopeToBlobs,
  onboardEntriesInOneBlob,
  type Envelope,
  type OnboardEnvelope,
  type RegisterEnvelope,
} from './envelope.ts'
import { EnvelopeError } from './errors.ts'

const bytes = (length: number, fill?: number) =>
  fill === undefined ? new Uint8Array(randomBytes(length)) : new Uint8Array(length).fill(fill)
const ascii = (text: string) => bytesToHex(new TextEncoder().encode(text))
/** Minimal big-endian hex of an integer, as the envelope writes integers. */
const int = (value: bigint): Hex => {
  if (value === 0n) return '0x'
  const hex = value.toString(16)
  return `0x${hex.length % 2 === 1 ? '0' : ''}${hex}`
}

const register: RegisterEnvelope = {
  kind: 'register',
  teeType: 'tdx',
  quote: bytes(5000),
  pubkey64: bytes(64),
  refBlockNumber: 123456n,
  refBlockHash: bytes(32),
  settingsDigest: bytes(32),
}
const onboard: OnboardEnvelope = {
  kind: 'onboard',
  generation: 1n,
  entries: [
    { requestId: 0n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) },
    { requestId: 7n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) },
    { requestId: (1n << 256n) - 1n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) },
  ],
}

/** Raw RLP of a register envelope with some fields replaced, for crafting invalid input. */
function rawRegister(overrides: { [index: number]: Hex | Hex[] } = {}, extra: (Hex | Hex[])[] = []): Uint8Array {
  const items: (Hex | Hex[])[] = [
    ascii('kmb'),
    '0x02',
    ascii('register'),
    '0x01',
    bytesToHex(register.quote),
    bytesToHex(register.pubkey64),
    int(register.refBlockNumber),
    bytesToHex(register.refBlockHash),
    bytesToHex(register.settingsDigest),
  ]
  for (const [index, value] of Object.entries(overrides)) items[Number(index)] = value
  return toRlp([...items, ...extra], 'bytes')
}

function decodeRaw(bytes: Uint8Array): Hex[] {
  return fromRlp(bytes, 'hex') as Hex[]
}

function rejects(input: Uint8Array | Hex, reason: EnvelopeError['reason'], message?: string) {
  assert.throws(
    () => decodeEnvelope(input),
    (error: unknown) => {
      assert.ok(error instanceof EnvelopeError, `expected EnvelopeError, got ${String(error)}`)
      assert.equal(error.reason, reason, error.message)
      if (message !== undefined) assert.equal(error.message, message)
      return true
    },
  )
}

test('default: register round trip', () => {
  const encoded = encodeEnvelope(register)
  assert.deepEqual(decodeEnvelope(encoded), register)
  assert.deepEqual(decodeEnvelope(bytesToHex(encoded)), register)
})

test('default: bootstrap and register encode byte-exactly (docs/protocol.md#blob-envelope vectors)', () => {
  const envelope: Envelope = { kind: 'bootstrap', teeType: 'tdx', quote: Uint8Array.of(0xaa), masterPubkey64: bytes(64, 0x11), settingsDigest: bytes(32, 0x22) }
  const encoded = encodeEnvelope(envelope)
  // f875 list | 83 "kmb" | 02 version | 89 "bootstrap" | 01 tdx | 81aa quote | b840 pubkey | a0 settingsDigest
  assert.equal(bytesToHex(encoded), `0xf875836b6d620289626f6f74737472617001${'81aa'}b840${'11'.repeat(64)}a0${'22'.repeat(32)}`)
  const reg: Envelope = {
    kind: 'register',
    teeType: 'sgx',
    quote: Uint8Array.of(0xbb),
    pubkey64: bytes(64, 0x33),
    refBlockNumber: 0x1234n,
    refBlockHash: bytes(32, 0x44),
    settingsDigest: bytes(32, 0x55),
  }
  // f898 list | 83 "kmb" | 02 | 88 "register" | 02 sgx | 81bb quote | b840 pubkey | 821234 ref block | a0 hash | a0 digest
  assert.equal(
    bytesToHex(encodeEnvelope(reg)),
    `0xf898836b6d62028872656769737465720281bbb840${'33'.repeat(64)}821234a0${'44'.repeat(32)}a0${'55'.repeat(32)}`,
  )
  assert.deepEqual(decodeEnvelope(encodeEnvelope(reg)), reg)
  assert.deepEqual(decodeEnvelope(encoded), envelope)
  assert.deepEqual(decodeEnvelope(encodeEnvelope({ ...envelope, teeType: 'sgx' })), { ...envelope, teeType: 'sgx' })
})

test('default: onboard round trip, edge request ids', () => {
  assert.deepEqual(decodeEnvelope(encodeEnvelope(onboard)), onboard)
  const maxGeneration = { ...onboard, generation: (1n << 64n) - 1n }
  assert.deepEqual(decodeEnvelope(encodeEnvelope(maxGeneration)), maxGeneration)
})

test('default: blobs round trip, one blob and many', () => {
  const blobs = envelopeToBlobs(register)
  assert.equal(blobs.length, 1)
  assert.equal(blobs[0]!.length, 2 + 2 * 131072)
  assert.deepEqual(blobsToEnvelope(blobs), register)
  assert.deepEqual(blobsToEnvelope(blobs.map((b) => hexToBytes(b))), register)

  const big: OnboardEnvelope = {
    kind: 'onboard',
    generation: 3n,
    entries: Array.from({ length: 3000 }, (_, i) => ({ requestId: BigInt(i) * 977n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) })),
  }
  const bigBlobs = envelopeToBlobs(big)
  assert.equal(bigBlobs.length, 3)
  assert.deepEqual(blobsToEnvelope(bigBlobs), big)
})

test('default: MAX_ONBOARD_ENTRIES worst-case entries fit in 6 blobs, one more does not encode', () => {
  const entries = Array.from({ length: MAX_ONBOARD_ENTRIES }, (_, i) => ({
    requestId: (1n << 256n) - 1n - BigInt(i),
    ciphertext: bytes(ECIES_CIPHERTEXT_BYTES, 0xff),
  }))
  const worst: OnboardEnvelope = { kind: 'onboard', generation: (1n << 64n) - 1n, entries }
  const encoded = encodeEnvelope(worst)
  assert.ok(encoded.length <= MAX_ENVELOPE_BYTES, `${encoded.length}`)
  assert.equal(encoded.length, 30 + 130 * MAX_ONBOARD_ENTRIES)
  const blobs = envelopeToBlobs(worst)
  assert.equal(blobs.length, 6)
  assert.deepEqual(blobsToEnvelope(blobs), worst)
  assert.throws(
    () => encodeEnvelope({ ...worst, entries: [...entries, { requestId: 1n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) }] }),
    { name: 'EnvelopeError', reason: 'field_count' },
  )
})

test('limit: an onboard answer is one blob; onboardEntriesInOneBlob is the most entries that fit, one more takes a second blob', () => {
  // A helper's answer to newcomers holding one generation: the plaintext rlp([[1, M_1]]) is 37 bytes.
  const entry = (i: number) => ({ requestId: 1_000_000n + BigInt(i), ciphertext: bytes(ECIES_CIPHERTEXT_BYTES - 32 + 37, i & 0xff) })
  const entries = Array.from({ length: 2000 }, (_, i) => entry(i))
  const fit = onboardEntriesInOneBlob(1n, entries)
  assert.ok(fit > 500 && fit < 2000, `${fit}`)
  const answer: OnboardEnvelope = { kind: 'onboard', generation: 1n, entries: entries.slice(0, fit) }
  assert.ok(encodeEnvelope(answer).length <= ONE_BLOB_ENVELOPE_BYTES)
  assert.equal(envelopeToBlobs(answer).length, 1)
  assert.deepEqual(blobsToEnvelope(envelopeToBlobs(answer).slice(0, 1)), answer, 'blob 0 alone holds the whole answer')
  assert.equal(envelopeToBlobs({ ...answer, entries: entries.slice(0, fit + 1) }).length, 2)
  // Fewer entries than fit: all of them; none: none.
  assert.equal(onboardEntriesInOneBlob(1n, entries.slice(0, 10)), 10)
  assert.equal(onboardEntriesInOneBlob(1n, []), 0)
  // Bigger entries (many generations in each secrets list) fit fewer, found the same way.
  const big = Array.from({ length: 200 }, (_, i) => ({ requestId: BigInt(i + 1), ciphertext: bytes(ECIES_CIPHERTEXT_BYTES - 32 + MAX_SECRETS_LIST_BYTES) }))
  const bigFit = onboardEntriesInOneBlob(2n, big)
  assert.equal(envelopeToBlobs({ kind: 'onboard', generation: 2n, entries: big.slice(0, bigFit) }).length, 1)
  assert.equal(envelopeToBlobs({ kind: 'onboard', generation: 2n, entries: big.slice(0, bigFit + 1) }).length, 2)
})

test('error: encode validates like decode', () => {
  const cases: [Envelope, EnvelopeError['reason']][] = [
    [{ ...register, quote: new Uint8Array(0) }, 'field_length'],
    [{ ...register, quote: bytes(MAX_QUOTE_BYTES + 1) }, 'field_length'],
    [{ ...register, pubkey64: bytes(65) }, 'field_length'],
    [{ ...register, refBlockHash: bytes(31) }, 'field_length'],
    [{ ...register, refBlockNumber: 1n << 64n }, 'field_value'],
    [{ ...register, refBlockNumber: -1n }, 'field_value'],
    [{ ...register, teeType: 'sev' as never }, 'field_value'],
    [{ ...register, teeType: 'toString' as never }, 'field_value'],
    [{ ...register, quote: 'cafe' as never }, 'field_type'],
    [{ ...register, refBlockNumber: 5 as never }, 'field_type'],
    [{ ...onboard, generation: 0n }, 'field_value'],
    [{ ...onboard, entries: [] }, 'field_count'],
    [{ ...onboard, entries: [{ requestId: 1n << 256n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) }] }, 'field_value'],
    [{ ...onboard, entries: [{ requestId: 1n, ciphertext: bytes(92) }] }, 'field_length'],
    [{ ...onboard, entries: [onboard.entries[1]!, onboard.entries[1]!] }, 'duplicate_request'],
    [{ kind: 'rekey' } as never, 'unknown_kind'],
  ]
  for (const [envelope, reason] of cases)
    assert.throws(() => encodeEnvelope(envelope), { name: 'EnvelopeError', reason }, JSON.stringify(reason))
})

test('error: wrong magic, version, kind', () => {
  rejects(rawRegister({ 0: ascii('kmc') }), 'bad_magic', 'Envelope magic is not "kmb".')
  rejects(rawRegister({ 0: [ascii('kmb')] }), 'bad_magic')
  rejects(rawRegister({ 1: '0x01' }), 'unsupported_version', 'Unsupported envelope version.\n\nversion: 1\nsupported: 2')
  rejects(rawRegister({ 1: '0x03' }), 'unsupported_version')
  rejects(rawRegister({ 1: '0x' }), 'unsupported_version')
  rejects(rawRegister({ 1: '0x0002' }), 'non_canonical_integer', 'Envelope field version is an integer with a leading zero byte.')
  rejects(rawRegister({ 1: ['0x02'] }), 'field_type', 'Envelope field version is not bytes.')
  rejects(rawRegister({ 2: ascii('Register') }), 'unknown_kind', `Unknown envelope kind.\n\nkind: ${ascii('Register')}`)
  rejects(rawRegister({ 2: [ascii('register')] }), 'unknown_kind')
})

test('error: extra, missing and nested fields', () => {
  rejects(rawRegister({}, ['0x00']), 'field_count', 'Envelope of kind register has the wrong number of fields.\n\nfields: 7\nexpected: 6')
  rejects(toRlp([ascii('kmb'), '0x02', ascii('register'), '0x01', bytesToHex(register.quote)], 'bytes'), 'field_count')
  // A version-1 register (no settingsDigest) under version 2 is one field short.
  rejects(toRlp(decodeRaw(rawRegister()).slice(0, 8), 'bytes'), 'field_count', 'Envelope of kind register has the wrong number of fields.\n\nfields: 5\nexpected: 6')
  rejects(toRlp([ascii('kmb'), '0x02'], 'bytes'), 'field_count')
  rejects(rawRegister({ 4: [bytesToHex(register.quote)] }), 'field_type', 'Envelope field quote is not bytes.')
  rejects(rawRegister({ 5: [bytesToHex(register.pubkey64)] }), 'field_type')
  rejects(rawRegister({ 7: [] }), 'field_type')
})

test('error: field lengths and values', () => {
  rejects(rawRegister({ 3: '0x03' }), 'field_value', 'Envelope field teeType is not 1 (tdx) or 2 (sgx).\n\nteeType: 3')
  rejects(rawRegister({ 3: '0x' }), 'field_value')
  rejects(rawRegister({ 3: '0x0001' }), 'non_canonical_integer')
  rejects(rawRegister({ 4: '0x' }), 'field_length', `Envelope field quote has a bad length.\n\nlength: 0 bytes\nallowed: 1 to ${MAX_QUOTE_BYTES} bytes`)
  rejects(rawRegister({ 4: bytesToHex(bytes(MAX_QUOTE_BYTES + 1)) }), 'field_length')
  rejects(rawRegister({ 5: bytesToHex(bytes(63)) }), 'field_length', 'Envelope field pubkey64 has a bad length.\n\nlength: 63 bytes\nexpected: 64 bytes')
  rejects(rawRegister({ 5: bytesToHex(bytes(65)) }), 'field_length')
  rejects(rawRegister({ 6: '0x010000000000000000' }), 'field_value', 'Envelope field refBlockNumber is out of range.\n\nlength: 9 bytes\nmaximum: 8 bytes')
  rejects(rawRegister({ 6: '0x00' }), 'non_canonical_integer')
  rejects(rawRegister({ 6: '0x0005' }), 'non_canonical_integer')
  rejects(rawRegister({ 7: bytesToHex(bytes(33)) }), 'field_length')
  rejects(rawRegister({ 8: bytesToHex(bytes(31)) }), 'field_length', 'Envelope field settingsDigest has a bad length.\n\nlength: 31 bytes\nexpected: 32 bytes')
  rejects(rawRegister({ 8: [bytesToHex(bytes(32))] }), 'field_type', 'Envelope field settingsDigest is not bytes.')
  assert.equal((decodeEnvelope(rawRegister({ 6: '0x' })) as RegisterEnvelope).refBlockNumber, 0n)
})

test('error: onboard entries are checked one by one', () => {
  const ciphertext = bytesToHex(bytes(ECIES_CIPHERTEXT_BYTES))
  const raw = (generation: Hex | Hex[], entries: unknown) =>
    toRlp([ascii('kmb'), '0x02', ascii('onboard'), generation, entries as Hex[]], 'bytes')
  assert.deepEqual(decodeEnvelope(raw('0x01', [['0x05', ciphertext]])), {
    kind: 'onboard',
    generation: 1n,
    entries: [{ requestId: 5n, ciphertext: hexToBytes(ciphertext) }],
  })
  rejects(raw('0x', [['0x05', ciphertext]]), 'field_value', 'Envelope field generation is out of range.\n\nvalue: 0\nallowed: 1 to 2^64-1')
  rejects(raw('0x01', []), 'field_count', `Envelope field entries has a bad number of entries.\n\nentries: 0\nallowed: 1 to ${MAX_ONBOARD_ENTRIES}`)
  rejects(raw('0x01', '0x05'), 'field_type', 'Envelope field entries is not a list.')
  rejects(raw('0x01', ['0x05']), 'field_type', 'Envelope field entries[0] is not a list.')
  rejects(raw('0x01', [['0x05']]), 'field_count')
  rejects(raw('0x01', [['0x05', ciphertext, '0x']]), 'field_count')
  rejects(raw('0x01', [['0x0005', ciphertext]]), 'non_canonical_integer')
  rejects(raw('0x01', [[bytesToHex(bytes(33, 1)), ciphertext]]), 'field_value')
  rejects(raw('0x01', [[['0x05'], ciphertext]]), 'field_type')
  rejects(raw('0x01', [['0x05', bytesToHex(bytes(92))]]), 'field_length')
  rejects(raw('0x01', [['0x05', bytesToHex(bytes(93 - 32 + MAX_SECRETS_LIST_BYTES + 1))]]), 'field_length')
  rejects(raw('0x01', [['0x05', [ciphertext]]]), 'field_type')
  rejects(raw('0x01', [['0x05', ciphertext], ['0x06', ciphertext], ['0x05', ciphertext]]), 'duplicate_request',
    'Envelope field entries[2] repeats a request id.\n\nrequestId: 5')
})

test('error: malformed, non-canonical and trailing RLP', () => {
  const good = rawRegister()
  rejects(new Uint8Array(0), 'not_a_list', 'Envelope is not an RLP list.')
  rejects(Uint8Array.of(0x05), 'not_a_list')
  rejects(concat(good, Uint8Array.of(0)), 'malformed_rlp')
  rejects(good.subarray(0, good.length - 1), 'malformed_rlp')
  rejects(Uint8Array.of(0xc5, 0x83, 0x6b), 'malformed_rlp')
  rejects(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff), 'malformed_rlp')
  // The version 2 written as 0x8102 (long form of a single byte).
  const longByte = hexToBytes(bytesToHex(good).replace('836b6d6202', '836b6d628102') as Hex)
  rejects(fixListLength(longByte), 'non_canonical_rlp', 'Envelope RLP is not canonical.')
  // A short list header written in long form: c3 → f8 03.
  rejects(Uint8Array.of(0xf8, 0x04, 0x83, 0x6b, 0x6d, 0x62), 'non_canonical_rlp')
  rejects('0x1', 'malformed_rlp', 'Envelope input is neither bytes nor even-length 0x-hex.')
  rejects('0xzz' as Hex, 'malformed_rlp')
  rejects(new Uint8Array(MAX_ENVELOPE_BYTES + 1), 'too_large')
})

test('error: inputs built to be expensive are refused quickly', () => {
  // An onboard envelope whose entries list holds ~760k one-byte items.
  const items = new Uint8Array(MAX_ENVELOPE_BYTES - 40).fill(0x01)
  const started = performance.now()
  rejects(toRlp([ascii('kmb'), '0x02', ascii('onboard'), '0x01', [bytesToHex(items)]], 'bytes'), 'field_type')
  const header = toRlp([ascii('kmb'), '0x02', ascii('onboard'), '0x01'], 'bytes').subarray(1)
  const entries = concat(listHeader(items.length), items)
  const flat = concat(listHeader(header.length + entries.length), header, entries)
  rejects(flat, 'too_large', 'Envelope has more RLP items than any valid envelope.\n\nmaximum: 17586 items')
  // 2000 nested lists.
  let nested: Uint8Array = Uint8Array.of(0xc0)
  for (let i = 0; i < 2000; i++) nested = concat(listHeader(nested.length), nested)
  rejects(nested, 'malformed_rlp')
  assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`)
})

test('error: blobs that are not the canonical packing', () => {
  const blobs = envelopeToBlobs(register).map((b) => hexToBytes(b))
  const rejectBlobs = (input: readonly (Hex | Uint8Array)[], message?: string) =>
    assert.throws(() => blobsToEnvelope(input), (error: unknown) => {
      assert.ok(error instanceof EnvelopeError)
      assert.equal(error.reason, 'bad_blobs', error.message)
      if (message !== undefined) assert.equal(error.message, message)
      return true
    })
  rejectBlobs([], 'An envelope spans 1 to 6 blobs.\n\nblobs: 0')
  rejectBlobs(Array.from({ length: 7 }, () => blobs[0]!))
  rejectBlobs([blobs[0]!.subarray(0, 131040)], 'Blob 0 is not 131072 bytes.\n\nsize: 131040')
  rejectBlobs(['0x1234'])
  const highByte = blobs[0]!.slice()
  highByte[32 * 100] = 1
  rejectBlobs([highByte], 'Blob 0 has a field element with a nonzero high byte.\n\nfield element: 100')
  // Garbage after the terminator.
  const afterTerminator = blobs[0]!.slice()
  afterTerminator[131071] = 0x01
  rejectBlobs([afterTerminator])
  // An extra, empty blob.
  rejectBlobs([blobs[0]!, new Uint8Array(131072)])
  // No terminator at all.
  rejectBlobs([new Uint8Array(131072)])
  // Valid packing of data that is not an envelope.
  assert.throws(() => blobsToEnvelope(toBlobs({ data: Uint8Array.of(0x83, 1, 2, 3) })), { name: 'EnvelopeError', reason: 'not_a_list' })
})

test('fuzz: random and mutated bytes only ever give EnvelopeError or a canonical envelope', () => {
  const seeds = [encodeEnvelope(register), encodeEnvelope(onboard), rawRegister({ 4: '0x01' })]
  const started = performance.now()
  let decoded = 0
  for (let i = 0; i < 4000; i++) {
    let input: Uint8Array
    if (i % 4 === 0) input = bytes(Math.floor(Math.random() * 300))
    else {
      input = seeds[i % seeds.length]!.slice()
      for (let m = 0, n = 1 + Math.floor(Math.random() * 4); m < n; m++) input = mutate(input)
    }
    try {
      const envelope = decodeEnvelope(input)
      assert.deepEqual(encodeEnvelope(envelope), input)
      decoded++
    } catch (error) {
      if (!(error instanceof EnvelopeError)) assert.fail(`input ${bytesToHex(input.subarray(0, 64))}… threw ${String(error)}`)
    }
  }
  const elapsed = performance.now() - started
  assert.ok(elapsed < 20_000, `took ${elapsed} ms`)
  assert.ok(decoded < 4000)
})

test('fuzz: random and mutated blobs only ever give EnvelopeError', () => {
  const seed = hexToBytes(envelopeToBlobs({ ...register, quote: bytes(300) })[0]!)
  const started = performance.now()
  for (let i = 0; i < 1500; i++) {
    let blob: Uint8Array
    if (i % 3 === 0) blob = bytes(131072)
    else if (i % 3 === 1) {
      // A canonical packing of random data: it passes the blob checks and reaches the RLP decoder.
      const data = i % 2 === 0 ? bytes(1 + Math.floor(Math.random() * 2000)) : concat(Uint8Array.of(0xf9, 0x01, 0x00), bytes(256))
      blob = toBlobs({ data })[0]!
    } else {
      blob = seed.slice()
      const position = Math.floor(Math.random() * 400)
      blob[position] = Math.floor(Math.random() * 256)
    }
    try {
      blobsToEnvelope([blob])
    } catch (error) {
      if (!(error instanceof EnvelopeError)) assert.fail(`blob ${i} threw ${String(error)}`)
    }
  }
  const elapsed = performance.now() - started
  assert.ok(elapsed < 30_000, `took ${elapsed} ms`)
})

function mutate(input: Uint8Array): Uint8Array {
  const at = Math.floor(Math.random() * (input.length + 1))
  switch (Math.floor(Math.random() * 5)) {
    case 0: {
      if (input.length === 0) return input
      const out = input.slice()
      out[at % input.length] = Math.floor(Math.random() * 256)
      return out
    }
    case 1:
      return concat(input.subarray(0, at), Uint8Array.of(Math.floor(Math.random() * 256)), input.subarray(at))
    case 2:
      return concat(input.subarray(0, at), input.subarray(at + 1 + Math.floor(Math.random() * 8)))
    case 3:
      return input.subarray(0, at)
    default:
      return concat(input, bytes(1 + Math.floor(Math.random() * 8)))
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function listHeader(length: number): Uint8Array {
  if (length <= 55) return Uint8Array.of(0xc0 + length)
  if (length < 1 << 8) return Uint8Array.of(0xf8, length)
  if (length < 1 << 16) return Uint8Array.of(0xf9, length >> 8, length & 0xff)
  return Uint8Array.of(0xfa, length >> 16, (length >> 8) & 0xff, length & 0xff)
}

/** Rewrites the outer list header of `input` after an edit grew its payload (keeps the original header form). */
function fixListLength(input: Uint8Array): Uint8Array {
  const prefix = input[0]!
  const lengthOfLength = prefix - 0xf7
  const payload = input.subarray(1 + lengthOfLength)
  const header = new Uint8Array(1 + lengthOfLength)
  header[0] = prefix
  let length = payload.length
  for (let i = lengthOfLength; i >= 1; i--) {
    header[i] = length & 0xff
    length >>= 8
  }
  return concat(header, payload)
}

test('default: rotate envelope round trip, and onboard ciphertexts of every generation', () => {
  const rotate: Envelope = {
    kind: 'rotate',
    generation: 2n,
    proposal: 7n,
    teeType: 'tdx',
    quote: bytes(5000, 3),
    masterPubkey64: bytes(64, 4),
    settingsDigest: bytes(32, 5),
    entries: [
      { memberId: 2n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES, 6) },
      { memberId: 9n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES, 7) },
    ],
  }
  assert.deepEqual(blobsToEnvelope(envelopeToBlobs(rotate)), rotate)
  const onboard: Envelope = { kind: 'onboard', generation: 3n, entries: [{ requestId: 4n, ciphertext: bytes(93 + 3 * 43, 8) }] }
  assert.deepEqual(decodeEnvelope(encodeEnvelope(onboard)), onboard)
})

test('default: onboard and rotate encode byte-exactly (docs/protocol.md#blob-envelope vectors)', () => {
  const onboard: Envelope = { kind: 'onboard', generation: 1n, entries: [{ requestId: 7n, ciphertext: bytes(97, 0x66) }] }
  // f876 list | 83 "kmb" | 02 | 87 "onboard" | 01 generation | f866 entries | f864 entry | 07 request id | b861 ciphertext
  assert.equal(bytesToHex(encodeEnvelope(onboard)), `0xf876836b6d6202876f6e626f61726401f866f86407b861${'66'.repeat(97)}`)
  assert.deepEqual(decodeEnvelope(encodeEnvelope(onboard)), onboard)
  const rotate: Envelope = {
    kind: 'rotate',
    generation: 2n,
    proposal: 1n,
    teeType: 'tdx',
    quote: Uint8Array.of(0xaa),
    masterPubkey64: bytes(64, 0x11),
    settingsDigest: bytes(32, 0x22),
    entries: [{ memberId: 3n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES, 0x77) }],
  }
  // f8d8 list | 83 "kmb" | 02 | 86 "rotate" | 02 generation | 01 proposal | 01 tdx | 81aa quote | b840 key | a0 digest
  // | f862 entries | f860 entry | 03 member id | b85d ciphertext (93 bytes)
  assert.equal(
    bytesToHex(encodeEnvelope(rotate)),
    `0xf8d8836b6d620286726f7461746502010181aab840${'11'.repeat(64)}a0${'22'.repeat(32)}f862f86003b85d${'77'.repeat(93)}`,
  )
  assert.deepEqual(decodeEnvelope(encodeEnvelope(rotate)), rotate)
})

test('error: rotate envelope fields', () => {
  const good = {
    kind: 'rotate',
    generation: 2n,
    proposal: 1n,
    teeType: 'sgx',
    quote: bytes(100),
    masterPubkey64: bytes(64),
    settingsDigest: bytes(32),
    entries: [{ memberId: 1n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) }],
  } as const
  const cases: [unknown, string][] = [
    [{ ...good, generation: 1n }, 'field_value'],
    [{ ...good, proposal: 0n }, 'field_value'],
    [{ ...good, settingsDigest: bytes(31) }, 'field_length'],
    [{ ...good, masterPubkey64: bytes(65) }, 'field_length'],
    [{ ...good, entries: [] }, 'field_count'],
    [{ ...good, entries: [{ memberId: 0n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES) }] }, 'field_value'],
    [{ ...good, entries: [{ memberId: 1n, ciphertext: bytes(ECIES_CIPHERTEXT_BYTES + 1) }] }, 'field_length'],
    [{ ...good, entries: [good.entries[0], good.entries[0]] }, 'duplicate_request'],
  ]
  for (const [envelope, reason] of cases) assert.throws(() => encodeEnvelope(envelope as never), { name: 'EnvelopeError', reason }, reason)
  // A rotate envelope with one field short decodes to field_count, never to a crash.
  const fields = fromRlp(encodeEnvelope(good as never), 'hex') as unknown as Hex[]
  assert.throws(() => decodeEnvelope(toRlp(fields.slice(0, -1) as never)), { name: 'EnvelopeError', reason: 'field_count' })
})
