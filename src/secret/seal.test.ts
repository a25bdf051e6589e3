import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createAesGcmSealer, devFileSealProvider, noneSealProvider, UnsealError } from './seal.ts'

test('default: dev-file round trip, key file private, same key after reopening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-seal-'))
  const a = devFileSealProvider(dir)
  const secret = new Uint8Array(32).fill(7)
  const sealed = a.seal(secret, 'master/1')
  assert.equal(sealed.length, 12 + 32 + 16)
  assert.equal(statSync(join(dir, 'dev-seal.key')).mode & 0o777, 0o600)
  const b = devFileSealProvider(dir)
  assert.deepEqual(b.unseal(sealed, 'master/1'), secret)
  assert.equal(a.insecure, true)
  assert.equal(readFileSync(join(dir, 'dev-seal.key')).length, 32)
})

test('error: another label, a flipped byte, short input, another key', () => {
  const sealer = createAesGcmSealer(new Uint8Array(32).fill(1))
  const sealed = sealer.seal(new Uint8Array([1, 2, 3]), 'master/1')
  assert.throws(() => sealer.unseal(sealed, 'registration'), UnsealError)
  for (const index of [0, 12, sealed.length - 1]) {
    const tampered = Uint8Array.from(sealed)
    tampered[index]! ^= 1
    assert.throws(() => sealer.unseal(tampered, 'master/1'), /wrong sealing key or tampered data/)
  }
  assert.throws(() => sealer.unseal(sealed.subarray(0, 20), 'master/1'), /sealed data too short/)
  assert.throws(() => createAesGcmSealer(new Uint8Array(32).fill(2)).unseal(sealed, 'master/1'), UnsealError)
  assert.throws(() => createAesGcmSealer(new Uint8Array(31)), /expected 32 bytes/)
})

test('error: none keeps nothing', () => {
  const none = noneSealProvider()
  assert.equal(none.persistent, false)
  assert.throws(() => none.seal(new Uint8Array(1), 'x'), /keeps nothing at rest/)
})
