import assert from 'node:assert/strict'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, toRlp } from 'viem'
import { decodeSecretsList, encodeSecretsList, SecretsListError } from './secretsList.ts'

const key = () => secp256k1.utils.randomSecretKey()

test('default: round trip, byte-exact RLP of [[g, M_g], ...]', () => {
  const m1 = new Uint8Array(32).fill(1)
  const m3 = new Uint8Array(32).fill(3)
  const encoded = encodeSecretsList([
    { generation: 1n, secret: m1 },
    { generation: 3n, secret: m3 },
  ])
  assert.equal(bytesToHex(encoded), toRlp([['0x01', bytesToHex(m1)], ['0x03', bytesToHex(m3)]]))
  const decoded = decodeSecretsList(encoded)
  assert.deepEqual(decoded.map((e) => e.generation), [1n, 3n])
  assert.deepEqual(decoded[1]!.secret, m3)
})

test('error: bad lists are refused, never crash', () => {
  const m = key()
  const bad = [
    new Uint8Array(0),
    Uint8Array.from([0xc0]),
    Buffer.from(toRlp([['0x02', bytesToHex(m)], ['0x01', bytesToHex(m)]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x01', bytesToHex(m)], ['0x01', bytesToHex(m)]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x', bytesToHex(m)]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x0001', bytesToHex(m)]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x01', bytesToHex(m.subarray(0, 31))]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x01', `0x${'00'.repeat(32)}`]]).slice(2), 'hex'),
    Buffer.from(toRlp([['0x01', bytesToHex(m), '0x']]).slice(2), 'hex'),
    Buffer.from(toRlp(['0x01']).slice(2), 'hex'),
    Uint8Array.from([0xff, 0x01]),
  ]
  for (const bytes of bad) assert.throws(() => decodeSecretsList(new Uint8Array(bytes)), SecretsListError, bytesToHex(bytes))
  assert.throws(() => encodeSecretsList([]), SecretsListError)
  assert.throws(() => encodeSecretsList([{ generation: 0n, secret: m }]), SecretsListError)
  assert.throws(() => encodeSecretsList([{ generation: 2n, secret: m }, { generation: 2n, secret: m }]), SecretsListError)
})
