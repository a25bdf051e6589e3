import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv } from 'node:crypto'
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

test('vector: nonce12 ‖ AES-256-GCM ciphertext ‖ tag16 with the label as associated data (docs/protocol.md#seal-providers)', () => {
  // Made by OpenSSL (node:crypto): key 0x01×32, nonce 0x02×12, label keymanager.master.v1/1, plaintext 0x07×32.
  const key = new Uint8Array(32).fill(1)
  const nonce = new Uint8Array(12).fill(2)
  const label = 'keymanager.master.v1/1'
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(label))
  const body = Buffer.concat([cipher.update(new Uint8Array(32).fill(7)), cipher.final()])
  const sealed = Buffer.concat([nonce, body, cipher.getAuthTag()])
  assert.equal(
    sealed.toString('hex'),
    '02020202020202020202020200d1ce4e4d50c6fad4cbbbcf5ba0c5b5a5b2d6e8ecb68a76da80e7fc7ffc73782c410377fa7f41cc5dd1d24c3b99a0b1',
  )
  const sealer = createAesGcmSealer(key)
  assert.deepEqual(sealer.unseal(new Uint8Array(sealed), label), new Uint8Array(32).fill(7))
  // Our own sealing opens under OpenSSL with the same layout.
  const ours = sealer.seal(new Uint8Array(32).fill(7), label)
  const decipher = createDecipheriv('aes-256-gcm', key, ours.subarray(0, 12)).setAAD(Buffer.from(label))
  decipher.setAuthTag(ours.subarray(ours.length - 16))
  assert.deepEqual(new Uint8Array(Buffer.concat([decipher.update(ours.subarray(12, ours.length - 16)), decipher.final()])), new Uint8Array(32).fill(7))
})

test('error: none keeps nothing', () => {
  const none = noneSealProvider()
  assert.equal(none.persistent, false)
  assert.throws(() => none.seal(new Uint8Array(1), 'x'), /keeps nothing at rest/)
})
