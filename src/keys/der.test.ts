import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bytesToHex } from '@noble/hashes/utils.js'
import { int, MAX_X509_TIME, oid, oidBytes, pem, seq, time, tlv, utf8 } from './der.ts'

test('vectors: OBJECT IDENTIFIER contents, small arcs and a 2.25 UUID arc (X.667 example, as openssl encodes it)', () => {
  assert.equal(bytesToHex(oidBytes('1.2.840.10045.4.3.2')), '2a8648ce3d040302')
  assert.equal(bytesToHex(oidBytes('1.3.6.1.4.1.62397.1.1')), '2b0601040183e73d0101')
  assert.equal(bytesToHex(oid('2.25.329800735698586629295641978511506172918')), '06146983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776')
  assert.equal(bytesToHex(oidBytes('2.999.3')), '883703')
})

test('error: malformed OIDs are refused', () => {
  for (const bad of ['', '1', '3.1', '1.40', '1.2.', '1.02', 'a.b']) assert.throws(() => oidBytes(bad), RangeError, bad)
})

test('vectors: lengths, INTEGERs and times in their minimal DER forms', () => {
  assert.equal(bytesToHex(tlv(0x04, new Uint8Array(0x7f))).slice(0, 4), '047f')
  assert.equal(bytesToHex(tlv(0x04, new Uint8Array(0x80))).slice(0, 6), '048180')
  assert.equal(bytesToHex(tlv(0x04, new Uint8Array(0x1234))).slice(0, 8), '04821234')
  assert.equal(bytesToHex(int(0)), '020100')
  assert.equal(bytesToHex(int(0x80)), '02020080')
  assert.equal(bytesToHex(int(Uint8Array.of(0, 0, 0x7f))), '02017f')
  assert.equal(bytesToHex(seq()), '3000')
  assert.equal(Buffer.from(time(0).subarray(2)).toString(), '700101000000Z')
  assert.equal(time(0)[0], 0x17)
  assert.equal(Buffer.from(time(MAX_X509_TIME).subarray(2)).toString(), '99991231235959Z')
  assert.equal(time(MAX_X509_TIME)[0], 0x18)
  assert.equal(time(2_524_608_000)[0], 0x18, '2050 is GeneralizedTime')
  assert.throws(() => time(MAX_X509_TIME + 1), RangeError)
  assert.throws(() => time(1.5), RangeError)
  assert.throws(() => utf8('\ud800'), /well-formed/)
})

test('default: PEM has 64-character lines and a final newline', () => {
  const text = pem('CERTIFICATE', new Uint8Array(100))
  const lines = text.split('\n')
  assert.equal(lines[0], '-----BEGIN CERTIFICATE-----')
  assert.equal(lines[1]!.length, 64)
  assert.equal(lines.at(-2), '-----END CERTIFICATE-----')
  assert.equal(lines.at(-1), '')
})
