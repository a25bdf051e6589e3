// The secret scanner of test/secretScan.test.ts finds a secret planted in a log line or a binary file in every form it
// claims to search, and nothing in files without it: the devnet scan can fail.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import { filesUnder, scanBuffer, scanFiles, type Secret } from './secretScanner.ts'

const secret: Secret = { name: 'M', bytes: new Uint8Array(randomBytes(32)) }
const hex = Buffer.from(secret.bytes).toString('hex')

test('default: a secret planted in each encoding is found', () => {
  const planted: [string, Buffer][] = [
    ['hex, 0x, lowercase', Buffer.from(`{"msg":"x","key":"0x${hex}"}`)],
    ['hex, no prefix, uppercase', Buffer.from(`key=${hex.toUpperCase()} end`)],
    ['hex, mixed case', Buffer.from(hex.slice(0, 32).toUpperCase() + hex.slice(32))],
    ['base64', Buffer.from(`"k":"${Buffer.from(secret.bytes).toString('base64')}"`)],
    ['base64url', Buffer.from(`token ${Buffer.from(secret.bytes).toString('base64url')}.`)],
    ...[1, 2, 5].map((n): [string, Buffer] => [`base64 inside a longer blob (${n} bytes before)`, Buffer.from(Buffer.concat([randomBytes(n), secret.bytes, randomBytes(7)]).toString('base64'))]),
    ...[1, 2].map((n): [string, Buffer] => [`base64url inside a longer blob (${n} bytes before)`, Buffer.from(Buffer.concat([randomBytes(n), secret.bytes]).toString('base64url'))]),
    ['a Buffer as JSON', Buffer.from(JSON.stringify({ key: Buffer.from(secret.bytes) }))],
    ['a Uint8Array as JSON', Buffer.from(JSON.stringify({ key: secret.bytes }))],
    ['raw bytes in a binary file', Buffer.concat([randomBytes(1000), secret.bytes, randomBytes(1000)])],
  ]
  for (const [what, content] of planted) assert.ok(scanBuffer(what, content, [secret]).length > 0, `found: ${what}`)
})

test('default: nothing is found where the secret is not, nor from a near miss', () => {
  const other = new Uint8Array(secret.bytes)
  other[16]! ^= 1
  const clean = [
    Buffer.from(`{"msg":"x","key":"0x${Buffer.from(other).toString('hex')}"}`),
    Buffer.from(Buffer.from(other).toString('base64')),
    randomBytes(4096),
    // A prefix of the secret alone is not the secret.
    Buffer.from(hex.slice(0, 40)),
  ]
  for (const content of clean) assert.deepEqual(scanBuffer('clean', content, [secret]), [])
})

test('error: the scan of a real pino log fails when a secret is logged, at debug level', () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-scanner-'))
  const path = join(dir, 'node.log')
  const logger = pino({ level: 'debug' }, pino.destination({ dest: path, sync: true }))
  logger.info({ xPub: '0x0000000000000000000000000000000000000001' }, 'node ready')
  assert.deepEqual(scanFiles(filesUnder(dir), [secret], dir), [], 'a clean log passes')
  logger.debug({ key: Buffer.from(secret.bytes) }, 'a careless debug line')
  const found = scanFiles(filesUnder(dir), [secret], dir)
  assert.ok(found.length > 0, 'the logged secret is found')
  assert.equal(found[0]!.file, 'node.log')
  assert.equal(found[0]!.encoding, 'json byte list', 'pino prints a Buffer as its decimal bytes')
  writeFileSync(join(dir, 'excluded.bin'), secret.bytes)
  assert.ok(filesUnder(dir, (p) => p === 'excluded.bin').every((f) => !f.endsWith('excluded.bin')), 'exclusions apply')
})
