import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { toHex0x } from './bytes.ts'
import {
  BOOTSTRAP_TAG,
  bootstrapReportData,
  isProtocolShaped,
  PROTOCOL_MARKER,
  REGISTER_TAG,
  registerReportData,
  ROTATE_TAG,
  rotateReportData,
} from './reportData.ts'

const v = JSON.parse(readFileSync(new URL('../../test/vectors/report-data.json', import.meta.url), 'utf8'))
const unhex = (value: string) => hexToBytes(value.slice(2))

/** One 32-byte ABI word from an unsigned integer. */
const word = (n: bigint | number) => hexToBytes(BigInt(n).toString(16).padStart(64, '0'))
/** A dynamic value's tail: length word, then the bytes right-padded to a multiple of 32. */
const tail = (bytes: Uint8Array) => concatBytes(word(bytes.length), bytes, new Uint8Array((32 - (bytes.length % 32)) % 32))
const addressWord = (address: string) => concatBytes(new Uint8Array(12), unhex(address))

const MARKER = keccak_256(utf8ToBytes('keymanager.report-data.v2'))

/** abi.encode laid out by hand (head words with offsets, then tails): independent of viem's encoder. */
function manualBootstrap(c: { chainId: number; registry: string; masterPubkey64: string; settingsDigest: string }): Uint8Array {
  const tag = tail(utf8ToBytes(BOOTSTRAP_TAG))
  const head = concatBytes(word(5 * 32), word(c.chainId), addressWord(c.registry), word(5 * 32 + tag.length), unhex(c.settingsDigest))
  return concatBytes(keccak_256(concatBytes(head, tag, tail(unhex(c.masterPubkey64)))), MARKER)
}

function manualRegister(c: {
  chainId: number
  registry: string
  pubkey64: string
  refBlockNumber: string
  refBlockHash: string
  settingsDigest: string
}): Uint8Array {
  const tag = tail(utf8ToBytes(REGISTER_TAG))
  const head = concatBytes(
    word(7 * 32),
    word(c.chainId),
    addressWord(c.registry),
    word(7 * 32 + tag.length),
    word(BigInt(c.refBlockNumber)),
    unhex(c.refBlockHash),
    unhex(c.settingsDigest),
  )
  return concatBytes(keccak_256(concatBytes(head, tag, tail(unhex(c.pubkey64)))), MARKER)
}

function manualRotate(c: { chainId: number; registry: string; generation: string; masterPubkey64: string; settingsDigest: string }): Uint8Array {
  const tag = tail(utf8ToBytes(ROTATE_TAG))
  const head = concatBytes(
    word(6 * 32),
    word(c.chainId),
    addressWord(c.registry),
    word(BigInt(c.generation)),
    word(6 * 32 + tag.length),
    unhex(c.settingsDigest),
  )
  return concatBytes(keccak_256(concatBytes(head, tag, tail(unhex(c.masterPubkey64)))), MARKER)
}

describe('report-data vectors', () => {
  test('default', () => {
    assert.equal(toHex0x(PROTOCOL_MARKER), v.protocolMarker)
    for (const c of v.bootstrap) assert.equal(toHex0x(bootstrapReportData(c)), c.reportData)
    for (const c of v.register) assert.equal(toHex0x(registerReportData({ ...c, refBlockNumber: BigInt(c.refBlockNumber) })), c.reportData)
    for (const c of v.rotate) assert.equal(toHex0x(rotateReportData({ ...c, generation: BigInt(c.generation) })), c.reportData)
  })

  test('cross-check: ABI words laid by hand, the marker hashed by noble', () => {
    assert.equal(`0x${bytesToHex(MARKER)}`, v.protocolMarker)
    for (const c of v.bootstrap) assert.equal(`0x${bytesToHex(manualBootstrap(c))}`, c.reportData)
    for (const c of v.register) assert.equal(`0x${bytesToHex(manualRegister(c))}`, c.reportData)
    for (const c of v.rotate) assert.equal(`0x${bytesToHex(manualRotate(c))}`, c.reportData)
  })
})

describe('isProtocolShaped', () => {
  test('default: exactly the 64-byte data that ends in the marker', () => {
    const shaped = registerReportData({ ...v.register[0], refBlockNumber: BigInt(v.register[0].refBlockNumber) })
    assert.equal(isProtocolShaped(shaped), true)
    assert.equal(isProtocolShaped(concatBytes(new Uint8Array(32).fill(7), MARKER)), true)
    for (const other of [new Uint8Array(64), concatBytes(new Uint8Array(32), MARKER.slice(0, 31), new Uint8Array(1)), shaped.subarray(0, 63), concatBytes(MARKER, new Uint8Array(32))]) {
      assert.equal(isProtocolShaped(other), false)
    }
  })
})

describe('bootstrapReportData', () => {
  const c = v.bootstrap[0]

  test('default: 64 bytes ending in the marker, bytes or hex input', () => {
    const out = bootstrapReportData({ ...c, masterPubkey64: unhex(c.masterPubkey64), settingsDigest: unhex(c.settingsDigest) })
    assert.equal(out.length, 64)
    assert.deepEqual(out.subarray(32), PROTOCOL_MARKER)
    assert.equal(toHex0x(out), c.reportData)
  })

  test('error: bad arguments', () => {
    const offCurve = unhex(c.masterPubkey64)
    offCurve[63]! ^= 1
    assert.throws(() => bootstrapReportData({ ...c, masterPubkey64: offCurve }), {
      name: 'RangeError',
      message: 'masterPubkey64 is not a point on secp256k1',
    })
    assert.throws(() => bootstrapReportData({ ...c, masterPubkey64: new Uint8Array(65) }), {
      name: 'RangeError',
      message: 'masterPubkey64 must be 64 bytes, got 65',
    })
    assert.throws(() => bootstrapReportData({ ...c, chainId: 0n }), {
      name: 'RangeError',
      message: 'chainId must be in [1, 2^256 - 1], got 0',
    })
  })
})

describe('registerReportData', () => {
  const c = { ...v.register[0], refBlockNumber: BigInt(v.register[0].refBlockNumber) }

  test('default: every bound field changes the result', () => {
    const base = toHex0x(registerReportData(c))
    assert.notEqual(toHex0x(registerReportData({ ...c, refBlockNumber: c.refBlockNumber + 1n })), base)
    assert.notEqual(toHex0x(registerReportData({ ...c, chainId: 1 })), base)
    assert.notEqual(toHex0x(registerReportData({ ...c, registry: '0x0000000000000000000000000000000000000001' })), base)
    assert.notEqual(toHex0x(registerReportData({ ...c, refBlockHash: `0x${'00'.repeat(32)}` })), base)
    assert.notEqual(toHex0x(registerReportData({ ...c, settingsDigest: `0x${'00'.repeat(32)}` })), base)
  })

  test('error: bad arguments', () => {
    assert.throws(() => registerReportData({ ...c, refBlockNumber: 2n ** 64n }), {
      name: 'RangeError',
      message: 'refBlockNumber must be in [0, 2^64 - 1], got 18446744073709551616',
    })
    assert.throws(() => registerReportData({ ...c, refBlockHash: '0x00' }), {
      name: 'RangeError',
      message: 'refBlockHash must be 32 bytes (64 hex digits), got 2 hex digits',
    })
    assert.throws(() => registerReportData({ ...c, pubkey64: 7 as never }), {
      name: 'TypeError',
      message: 'pubkey64 must be a Uint8Array or 0x-hex string, got number',
    })
    assert.throws(() => registerReportData({ ...c, settingsDigest: '0x1234' }), {
      name: 'RangeError',
      message: 'settingsDigest must be 32 bytes (64 hex digits), got 4 hex digits',
    })
  })
})

describe('rotateReportData', () => {
  const c = { ...v.rotate[0], generation: BigInt(v.rotate[0].generation) }

  test('default: every bound field changes the result; tags keep the kinds apart', () => {
    const base = toHex0x(rotateReportData(c))
    assert.notEqual(toHex0x(rotateReportData({ ...c, generation: 3n })), base)
    assert.notEqual(toHex0x(rotateReportData({ ...c, settingsDigest: `0x${'00'.repeat(32)}` })), base)
    // The same key and digest as a bootstrap: another tag, other report data.
    assert.notEqual(toHex0x(bootstrapReportData(c)), base)
  })

  test('error: bad arguments', () => {
    assert.throws(() => rotateReportData({ ...c, generation: 0n }), { name: 'RangeError', message: 'generation must be in [1, 2^64 - 1], got 0' })
  })
})
