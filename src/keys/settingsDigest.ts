// The settings digest (docs/protocol.md#measured-settings): keccak256 of the canonical JSON of a node's measured
// settings. It is shown in `/status` and dstack `Info`, bound in bootstrap and register report data
// (docs/protocol.md#report-data) and printed by `audit`, so anyone can tell which security settings a quote was made
// under. Canonical JSON here is RFC 8785 (JCS) restricted to what settings contain:
// - objects: members sorted by key, keys compared as sequences of UTF-16 code units (JCS §3.2.3), no duplicates;
// - strings: JSON.stringify's form, which is JCS's (§3.2.2.2): `"` and `\` escaped, U+0000..U+001F as \b \t \n \f \r
//   or \u00XX (lowercase hex), every other character as itself, encoded as UTF-8;
// - numbers: integers only, within ±(2^53 − 1), in shortest decimal form (no exponent, no leading zeros, no -0);
//   fractions are refused (no setting is one, and float forms are where canonicalisers disagree);
// - true, false; null is refused, and a member whose value is undefined is left out (an absent optional setting is
//   an absent key);
// - arrays in their order; no whitespace anywhere.
import { keccak256, stringToBytes, type Hex } from 'viem'

/** RFC 8785 canonical JSON of `value`, restricted as the header says; throws a TypeError naming the offending path. */
export function canonicalJson(value: unknown, path = '$'): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`${path}: canonical settings JSON takes integers within ±(2^53 − 1) only, got ${value}`)
    return Object.is(value, -0) ? '0' : String(value)
  }
  if (Array.isArray(value)) return `[${value.map((item, i) => canonicalJson(item, `${path}[${i}]`)).join(',')}]`
  if (value !== null && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const keys = Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    // Default string comparison in JS is by UTF-16 code units, exactly JCS's order.
    keys.sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key], `${path}.${key}`)}`).join(',')}}`
  }
  throw new TypeError(`${path}: canonical settings JSON has no form for ${value === null ? 'null' : typeof value}`)
}

/** keccak256(utf8(canonicalJson(settings))): the `settingsDigest` of docs/protocol.md#measured-settings. */
export function settingsDigest(settings: unknown): Hex {
  return keccak256(stringToBytes(canonicalJson(settings)))
}
