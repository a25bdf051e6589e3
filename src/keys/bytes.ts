// Strict input checks shared by the project, in the noble manner: validate at the boundary, a
// TypeError for a value of the wrong type, a RangeError for a value of the right type but wrong content or length,
// and always the argument's name in the message.
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { checksumAddress, type Address, type Hex } from 'viem'

export type HexPrefix = 'optional' | 'required' | 'forbidden'

export type ParseHexOptions = {
  /** Argument name used in error messages. */
  name: string
  /** Expected length in bytes; any length when absent. */
  length?: number
  /** Whether the `0x` prefix must, may or must not be present. Only lowercase `0x` counts as a prefix. */
  prefix: HexPrefix
}

const HEX_DIGITS = /^[0-9a-fA-F]*$/

/** A short description of what a value is, for error messages; never the value itself (it may be a secret). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`
  return typeof value
}

/**
 * Parses a hex string into bytes. Rejects anything that is not a string, a missing or unexpected `0x` prefix,
 * an odd number of digits, non-hex characters and, when `length` is given, any other byte length.
 * Upper- and lowercase digits are both accepted; the empty string is zero bytes.
 */
export function parseHex(value: unknown, options: ParseHexOptions): Uint8Array {
  const { name, length, prefix } = options
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a hex string, got ${describeValue(value)}`)
  }
  const hasPrefix = value.startsWith('0x')
  if (prefix === 'required' && !hasPrefix) throw new RangeError(`${name} must start with 0x`)
  if (prefix === 'forbidden' && hasPrefix) throw new RangeError(`${name} must be hex without a 0x prefix`)
  const digits = hasPrefix ? value.slice(2) : value
  // Length before content: it is the cheaper check, and the message tells the caller what was expected.
  if (length !== undefined && digits.length !== length * 2) {
    throw new RangeError(
      `${name} must be ${length} bytes (${length * 2} hex digits), got ${digits.length} hex digits`,
    )
  }
  if (digits.length % 2 !== 0) {
    throw new RangeError(`${name} must have an even number of hex digits, got ${digits.length}`)
  }
  if (!HEX_DIGITS.test(digits)) throw new RangeError(`${name} must contain only hex digits`)
  return hexToBytes(digits)
}

/** `0x`-prefixed lowercase hex. */
export function toHex0x(bytes: Uint8Array): Hex {
  assertBytes(bytes, undefined, 'bytes')
  return `0x${bytesToHex(bytes)}`
}

/** Lowercase hex without a prefix (the dstack guest-agent wire form and the dstack signed messages). */
export function toHexPlain(bytes: Uint8Array): string {
  assertBytes(bytes, undefined, 'bytes')
  return bytesToHex(bytes)
}

/**
 * Asserts `value` is a Uint8Array, of `length` bytes when given (one length or a list of accepted lengths).
 * TypeError for another type, RangeError for another length.
 */
export function assertBytes(
  value: unknown,
  length: number | readonly number[] | undefined,
  name: string,
): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array, got ${describeValue(value)}`)
  }
  if (length === undefined) return
  const accepted = typeof length === 'number' ? [length] : length
  if (accepted.includes(value.length)) return
  const expected = accepted.length === 1 ? `${accepted[0]}` : `${accepted.slice(0, -1).join(', ')} or ${accepted.at(-1)}`
  throw new RangeError(`${name} must be ${expected} bytes, got ${value.length}`)
}

/**
 * Public binary inputs (hashes, public keys) may come as bytes or as `0x`-hex, as viem hands them out.
 * Returns a Uint8Array of exactly `length` bytes (the input itself when it already is one).
 */
export function bytesFrom(value: unknown, length: number, name: string): Uint8Array {
  if (typeof value === 'string') return parseHex(value, { name, length, prefix: 'required' })
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array or 0x-hex string, got ${describeValue(value)}`)
  }
  assertBytes(value, length, name)
  return value
}

/**
 * Compares two byte arrays without an early exit on the first differing byte. Arrays of different lengths are
 * unequal at once: lengths are not secret here. (JS gives no hard constant-time guarantee; this removes the
 * data-dependent branch, which is what matters for tags and keys compared in this project.)
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, undefined, 'a')
  assertBytes(b, undefined, 'b')
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/**
 * Asserts an Ethereum address: `0x` + 40 hex digits; a mixed-case address must carry a valid EIP-55 checksum
 * (an all-lower or all-upper address has none to check).
 */
export function assertAddress(value: unknown, name: string): asserts value is Address {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a 0x-prefixed address string, got ${describeValue(value)}`)
  }
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) throw new RangeError(`${name} must be 0x followed by 40 hex digits`)
  const digits = value.slice(2)
  if (digits === digits.toLowerCase() || digits === digits.toUpperCase()) return
  if (checksumAddress(value as Address) !== value) throw new RangeError(`${name} has an invalid EIP-55 checksum`)
}

/**
 * Asserts an unsigned integer of at most `bits` bits, given as a bigint or a safe integer number; returns it as
 * a bigint. `min` (default 0) lets callers refuse zero where zero is meaningless (a chain id).
 */
export function parseUint(value: unknown, options: { name: string; bits: number; min?: bigint }): bigint {
  const { name, bits, min = 0n } = options
  let n: bigint
  if (typeof value === 'bigint') n = value
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be a safe integer, got ${value}`)
    n = BigInt(value)
  } else throw new TypeError(`${name} must be a bigint or number, got ${describeValue(value)}`)
  const max = (1n << BigInt(bits)) - 1n
  if (n < min || n > max) throw new RangeError(`${name} must be in [${min}, 2^${bits} - 1], got ${n}`)
  return n
}

/** Overwrites secret bytes in place (the noble `clean`). */
export function wipe(...arrays: Uint8Array[]): void {
  for (const a of arrays) a.fill(0)
}
