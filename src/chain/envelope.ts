// The blob envelope of docs/protocol.md#blob-envelope: RLP `["kmb", 2, kind, ...fields]`, packed into EIP-4844 blobs with
// viem's `toBlobs`. Blobs come from untrusted hosts and nodes, so decoding is strict and total: any input either yields
// exactly the envelope that encodes to it, or an `EnvelopeError`.
//
// Version 2 adds the quoting node's settingsDigest (docs/protocol.md#measured-settings) as the last field of `bootstrap`
// and `register`: report data v2 binds it (docs/protocol.md#report-data), so a verifier needs it to recompute the report
// data. Version 1 envelopes are refused (`unsupported_version`): no network ran them with report data v2.
//
// Encoding decisions (version 2):
// - magic: the 3 ASCII bytes `kmb`; version: the RLP integer 2; kind: the ASCII string `bootstrap`, `register`,
//   `onboard` or `rotate` (readable in a blob explorer; a few bytes are nothing next to a quote).
// - teeType: RLP integer 1 = tdx, 2 = sgx, the same numbers as the measurement-id prefix of docs/protocol.md#measurements-and-tcb-policy.
// - integers: minimal big-endian byte strings (0 is the empty string, no leading zero byte); anything else is
//   refused, so each envelope has one encoding. refBlockNumber and generation fit uint64 (their Solidity type),
//   requestId fits uint256; generation is ≥ 1 (0 means "not bootstrapped", docs/protocol.md#registry-contract).
// - quote: 1..16384 bytes. A TDX v4/v5 or SGX v3 DCAP quote with its embedded PCK certificate chain is ~5-8 KiB;
//   16 KiB leaves room for larger chains while keeping a register envelope in one blob and bounding what a
//   verifier must parse from an anonymous requester.
// - masterPubkey64 / pubkey64: exactly 64 bytes (uncompressed secp256k1 point without 0x04; the contract checks
//   the point is on the curve). refBlockHash and settingsDigest: exactly 32 bytes.
// - onboard entries: 1..MAX_ONBOARD_ENTRIES `[requestId, ciphertext]` pairs, distinct request ids. A ciphertext holds
//   every unpurged generation's secret (docs/protocol.md#onboarding-across-generations): ECIES v1 of
//   `rlp([[g, M_g], ...])`, so from 93 bytes (ECIES of 32 bytes) to 93 + MAX_SECRETS_LIST_BYTES - 32. The count
//   bound MAX_ONBOARD_ENTRIES is the most 93-byte entries that fit in the 6 blobs of one transaction; longer
//   ciphertexts are bounded by the envelope size itself (`too_large`).
// - rotate (docs/protocol.md#generations): `[generation, proposal, teeType, quote, masterPubkey64, settingsDigest,
//   [[memberId, ciphertext], ...]]`: the proposer's quote over the new master key (report data `keymanager.rotate.v2`,
//   which binds its settingsDigest, carried here so a member can recompute it) and the new secret (32 bytes)
//   ECIES-encrypted to each recipient's node key, exactly 93 bytes each, in the order of the proposal's
//   `recipientIds` (1..MAX_ONBOARD_ENTRIES entries, distinct ids).
import { fromBlobs, fromRlp, hexToBytes, isHex, toBlobs, toRlp, type Hex } from 'viem'
import type { TeeType } from '../tee/types.ts'
import { EnvelopeError } from './errors.ts'

export const ENVELOPE_MAGIC = 'kmb'
export const ENVELOPE_VERSION = 2
export const MAX_QUOTE_BYTES = 16384
export const ECIES_CIPHERTEXT_BYTES = 33 + 12 + 32 + 16
/** Largest plaintext of an onboard ciphertext: `rlp([[g, M_g], ...])` of every unpurged generation (~47 of them). */
export const MAX_SECRETS_LIST_BYTES = 2048
const MAX_ONBOARD_CIPHERTEXT_BYTES = ECIES_CIPHERTEXT_BYTES - 32 + MAX_SECRETS_LIST_BYTES
/** Blobs in one transaction (EIP-4844 on cancun; EIP-7594 keeps 6 per transaction). */
export const MAX_BLOBS_PER_ENVELOPE = 6
/** viem's `toBlobs` capacity for 6 blobs: 6 × 4096 × 31 bytes less the 0x80 terminator = 761855. */
export const MAX_ENVELOPE_BYTES = MAX_BLOBS_PER_ENVELOPE * 4096 * 31 - 1
/**
 * Worst-case onboard envelope: outer list header 4 + "kmb" 4 + version 1 + "onboard" 8 + uint64 generation 9
 * + entries list header 4 = 30 bytes, then per entry a list header 2 + 32-byte requestId 33 + ciphertext 2 + 93
 * = 130 bytes. (761855 − 30) / 130 = 5860.2, so 5860 entries always fit.
 */
export const MAX_ONBOARD_ENTRIES = 5860

const BYTES_PER_BLOB = 131072
/** Items in the largest valid envelope: outer list, magic, version, kind, generation, entries list, 3 per entry. */
const MAX_RLP_ITEMS = 6 + 3 * MAX_ONBOARD_ENTRIES
const UINT64_MAX = (1n << 64n) - 1n
const UINT256_MAX = (1n << 256n) - 1n
const TEE_TYPE_CODES = { tdx: 1n, sgx: 2n } as const satisfies Record<TeeType, bigint>
const KINDS = ['bootstrap', 'register', 'onboard', 'rotate'] as const
const FIELD_COUNTS = { bootstrap: 4, register: 6, onboard: 2, rotate: 7 } as const
const MAGIC_BYTES = new TextEncoder().encode(ENVELOPE_MAGIC)
const KIND_BYTES = Object.fromEntries(KINDS.map((kind) => [kind, new TextEncoder().encode(kind)])) as Record<
  (typeof KINDS)[number],
  Uint8Array
>

export type EnvelopeKind = (typeof KINDS)[number]

export type BootstrapEnvelope = {
  kind: 'bootstrap'
  teeType: TeeType
  quote: Uint8Array
  masterPubkey64: Uint8Array
  /** The bootstrapping node's settingsDigest, bound in its report data. */
  settingsDigest: Uint8Array
}
export type RegisterEnvelope = {
  kind: 'register'
  teeType: TeeType
  quote: Uint8Array
  pubkey64: Uint8Array
  refBlockNumber: bigint
  refBlockHash: Uint8Array
  /** The newcomer's settingsDigest, bound in its report data. */
  settingsDigest: Uint8Array
}
export type OnboardEntry = { requestId: bigint; ciphertext: Uint8Array }
export type OnboardEnvelope = {
  kind: 'onboard'
  generation: bigint
  entries: OnboardEntry[]
}
export type RotateEntry = { memberId: bigint; ciphertext: Uint8Array }
export type RotateEnvelope = {
  kind: 'rotate'
  generation: bigint
  proposal: bigint
  teeType: TeeType
  quote: Uint8Array
  masterPubkey64: Uint8Array
  settingsDigest: Uint8Array
  entries: RotateEntry[]
}
export type Envelope = BootstrapEnvelope | RegisterEnvelope | OnboardEnvelope | RotateEnvelope

type RlpItem = Uint8Array | readonly RlpItem[]

/** RLP bytes of an envelope. Validates every field with the same limits decoding enforces. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  let fields: RlpItem[]
  switch (envelope.kind) {
    case 'bootstrap':
      fields = [
        encodeTeeType(envelope.teeType),
        checkQuote(envelope.quote),
        checkFixedBytes(envelope.masterPubkey64, 64, 'masterPubkey64'),
        checkFixedBytes(envelope.settingsDigest, 32, 'settingsDigest'),
      ]
      break
    case 'register':
      fields = [
        encodeTeeType(envelope.teeType),
        checkQuote(envelope.quote),
        checkFixedBytes(envelope.pubkey64, 64, 'pubkey64'),
        encodeInteger(checkInteger(envelope.refBlockNumber, 0n, UINT64_MAX, 'refBlockNumber')),
        checkFixedBytes(envelope.refBlockHash, 32, 'refBlockHash'),
        checkFixedBytes(envelope.settingsDigest, 32, 'settingsDigest'),
      ]
      break
    case 'onboard': {
      const entries = envelope.entries
      if (!Array.isArray(entries)) throw fieldType('entries', 'a list')
      checkEntryCount(entries.length)
      const seen = new Set<bigint>()
      fields = [
        encodeInteger(checkInteger(envelope.generation, 1n, UINT64_MAX, 'generation')),
        entries.map((entry, index) => {
          const requestId = checkInteger(entry.requestId, 0n, UINT256_MAX, `entries[${index}].requestId`)
          checkUnique(seen, requestId, index)
          return [encodeInteger(requestId), checkOnboardCiphertext(entry.ciphertext, `entries[${index}].ciphertext`)]
        }),
      ]
      break
    }
    case 'rotate': {
      const entries = envelope.entries
      if (!Array.isArray(entries)) throw fieldType('entries', 'a list')
      checkEntryCount(entries.length)
      const seen = new Set<bigint>()
      fields = [
        encodeInteger(checkInteger(envelope.generation, 2n, UINT64_MAX, 'generation')),
        encodeInteger(checkInteger(envelope.proposal, 1n, UINT64_MAX, 'proposal')),
        encodeTeeType(envelope.teeType),
        checkQuote(envelope.quote),
        checkFixedBytes(envelope.masterPubkey64, 64, 'masterPubkey64'),
        checkFixedBytes(envelope.settingsDigest, 32, 'settingsDigest'),
        entries.map((entry, index) => {
          const memberId = checkInteger(entry.memberId, 1n, UINT256_MAX, `entries[${index}].memberId`)
          checkUnique(seen, memberId, index)
          return [encodeInteger(memberId), checkFixedBytes(entry.ciphertext, ECIES_CIPHERTEXT_BYTES, `entries[${index}].ciphertext`)]
        }),
      ]
      break
    }
    default:
      throw new EnvelopeError('unknown_kind', 'Unknown envelope kind.', {
        metaMessages: [`kind: ${JSON.stringify(String((envelope as { kind: unknown }).kind))}`],
      })
  }
  return toRlp([MAGIC_BYTES, encodeInteger(BigInt(ENVELOPE_VERSION)), KIND_BYTES[envelope.kind], ...fields], 'bytes')
}

/** Decodes envelope bytes; anything but a canonical, in-bounds version-2 envelope is an `EnvelopeError`. */
export function decodeEnvelope(input: Uint8Array | Hex): Envelope {
  const bytes = toInputBytes(input)
  if (bytes.length > MAX_ENVELOPE_BYTES)
    throw new EnvelopeError('too_large', 'Envelope is larger than 6 blobs can carry.', {
      metaMessages: [`size: ${bytes.length} bytes`, `maximum: ${MAX_ENVELOPE_BYTES} bytes`],
    })
  // viem's fromRlp materialises every item (and tracks each read position); a megabyte of 1-byte items costs
  // ~0.5 s and ~200 MB. No valid envelope has more than MAX_RLP_ITEMS items, so count headers first.
  if (countRlpItems(bytes, MAX_RLP_ITEMS) > MAX_RLP_ITEMS)
    throw new EnvelopeError('too_large', 'Envelope has more RLP items than any valid envelope.', {
      metaMessages: [`maximum: ${MAX_RLP_ITEMS} items`],
    })
  let root: RlpItem
  try {
    root = fromRlp(bytes, 'bytes') as RlpItem
  } catch (cause) {
    throw new EnvelopeError('malformed_rlp', 'Envelope is not valid RLP.', {
      metaMessages: [`detail: ${cause instanceof Error ? firstLine(cause.message) : 'unknown'}`],
      cause,
    })
  }
  if (!Array.isArray(root)) throw new EnvelopeError('not_a_list', 'Envelope is not an RLP list.')
  // viem's fromRlp accepts non-minimal lengths and long forms of single bytes; one envelope, one encoding.
  if (!equalBytes(toRlp(root as RlpItem[], 'bytes'), bytes))
    throw new EnvelopeError('non_canonical_rlp', 'Envelope RLP is not canonical.')
  const items = root as readonly RlpItem[]
  if (items.length < 3)
    throw new EnvelopeError('field_count', 'Envelope header is incomplete.', {
      metaMessages: [`items: ${items.length}`, 'expected: magic, version, kind and fields'],
    })
  const magic = items[0]
  if (!(magic instanceof Uint8Array) || !equalBytes(magic, MAGIC_BYTES))
    throw new EnvelopeError('bad_magic', 'Envelope magic is not "kmb".')
  const version = readInteger(items[1], 'version', 0n, UINT64_MAX)
  if (version !== BigInt(ENVELOPE_VERSION))
    throw new EnvelopeError('unsupported_version', 'Unsupported envelope version.', {
      metaMessages: [`version: ${version}`, `supported: ${ENVELOPE_VERSION}`],
    })
  const kindItem = items[2]
  const kind = kindItem instanceof Uint8Array ? KINDS.find((k) => equalBytes(kindItem, KIND_BYTES[k])) : undefined
  if (kind === undefined)
    throw new EnvelopeError('unknown_kind', 'Unknown envelope kind.', {
      metaMessages: [`kind: ${kindItem instanceof Uint8Array ? `0x${Buffer.from(kindItem.subarray(0, 32)).toString('hex')}` : 'a list'}`],
    })
  const fields = items.slice(3)
  if (fields.length !== FIELD_COUNTS[kind])
    throw new EnvelopeError('field_count', `Envelope of kind ${kind} has the wrong number of fields.`, {
      metaMessages: [`fields: ${fields.length}`, `expected: ${FIELD_COUNTS[kind]}`],
    })
  switch (kind) {
    case 'bootstrap':
      return {
        kind,
        teeType: readTeeType(fields[0]),
        quote: readQuote(fields[1]),
        masterPubkey64: readFixedBytes(fields[2], 64, 'masterPubkey64'),
        settingsDigest: readFixedBytes(fields[3], 32, 'settingsDigest'),
      }
    case 'register':
      return {
        kind,
        teeType: readTeeType(fields[0]),
        quote: readQuote(fields[1]),
        pubkey64: readFixedBytes(fields[2], 64, 'pubkey64'),
        refBlockNumber: readInteger(fields[3], 'refBlockNumber', 0n, UINT64_MAX),
        refBlockHash: readFixedBytes(fields[4], 32, 'refBlockHash'),
        settingsDigest: readFixedBytes(fields[5], 32, 'settingsDigest'),
      }
    case 'onboard': {
      const generation = readInteger(fields[0], 'generation', 1n, UINT64_MAX)
      const list = fields[1]
      if (!Array.isArray(list)) throw fieldType('entries', 'a list')
      const entryItems = list as readonly RlpItem[]
      checkEntryCount(entryItems.length)
      const seen = new Set<bigint>()
      const entries = entryItems.map((item, index): OnboardEntry => {
        if (!Array.isArray(item)) throw fieldType(`entries[${index}]`, 'a list')
        const pair = item as readonly RlpItem[]
        if (pair.length !== 2)
          throw new EnvelopeError('field_count', `Envelope field entries[${index}] has the wrong number of items.`, {
            metaMessages: [`items: ${pair.length}`, 'expected: 2 (requestId, ciphertext)'],
          })
        const requestId = readInteger(pair[0], `entries[${index}].requestId`, 0n, UINT256_MAX)
        checkUnique(seen, requestId, index)
        return { requestId, ciphertext: checkOnboardCiphertext(readBytes(pair[1], `entries[${index}].ciphertext`), `entries[${index}].ciphertext`).slice() }
      })
      return { kind, generation, entries }
    }
    case 'rotate': {
      const generation = readInteger(fields[0], 'generation', 2n, UINT64_MAX)
      const proposal = readInteger(fields[1], 'proposal', 1n, UINT64_MAX)
      const teeType = readTeeType(fields[2])
      const quote = readQuote(fields[3])
      const masterPubkey64 = readFixedBytes(fields[4], 64, 'masterPubkey64')
      const settingsDigest = readFixedBytes(fields[5], 32, 'settingsDigest')
      const list = fields[6]
      if (!Array.isArray(list)) throw fieldType('entries', 'a list')
      const entryItems = list as readonly RlpItem[]
      checkEntryCount(entryItems.length)
      const seen = new Set<bigint>()
      const entries = entryItems.map((item, index): RotateEntry => {
        if (!Array.isArray(item)) throw fieldType(`entries[${index}]`, 'a list')
        const pair = item as readonly RlpItem[]
        if (pair.length !== 2)
          throw new EnvelopeError('field_count', `Envelope field entries[${index}] has the wrong number of items.`, {
            metaMessages: [`items: ${pair.length}`, 'expected: 2 (memberId, ciphertext)'],
          })
        const memberId = readInteger(pair[0], `entries[${index}].memberId`, 1n, UINT256_MAX)
        checkUnique(seen, memberId, index)
        return { memberId, ciphertext: readFixedBytes(pair[1], ECIES_CIPHERTEXT_BYTES, `entries[${index}].ciphertext`) }
      })
      return { kind, generation, proposal, teeType, quote, masterPubkey64, settingsDigest, entries }
    }
  }
}

/** The envelope as the blobs of one transaction (0x-hex, 131072 bytes each). */
export function envelopeToBlobs(envelope: Envelope): Hex[] {
  const bytes = encodeEnvelope(envelope)
  if (bytes.length > MAX_ENVELOPE_BYTES)
    throw new EnvelopeError('too_large', 'Envelope is larger than 6 blobs can carry.', {
      metaMessages: [`size: ${bytes.length} bytes`, `maximum: ${MAX_ENVELOPE_BYTES} bytes`],
    })
  return [...toBlobs({ data: bytes, to: 'hex' })]
}

/** Bytes one blob carries (`toBlobs`: 4096 field elements of 31 bytes, less the 0x80 terminator). */
export const ONE_BLOB_ENVELOPE_BYTES = 4096 * 31 - 1

/**
 * How many of `entries`, from the first, an onboard answer of `generation` can carry in one blob. An answer is one
 * blob (docs/protocol.md#blob-envelope): the helper's signature binds `blobhash(0)` and the newcomer reads blob 0, so a
 * helper answers the requests that fit and leaves the rest to a later round. 0 when not even the first fits.
 */
export function onboardEntriesInOneBlob(generation: bigint, entries: readonly OnboardEntry[]): number {
  const fits = (n: number) => n === 0 || encodeEnvelope({ kind: 'onboard', generation, entries: entries.slice(0, n) }).length <= ONE_BLOB_ENVELOPE_BYTES
  let lo = 0
  let hi = entries.length
  // Largest n that fits: the encoding grows with every entry, so fitting is monotone in n.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (fits(mid)) lo = mid
    else hi = mid - 1
  }
  return lo
}

/**
 * Decodes the envelope carried by a transaction's blobs (in transaction order). The blobs must be exactly what
 * `toBlobs` makes of the envelope bytes: a zero high byte in every field element, data then one 0x80
 * terminator then zeros, and no blob beyond the one holding the terminator.
 */
export function blobsToEnvelope(blobs: readonly (Hex | Uint8Array)[]): Envelope {
  if (!Array.isArray(blobs) || blobs.length === 0 || blobs.length > MAX_BLOBS_PER_ENVELOPE)
    throw new EnvelopeError('bad_blobs', 'An envelope spans 1 to 6 blobs.', {
      metaMessages: [`blobs: ${Array.isArray(blobs) ? blobs.length : typeof blobs}`],
    })
  const raw = blobs.map((blob, index) => {
    const bytes = typeof blob === 'string' ? hexBlobToBytes(blob, index) : blob
    if (!(bytes instanceof Uint8Array) || bytes.length !== BYTES_PER_BLOB)
      throw new EnvelopeError('bad_blobs', `Blob ${index} is not ${BYTES_PER_BLOB} bytes.`, {
        metaMessages: [`size: ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`],
      })
    // Checked first: it is the cheap test that random data fails, and fromBlobs skips these bytes unread.
    for (let i = 0; i < BYTES_PER_BLOB; i += 32)
      if (bytes[i] !== 0)
        throw new EnvelopeError('bad_blobs', `Blob ${index} has a field element with a nonzero high byte.`, {
          metaMessages: [`field element: ${i / 32}`],
        })
    return bytes
  })
  // toBlobs ends the data with one 0x80 and zero-fills the rest: the last blob's last nonzero byte is that 0x80.
  const last = raw[raw.length - 1]!
  let end = last.length - 1
  while (end >= 0 && last[end] === 0) end--
  if (end < 0 || last[end] !== 0x80)
    throw new EnvelopeError('bad_blobs', 'Last blob does not end its data with the 0x80 terminator.', {
      metaMessages: [`blobs: ${raw.length}`],
    })
  const data = fromBlobs({ blobs: raw, to: 'bytes' })
  if (data.length === 0 || data.length > MAX_ENVELOPE_BYTES || !samePacking(data, raw))
    throw new EnvelopeError('bad_blobs', 'Blobs are not the canonical packing of their data.', {
      metaMessages: [`blobs: ${raw.length}`, `data: ${data.length} bytes`],
    })
  return decodeEnvelope(data)
}

function samePacking(data: Uint8Array, blobs: readonly Uint8Array[]): boolean {
  const repacked = toBlobs({ data, to: 'bytes' })
  return repacked.length === blobs.length && repacked.every((blob, i) => equalBytes(blob, blobs[i]!))
}

function hexBlobToBytes(blob: string, index: number): Uint8Array {
  if (blob.length !== 2 + 2 * BYTES_PER_BLOB || !isHex(blob, { strict: true }))
    throw new EnvelopeError('bad_blobs', `Blob ${index} is not ${BYTES_PER_BLOB} bytes of 0x-hex.`, {
      metaMessages: [`length: ${blob.length} characters`],
    })
  return hexToBytes(blob)
}

function toInputBytes(input: Uint8Array | Hex): Uint8Array {
  if (input instanceof Uint8Array) return input
  if (typeof input === 'string' && input.length % 2 === 0 && isHex(input, { strict: true })) {
    if (input.length > 2 + 2 * MAX_ENVELOPE_BYTES)
      throw new EnvelopeError('too_large', 'Envelope is larger than 6 blobs can carry.', {
        metaMessages: [`size: ${(input.length - 2) / 2} bytes`, `maximum: ${MAX_ENVELOPE_BYTES} bytes`],
      })
    return hexToBytes(input)
  }
  throw new EnvelopeError('malformed_rlp', 'Envelope input is neither bytes nor even-length 0x-hex.')
}

function encodeTeeType(teeType: TeeType): Uint8Array {
  if (!Object.hasOwn(TEE_TYPE_CODES, teeType))
    throw new EnvelopeError('field_value', 'Envelope field teeType is not tdx or sgx.', {
      metaMessages: [`teeType: ${JSON.stringify(String(teeType))}`],
    })
  return encodeInteger(TEE_TYPE_CODES[teeType])
}

function readTeeType(item: RlpItem | undefined): TeeType {
  const code = readInteger(item, 'teeType', 0n, UINT64_MAX)
  if (code === TEE_TYPE_CODES.tdx) return 'tdx'
  if (code === TEE_TYPE_CODES.sgx) return 'sgx'
  throw new EnvelopeError('field_value', 'Envelope field teeType is not 1 (tdx) or 2 (sgx).', {
    metaMessages: [`teeType: ${code}`],
  })
}

function checkQuote(quote: Uint8Array): Uint8Array {
  if (!(quote instanceof Uint8Array)) throw fieldType('quote', 'bytes')
  if (quote.length === 0 || quote.length > MAX_QUOTE_BYTES) throw quoteLength(quote.length)
  return quote
}

function readQuote(item: RlpItem | undefined): Uint8Array {
  const bytes = readBytes(item, 'quote')
  if (bytes.length === 0 || bytes.length > MAX_QUOTE_BYTES) throw quoteLength(bytes.length)
  return bytes.slice()
}

function quoteLength(length: number): EnvelopeError {
  return new EnvelopeError('field_length', 'Envelope field quote has a bad length.', {
    metaMessages: [`length: ${length} bytes`, `allowed: 1 to ${MAX_QUOTE_BYTES} bytes`],
  })
}

function checkFixedBytes(value: Uint8Array, length: number, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw fieldType(name, 'bytes')
  if (value.length !== length) throw fixedLength(name, value.length, length)
  return value
}

function readFixedBytes(item: RlpItem | undefined, length: number, name: string): Uint8Array {
  const bytes = readBytes(item, name)
  if (bytes.length !== length) throw fixedLength(name, bytes.length, length)
  return bytes.slice()
}

/** An onboard ciphertext: ECIES v1 of 32 to MAX_SECRETS_LIST_BYTES bytes. */
function checkOnboardCiphertext(value: Uint8Array, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw fieldType(name, 'bytes')
  if (value.length < ECIES_CIPHERTEXT_BYTES || value.length > MAX_ONBOARD_CIPHERTEXT_BYTES)
    throw new EnvelopeError('field_length', `Envelope field ${name} has a bad length.`, {
      metaMessages: [`length: ${value.length} bytes`, `allowed: ${ECIES_CIPHERTEXT_BYTES} to ${MAX_ONBOARD_CIPHERTEXT_BYTES} bytes`],
    })
  return value
}

function fixedLength(name: string, actual: number, expected: number): EnvelopeError {
  return new EnvelopeError('field_length', `Envelope field ${name} has a bad length.`, {
    metaMessages: [`length: ${actual} bytes`, `expected: ${expected} bytes`],
  })
}

function readBytes(item: RlpItem | undefined, name: string): Uint8Array {
  if (!(item instanceof Uint8Array)) throw fieldType(name, 'bytes')
  return item
}

function fieldType(name: string, expected: string): EnvelopeError {
  return new EnvelopeError('field_type', `Envelope field ${name} is not ${expected}.`)
}

function checkInteger(value: bigint, min: bigint, max: bigint, name: string): bigint {
  if (typeof value !== 'bigint') throw fieldType(name, 'a bigint')
  if (value < min || value > max) throw integerRange(name, value, min, max)
  return value
}

function integerRange(name: string, value: bigint, min: bigint, max: bigint): EnvelopeError {
  return new EnvelopeError('field_value', `Envelope field ${name} is out of range.`, {
    metaMessages: [`value: ${value}`, `allowed: ${min} to ${max === UINT64_MAX ? '2^64-1' : '2^256-1'}`],
  })
}

/** Minimal big-endian bytes; 0 is the empty string (the RLP convention for integers). */
function encodeInteger(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0)
  let hex = value.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  return hexToBytes(`0x${hex}`)
}

function readInteger(item: RlpItem | undefined, name: string, min: bigint, max: bigint): bigint {
  const bytes = readBytes(item, name)
  if (bytes.length > 0 && bytes[0] === 0)
    throw new EnvelopeError('non_canonical_integer', `Envelope field ${name} is an integer with a leading zero byte.`)
  const maxLength = max === UINT64_MAX ? 8 : 32
  if (bytes.length > maxLength)
    throw new EnvelopeError('field_value', `Envelope field ${name} is out of range.`, {
      metaMessages: [`length: ${bytes.length} bytes`, `maximum: ${maxLength} bytes`],
    })
  const value = bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`)
  if (value < min || value > max) throw integerRange(name, value, min, max)
  return value
}

function checkEntryCount(count: number): void {
  if (count === 0 || count > MAX_ONBOARD_ENTRIES)
    throw new EnvelopeError('field_count', 'Envelope field entries has a bad number of entries.', {
      metaMessages: [`entries: ${count}`, `allowed: 1 to ${MAX_ONBOARD_ENTRIES}`],
    })
}

function checkUnique(seen: Set<bigint>, requestId: bigint, index: number): void {
  if (seen.has(requestId))
    throw new EnvelopeError('duplicate_request', `Envelope field entries[${index}] repeats a request id.`, {
      metaMessages: [`requestId: ${requestId}`],
    })
  seen.add(requestId)
}

/**
 * Counts RLP item headers in one flat pass (a list's payload is itself a sequence of items), stopping once the
 * count exceeds `limit`. Structure is not checked here: fromRlp does that after this bound.
 */
function countRlpItems(bytes: Uint8Array, limit: number): number {
  let count = 0
  let position = 0
  while (position < bytes.length && count <= limit) {
    const prefix = bytes[position]!
    count++
    if (prefix < 0x80) position += 1
    else if (prefix <= 0xb7) position += 1 + (prefix - 0x80)
    else if (prefix < 0xc0) position += 1 + (prefix - 0xb7) + readLength(bytes, position + 1, prefix - 0xb7)
    else if (prefix <= 0xf7) position += 1
    else position += 1 + (prefix - 0xf7)
  }
  return count
}

function readLength(bytes: Uint8Array, offset: number, size: number): number {
  let length = 0
  for (let i = 0; i < size; i++) length = length * 256 + (bytes[offset + i] ?? 0)
  return length
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? ''
}
