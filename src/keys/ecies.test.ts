import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, createECDH, ECDH, hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { encodeAbiParameters } from 'viem'
import { toHex0x } from './bytes.ts'
import {
  ECIES_OVERHEAD,
  EciesDecryptionError,
  eciesDecrypt,
  eciesEncrypt,
  escrowShareAad,
  onboardAad,
  releaseShareAad,
  rotationAad,
} from './ecies.ts'
import { publicKey33, publicKey64 } from './signature.ts'

const v = JSON.parse(readFileSync(new URL('../../test/vectors/ecies-v1.json', import.meta.url), 'utf8'))
const unhex = (value: string) => hexToBytes(value.slice(2))
const INFO = utf8ToBytes('keymanager.ecies.v1')

/** ECIES v1 decryption by OpenSSL (node:crypto): ECDH, HKDF and AES-GCM from an independent implementation. */
function opensslDecrypt(recipientSecretKey: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
  const ecdh = createECDH('secp256k1')
  ecdh.setPrivateKey(recipientSecretKey)
  const recipient33 = new Uint8Array(ecdh.getPublicKey(null, 'compressed'))
  const ephemeral = ciphertext.subarray(0, 33)
  const z = ecdh.computeSecret(ephemeral)
  const key = Buffer.from(hkdfSync('sha256', z, ephemeral, concatBytes(INFO, recipient33, aad), 32))
  const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(33, 45))
  decipher.setAAD(aad)
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16))
  return new Uint8Array(Buffer.concat([decipher.update(ciphertext.subarray(45, ciphertext.length - 16)), decipher.final()]))
}

/** ECIES v1 encryption by OpenSSL with a given ephemeral key and nonce. */
function opensslEncrypt(recipientPublicKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, e: Uint8Array, nonce: Uint8Array) {
  const ecdh = createECDH('secp256k1')
  ecdh.setPrivateKey(e)
  const ephemeral = new Uint8Array(ecdh.getPublicKey(null, 'compressed'))
  const recipient33 = new Uint8Array(ECDH.convertKey(recipientPublicKey, 'secp256k1', undefined, undefined, 'compressed') as Buffer)
  const z = ecdh.computeSecret(recipientPublicKey)
  const key = Buffer.from(hkdfSync('sha256', z, ephemeral, concatBytes(INFO, recipient33, aad), 32))
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return concatBytes(ephemeral, nonce, body, cipher.getAuthTag())
}

describe('ecies-v1 vectors', () => {
  for (const c of v.vectors) {
    test(`default: ${c.name}`, () => {
      const ciphertext = eciesEncrypt(unhex(c.recipientPublicKey), unhex(c.plaintext), unhex(c.aad), {
        ephemeralSecretKey: unhex(c.ephemeralSecretKey),
        nonce: unhex(c.nonce),
      })
      assert.equal(toHex0x(ciphertext), c.ciphertext)
      assert.equal(toHex0x(eciesDecrypt(unhex(c.recipientSecretKey), unhex(c.ciphertext), unhex(c.aad))), c.plaintext)
      if (c.onboardAad) {
        const { chainId, registry, requestId, generation } = c.onboardAad
        assert.equal(toHex0x(onboardAad({ chainId, registry, requestId: BigInt(requestId), generation: BigInt(generation) })), c.aad)
      }
    })

    test(`cross-check with OpenSSL: ${c.name}`, () => {
      assert.equal(toHex0x(opensslDecrypt(unhex(c.recipientSecretKey), unhex(c.ciphertext), unhex(c.aad))), c.plaintext)
      const again = opensslEncrypt(unhex(c.recipientPublicKey), unhex(c.plaintext), unhex(c.aad), unhex(c.ephemeralSecretKey), unhex(c.nonce))
      assert.equal(toHex0x(again), c.ciphertext)
    })
  }
})

describe('eciesEncrypt / eciesDecrypt', () => {
  const recipient = secp256k1.utils.randomSecretKey()
  const aad = utf8ToBytes('context')
  const plaintext = utf8ToBytes('the master secret, say')

  test('default: round trip, fresh ephemeral key and nonce each time', () => {
    const a = eciesEncrypt(publicKey33(recipient), plaintext, aad)
    const b = eciesEncrypt(new Uint8Array([4, ...publicKey64(recipient)]), plaintext, aad)
    assert.equal(a.length, plaintext.length + ECIES_OVERHEAD)
    assert.notDeepEqual(a.subarray(0, 45), b.subarray(0, 45))
    assert.deepEqual(eciesDecrypt(recipient, a, aad), plaintext)
    assert.deepEqual(eciesDecrypt(recipient, b, aad), plaintext)
  })

  test('error: attacker bytes give EciesDecryptionError with a reason, never a crash', () => {
    const ciphertext = eciesEncrypt(publicKey33(recipient), plaintext, aad)
    const expectFailure = (bytes: Uint8Array, reason: string, message: string, withAad = aad, key = recipient) =>
      assert.throws(() => eciesDecrypt(key, bytes, withAad), (error: unknown) => {
        assert.ok(error instanceof EciesDecryptionError)
        assert.equal(error.reason, reason)
        assert.equal(error.message, message)
        return true
      })
    const authFailed = 'ECIES authentication failed: wrong key, wrong aad or tampered ciphertext'
    const badPoint = 'ECIES ephemeral public key is not a valid compressed secp256k1 point'
    expectFailure(new Uint8Array(ECIES_OVERHEAD - 1), 'too_short', 'ECIES ciphertext too short: need at least 61 bytes, got 60')
    expectFailure(new Uint8Array(0), 'too_short', 'ECIES ciphertext too short: need at least 61 bytes, got 0')
    for (const index of [45, ciphertext.length - 1, 33, 40]) {
      const tampered = ciphertext.slice()
      tampered[index]! ^= 1
      expectFailure(tampered, 'auth_failed', authFailed)
    }
    expectFailure(ciphertext, 'auth_failed', authFailed, utf8ToBytes('other context'))
    expectFailure(ciphertext, 'auth_failed', authFailed, aad, secp256k1.utils.randomSecretKey())
    // A different but valid ephemeral key: the shared secret changes, so the tag fails.
    const swapped = ciphertext.slice()
    swapped.set(publicKey33(secp256k1.utils.randomSecretKey()), 0)
    expectFailure(swapped, 'auth_failed', authFailed)
    // Not a point: wrong prefix byte; x = 0 and x = 5 have no y on the curve; x ≥ p is not a field element.
    const prefix04 = ciphertext.slice()
    prefix04[0] = 0x04
    expectFailure(prefix04, 'bad_ephemeral_key', badPoint)
    for (const x of [0n, 5n, 2n ** 256n - 1n]) {
      const bad = ciphertext.slice()
      bad.set(hexToBytes(x.toString(16).padStart(64, '0')), 1)
      expectFailure(bad, 'bad_ephemeral_key', badPoint)
    }
    // Random bytes of every small length and some larger ones.
    for (let length = 0; length < 200; length++) {
      const bytes = randomBytes(length)
      assert.throws(() => eciesDecrypt(recipient, bytes, aad), EciesDecryptionError)
    }
  })

  test('error: caller bugs are TypeError/RangeError', () => {
    assert.throws(() => eciesEncrypt(publicKey64(recipient), plaintext, aad), {
      name: 'RangeError',
      message: 'recipientPublicKey must be 33 or 65 bytes, got 64',
    })
    const offCurve = publicKey33(recipient)
    offCurve[0] = 0x07
    assert.throws(() => eciesEncrypt(offCurve, plaintext, aad), {
      name: 'RangeError',
      message: 'recipientPublicKey is not a valid secp256k1 public key',
    })
    assert.throws(() => eciesEncrypt(publicKey33(recipient), 'text' as never, aad), {
      name: 'TypeError',
      message: 'plaintext must be a Uint8Array, got string',
    })
    assert.throws(() => eciesEncrypt(publicKey33(recipient), plaintext, aad, { nonce: new Uint8Array(16) }), {
      name: 'RangeError',
      message: 'nonce must be 12 bytes, got 16',
    })
    assert.throws(() => eciesDecrypt(new Uint8Array(32), new Uint8Array(100), aad), {
      name: 'RangeError',
      message: 'recipientSecretKey must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => eciesDecrypt(recipient, new Uint8Array(100), undefined as never), {
      name: 'TypeError',
      message: 'aad must be a Uint8Array, got undefined',
    })
  })
})

describe('onboardAad', () => {
  const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'

  test('default: abi.encode(uint256, address, uint256, uint64)', () => {
    const aad = onboardAad({ chainId: 1, registry, requestId: 2n ** 256n - 1n, generation: 3 })
    assert.equal(aad.length, 128)
    assert.equal(
      toHex0x(aad),
      encodeAbiParameters(
        [{ type: 'uint256' }, { type: 'address' }, { type: 'uint256' }, { type: 'uint64' }],
        [1n, registry, 2n ** 256n - 1n, 3n],
      ),
    )
  })

  test('security: an onboard ciphertext moved to another request, registry, chain or generation does not decrypt', () => {
    const recipient = secp256k1.utils.randomSecretKey()
    const bound: Parameters<typeof onboardAad>[0] = { chainId: 1, registry, requestId: 7n, generation: 2 }
    const secret = new Uint8Array(32).fill(9)
    const ciphertext = eciesEncrypt(publicKey33(recipient), secret, onboardAad(bound))
    assert.deepEqual(eciesDecrypt(recipient, ciphertext, onboardAad(bound)), secret)
    const moved = [
      { ...bound, requestId: 8n },
      { ...bound, registry: '0x5fbdb2315678afecb367f032d93f642f64180aa4' as const },
      { ...bound, chainId: 11155111 },
      { ...bound, generation: 3 },
    ]
    for (const other of moved) assert.throws(() => eciesDecrypt(recipient, ciphertext, onboardAad(other)), EciesDecryptionError, JSON.stringify(other, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
  })

  test('error: bad arguments', () => {
    assert.throws(() => onboardAad({ chainId: 1, registry, requestId: -1n, generation: 1 }), {
      name: 'RangeError',
      message: 'requestId must be in [0, 2^256 - 1], got -1',
    })
    assert.throws(() => onboardAad({ chainId: 1, registry, requestId: 1n, generation: 2n ** 64n }), {
      name: 'RangeError',
      message: 'generation must be in [0, 2^64 - 1], got 18446744073709551616',
    })
  })
})

describe('generation aads (vectors in test/vectors/generations.json)', () => {
  const g = JSON.parse(readFileSync(new URL('../../test/vectors/generations.json', import.meta.url), 'utf8'))
  const domain = { chainId: g.domain.chainId, registry: g.domain.verifyingContract }
  const rotation = rotationAad({ ...domain, memberId: BigInt(g.aad.rotation.memberId), generation: BigInt(g.aad.rotation.generation), proposal: BigInt(g.aad.rotation.proposal) })
  const escrow = escrowShareAad({ ...domain, generation: BigInt(g.aad.escrowShare.generation), guardianSet: BigInt(g.aad.escrowShare.guardianSet), index: g.aad.escrowShare.index })
  const release = releaseShareAad({ ...domain, requestId: BigInt(g.aad.releaseShare.requestId), generation: BigInt(g.aad.releaseShare.generation), index: g.aad.releaseShare.index })

  test('default: vectors, and each equals its abi.encode by hand', () => {
    assert.equal(toHex0x(rotation), g.aad.rotation.aad)
    assert.equal(toHex0x(escrow), g.aad.escrowShare.aad)
    assert.equal(toHex0x(release), g.aad.releaseShare.aad)
    const byHand = encodeAbiParameters(
      [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'uint64' }],
      ['keymanager.rotation.v1', BigInt(g.domain.chainId), g.domain.verifyingContract, 4n, 2n, 3n],
    )
    assert.equal(toHex0x(rotation), byHand)
  })

  test('security: a ciphertext made under one aad does not decrypt under another purpose\'s aad', () => {
    const recipient = secp256k1.utils.randomSecretKey()
    const onboarding = onboardAad({ ...domain, requestId: 4n, generation: 2n })
    const aads = [rotation, escrow, release, onboarding]
    for (const [i, aad] of aads.entries()) {
      const ciphertext = eciesEncrypt(publicKey33(recipient), new Uint8Array(32).fill(7), aad)
      for (const [j, other] of aads.entries()) {
        if (i === j) assert.deepEqual(eciesDecrypt(recipient, ciphertext, other), new Uint8Array(32).fill(7))
        else assert.throws(() => eciesDecrypt(recipient, ciphertext, other), EciesDecryptionError)
      }
    }
  })

  test('error: bad arguments', () => {
    assert.throws(() => rotationAad({ ...domain, memberId: 0n, generation: 2n, proposal: 1n }), { name: 'RangeError', message: 'memberId must be in [1, 2^256 - 1], got 0' })
    assert.throws(() => rotationAad({ ...domain, memberId: 1n, generation: 1n, proposal: 1n }), { name: 'RangeError', message: 'generation must be in [2, 2^64 - 1], got 1' })
    assert.throws(() => escrowShareAad({ ...domain, generation: 1n, guardianSet: 1n, index: 0 }), { name: 'RangeError', message: 'index must be in [1, 2^8 - 1], got 0' })
    assert.throws(() => releaseShareAad({ ...domain, registry: '0x12', requestId: 1n, generation: 1n, index: 1 }), { name: 'RangeError' })
  })
})
