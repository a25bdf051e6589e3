// Looks for secrets in files: each secret as raw bytes, as hex (any case; with or without 0x: the bare digits are a
// substring of both), as base64 and base64url at each of the three byte alignments it can have inside a longer
// encoded string (only the characters that depend on the secret's bytes alone are searched, so a secret in the middle of
// a base64 blob is found too), and as the decimal byte lists JSON loggers print for a Buffer or a Uint8Array. Used by test/secretScan.test.ts on a devnet run; test/secretScanner.test.ts shows it
// finds planted secrets in each encoding.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

export type Secret = { name: string; bytes: Uint8Array }
export type Finding = { file: string; secret: string; encoding: string; offset: number }

/** The searched forms of one secret: [encoding, needle bytes, compare case-insensitively]. */
export function needlesOf(secret: Uint8Array): [string, Buffer, boolean][] {
  const bytes = Buffer.from(secret)
  const out: [string, Buffer, boolean][] = [
    ['raw', bytes, false],
    ['hex', Buffer.from(bytes.toString('hex'), 'latin1'), true],
  ]
  for (let shift = 0; shift < 3; shift++) {
    // Prefix `shift` zero bytes: the encoding of `shift`+secret, less the characters that mix in bytes outside the
    // secret (the first group when shifted, the last partial group).
    const padded = Buffer.concat([Buffer.alloc(shift), bytes])
    const fullGroups = Math.floor(padded.length / 3)
    const skip = shift === 0 ? 0 : 4
    for (const [name, alphabet] of [
      ['base64', 'base64'],
      ['base64url', 'base64url'],
    ] as const) {
      const encoded = padded.toString(alphabet).slice(skip, fullGroups * 4)
      if (encoded.length >= 16) out.push([`${name}@${shift}`, Buffer.from(encoded, 'latin1'), false])
    }
  }
  // How JSON loggers print byte arrays: a Buffer as {"type":"Buffer","data":[b0,b1,...]}, a Uint8Array as
  // {"0":b0,"1":b1,...} (pino, JSON.stringify).
  out.push(['json byte list', Buffer.from([...bytes].join(','), 'latin1'), false])
  out.push(['json byte object', Buffer.from([...bytes].map((b, i) => `"${i}":${b}`).join(','), 'latin1'), false])
  return out
}

/** ASCII lowercase of a buffer (bytes outside A-Z unchanged). */
function asciiLower(buf: Buffer): Buffer {
  const out = Buffer.from(buf)
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x41 && out[i]! <= 0x5a) out[i]! += 0x20
  return out
}

/** Every occurrence of every secret in `content` (named `file` in the findings). */
export function scanBuffer(file: string, content: Buffer, secrets: readonly Secret[]): Finding[] {
  const lower = asciiLower(content)
  const findings: Finding[] = []
  for (const secret of secrets) {
    if (secret.bytes.length < 8) throw new Error(`secret ${secret.name} is too short to scan for without false matches`)
    for (const [encoding, needle, caseless] of needlesOf(secret.bytes)) {
      const haystack = caseless ? lower : content
      const offset = haystack.indexOf(caseless ? asciiLower(needle) : needle)
      if (offset >= 0) findings.push({ file, secret: secret.name, encoding, offset })
    }
  }
  return findings
}

/** Every regular file under `dir` (recursive), minus those `exclude` names (paths relative to `dir`). */
export function filesUnder(dir: string, exclude: (path: string) => boolean = () => false): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((path) => !exclude(path) && statSync(join(dir, path)).isFile())
    .map((path) => join(dir, path))
}

export function scanFiles(files: readonly string[], secrets: readonly Secret[], root = '/'): Finding[] {
  return files.flatMap((file) => scanBuffer(relative(root, file), readFileSync(file), secrets))
}
