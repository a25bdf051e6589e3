import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  assertAddress,
  assertBytes,
  bytesFrom,
  constantTimeEqual,
  parseHex,
  parseUint,
  toHex0x,
  toHexPlain,
  wipe,
} from './bytes.ts'

describe('parseHex', () => {
  test('default', () => {
    assert.deepEqual(parseHex('0x00ff10', { name: 'x', prefix: 'optional' }), new Uint8Array([0, 255, 16]))
    assert.deepEqual(parseHex('00FF10', { name: 'x', prefix: 'optional' }), new Uint8Array([0, 255, 16]))
    assert.deepEqual(parseHex('0xAbCd', { name: 'x', prefix: 'required', length: 2 }), new Uint8Array([0xab, 0xcd]))
    assert.deepEqual(parseHex('abcd', { name: 'x', prefix: 'forbidden', length: 2 }), new Uint8Array([0xab, 0xcd]))
    assert.deepEqual(parseHex('', { name: 'x', prefix: 'forbidden' }), new Uint8Array(0))
    assert.deepEqual(parseHex('0x', { name: 'x', prefix: 'required' }), new Uint8Array(0))
  })

  test('error: not a string', () => {
    assert.throws(() => parseHex(12, { name: 'appData', prefix: 'optional' }), {
      name: 'TypeError',
      message: 'appData must be a hex string, got number',
    })
    assert.throws(() => parseHex(null, { name: 'appData', prefix: 'optional' }), {
      name: 'TypeError',
      message: 'appData must be a hex string, got null',
    })
    assert.throws(() => parseHex(new Uint8Array(2), { name: 'appData', prefix: 'optional' }), {
      name: 'TypeError',
      message: 'appData must be a hex string, got Uint8Array(2)',
    })
  })

  test('error: prefix', () => {
    assert.throws(() => parseHex('abcd', { name: 'key', prefix: 'required' }), {
      name: 'RangeError',
      message: 'key must start with 0x',
    })
    assert.throws(() => parseHex('0xabcd', { name: 'key', prefix: 'forbidden' }), {
      name: 'RangeError',
      message: 'key must be hex without a 0x prefix',
    })
    // `0X` is not a prefix: it fails as non-hex content.
    assert.throws(() => parseHex('0Xabcd', { name: 'key', prefix: 'optional' }), {
      name: 'RangeError',
      message: 'key must contain only hex digits',
    })
  })

  test('error: odd length', () => {
    assert.throws(() => parseHex('0xabc', { name: 'blob', prefix: 'optional' }), {
      name: 'RangeError',
      message: 'blob must have an even number of hex digits, got 3',
    })
  })

  test('error: non-hex characters', () => {
    assert.throws(() => parseHex('zz', { name: 'blob', prefix: 'optional' }), {
      name: 'RangeError',
      message: 'blob must contain only hex digits',
    })
    assert.throws(() => parseHex('0x0 ', { name: 'blob', prefix: 'optional' }), {
      name: 'RangeError',
      message: 'blob must contain only hex digits',
    })
  })

  test('error: wrong length', () => {
    assert.throws(() => parseHex(`0x${'ab'.repeat(31)}`, { name: 'appData', length: 32, prefix: 'required' }), {
      name: 'RangeError',
      message: 'appData must be 32 bytes (64 hex digits), got 62 hex digits',
    })
    assert.throws(() => parseHex('abc', { name: 'appData', length: 32, prefix: 'optional' }), {
      name: 'RangeError',
      message: 'appData must be 32 bytes (64 hex digits), got 3 hex digits',
    })
  })
})

describe('toHex', () => {
  test('default', () => {
    assert.equal(toHex0x(new Uint8Array([0, 171])), '0x00ab')
    assert.equal(toHexPlain(new Uint8Array([0, 171])), '00ab')
    assert.equal(toHex0x(new Uint8Array(0)), '0x')
  })

  test('error: not bytes', () => {
    assert.throws(() => toHex0x('00' as never), { name: 'TypeError', message: 'bytes must be a Uint8Array, got string' })
  })
})

describe('assertBytes', () => {
  test('default', () => {
    assertBytes(new Uint8Array(32), 32, 'key')
    assertBytes(new Uint8Array(65), [33, 65], 'publicKey')
    assertBytes(new Uint8Array(7), undefined, 'data')
  })

  test('error: wrong type', () => {
    assert.throws(() => assertBytes([1, 2], 2, 'key'), { name: 'TypeError', message: 'key must be a Uint8Array, got array' })
    assert.throws(() => assertBytes(Buffer.alloc(0).buffer, 2, 'key'), {
      name: 'TypeError',
      message: 'key must be a Uint8Array, got object',
    })
  })

  test('error: wrong length', () => {
    assert.throws(() => assertBytes(new Uint8Array(31), 32, 'key'), {
      name: 'RangeError',
      message: 'key must be 32 bytes, got 31',
    })
    assert.throws(() => assertBytes(new Uint8Array(64), [33, 65], 'publicKey'), {
      name: 'RangeError',
      message: 'publicKey must be 33 or 65 bytes, got 64',
    })
    assert.throws(() => assertBytes(new Uint8Array(1), [32, 33, 65], 'publicKey'), {
      name: 'RangeError',
      message: 'publicKey must be 32, 33 or 65 bytes, got 1',
    })
  })
})

describe('bytesFrom', () => {
  test('default', () => {
    const bytes = new Uint8Array(2).fill(7)
    assert.equal(bytesFrom(bytes, 2, 'h'), bytes)
    assert.deepEqual(bytesFrom('0x0707', 2, 'h'), bytes)
  })

  test('error: wrong input', () => {
    assert.throws(() => bytesFrom('0707', 2, 'h'), { name: 'RangeError', message: 'h must start with 0x' })
    assert.throws(() => bytesFrom(7, 2, 'h'), {
      name: 'TypeError',
      message: 'h must be a Uint8Array or 0x-hex string, got number',
    })
    assert.throws(() => bytesFrom(new Uint8Array(3), 2, 'h'), { name: 'RangeError', message: 'h must be 2 bytes, got 3' })
  })
})

describe('constantTimeEqual', () => {
  test('default', () => {
    assert.equal(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])), true)
    assert.equal(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])), false)
    assert.equal(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2])), false)
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true)
  })

  test('error: not bytes', () => {
    assert.throws(() => constantTimeEqual('a' as never, new Uint8Array(0)), {
      name: 'TypeError',
      message: 'a must be a Uint8Array, got string',
    })
  })
})

describe('assertAddress', () => {
  test('default', () => {
    assertAddress('0x5FbDB2315678afecb367f032d93F642f64180aa3', 'registry')
    assertAddress('0x5fbdb2315678afecb367f032d93f642f64180aa3', 'registry')
    assertAddress('0x5FBDB2315678AFECB367F032D93F642F64180AA3', 'registry')
  })

  test('error: invalid', () => {
    assert.throws(() => assertAddress(1, 'registry'), {
      name: 'TypeError',
      message: 'registry must be a 0x-prefixed address string, got number',
    })
    assert.throws(() => assertAddress('0x1234', 'registry'), {
      name: 'RangeError',
      message: 'registry must be 0x followed by 40 hex digits',
    })
    assert.throws(() => assertAddress('0x5FbDB2315678afecb367f032d93F642f64180aA3', 'registry'), {
      name: 'RangeError',
      message: 'registry has an invalid EIP-55 checksum',
    })
  })
})

describe('parseUint', () => {
  test('default', () => {
    assert.equal(parseUint(5, { name: 'n', bits: 64 }), 5n)
    assert.equal(parseUint(2n ** 64n - 1n, { name: 'n', bits: 64 }), 2n ** 64n - 1n)
    assert.equal(parseUint(0, { name: 'n', bits: 8 }), 0n)
  })

  test('error: out of range or wrong type', () => {
    assert.throws(() => parseUint(2n ** 64n, { name: 'generation', bits: 64 }), {
      name: 'RangeError',
      message: 'generation must be in [0, 2^64 - 1], got 18446744073709551616',
    })
    assert.throws(() => parseUint(0, { name: 'chainId', bits: 256, min: 1n }), {
      name: 'RangeError',
      message: 'chainId must be in [1, 2^256 - 1], got 0',
    })
    assert.throws(() => parseUint(-1n, { name: 'n', bits: 8 }), {
      name: 'RangeError',
      message: 'n must be in [0, 2^8 - 1], got -1',
    })
    assert.throws(() => parseUint(1.5, { name: 'n', bits: 8 }), {
      name: 'RangeError',
      message: 'n must be a safe integer, got 1.5',
    })
    assert.throws(() => parseUint('1', { name: 'n', bits: 8 }), {
      name: 'TypeError',
      message: 'n must be a bigint or number, got string',
    })
  })
})

test('wipe', () => {
  const a = new Uint8Array([1, 2])
  const b = new Uint8Array([3])
  wipe(a, b)
  assert.deepEqual([...a, ...b], [0, 0, 0])
})
