import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes, keccak256, type Hex } from 'viem'
import { eciesEncrypt, escrowShareAad, releaseShareAad } from './ecies.ts'
import {
  escrowMatches,
  guardianAddress,
  guardianKeysHash,
  makeEscrow,
  openEscrowShare,
  recoverFromReleases,
  releaseShare,
  splitGuardianKeys,
  type EscrowDomain,
} from './escrow.ts'
import { unpackCommitments } from './secretSharing.ts'
import { publicKey33, publicKey64, recoverSigner } from './signature.ts'
import { guardianEscrowDigest, guardianEscrowHash, shareReleaseDigest } from './typedData.ts'
import { addressOfPublicKey } from './signature.ts'

const domain: EscrowDomain = { chainId: 31337, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }
const newKey = () => secp256k1.utils.randomSecretKey()

function setup(k = 3, n = 5) {
  const master = newKey()
  const guardians = Array.from({ length: n }, newKey)
  const keys = guardians.map((g) => publicKey64(g))
  const escrow = makeEscrow(domain, { generation: 2n, guardianSet: 1n, guardianKeys: keys, threshold: k, secret: master })
  return { master, guardians, keys, escrow }
}

describe('guardian escrow (docs/protocol.md#guardians)', () => {
  test('an escrow is signed by M_g over the struct the contract hashes, with C_0 = the master key', () => {
    const { master, escrow } = setup()
    const commitments = unpackCommitments(escrow.commitments)
    assert.equal(commitments.length, 3)
    assert.deepEqual(commitments[0], publicKey33(master))
    assert.equal(escrow.encryptedShares.length, 5)
    const message = { ...domain, generation: 2n, guardianSet: 1n, commitments: escrow.commitments, encryptedShares: escrow.encryptedShares }
    assert.equal(recoverSigner(guardianEscrowDigest(message), hexToBytes(escrow.signature)), addressOfPublicKey(publicKey33(master)))
    assert.equal(escrow.hash, guardianEscrowHash(message))
    assert.equal(escrowMatches(domain, escrow, escrow.hash), true)
    // Any change to a logged escrow changes its hash: the proven escrowHash catches a host that rewrites the event.
    const swapped = [...escrow.encryptedShares]
    ;[swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!]
    assert.equal(escrowMatches(domain, { ...escrow, encryptedShares: swapped }, escrow.hash), false)
    assert.equal(escrowMatches(domain, { ...escrow, guardianSet: 2n }, escrow.hash), false)
    assert.equal(escrowMatches(domain, { ...escrow, commitments: 'zz' as Hex }, escrow.hash), false)
  })

  test('each guardian opens and verifies only its own share', () => {
    const { guardians, escrow } = setup()
    for (let i = 0; i < 5; i++) {
      const share = openEscrowShare(domain, escrow, { index: i + 1, guardianKey: guardians[i]! })
      assert.equal(share.index, i + 1)
    }
    // Guardian 2's key does not open share 1 (its aad names index 1 and it is encrypted to key 1).
    assert.throws(() => openEscrowShare(domain, escrow, { index: 1, guardianKey: guardians[1]! }), /not_decryptable/)
    // The aad binds the chain: the same ciphertext does not open for another registry.
    assert.throws(() => openEscrowShare({ ...domain, registry: '0x0000000000000000000000000000000000000001' }, escrow, { index: 1, guardianKey: guardians[0]! }), /not_decryptable/)
    assert.throws(() => openEscrowShare(domain, escrow, { index: 6, guardianKey: guardians[0]! }), /escrow_mismatch/)
  })

  test('security: a tampered share fails guardian verify (share_mismatch), though it decrypts', () => {
    const { guardians, keys, escrow } = setup()
    // A dealer who encrypts a wrong value to guardian 3 (with the right key and aad): it opens, and fails the commitments.
    const wrong = new Uint8Array(32)
    wrong[31] = 7
    const tampered = [...escrow.encryptedShares]
    tampered[2] = bytesToHex(eciesEncrypt(Uint8Array.of(4, ...keys[2]!), wrong, escrowShareAad({ ...domain, generation: 2n, guardianSet: 1n, index: 3 })))
    assert.throws(() => openEscrowShare(domain, { ...escrow, encryptedShares: tampered }, { index: 3, guardianKey: guardians[2]! }), /share_mismatch/)
    // A flipped ciphertext byte does not even open.
    const flipped = hexToBytes(escrow.encryptedShares[3]!)
    flipped[flipped.length - 1]! ^= 1
    tampered[3] = bytesToHex(flipped)
    assert.throws(() => openEscrowShare(domain, { ...escrow, encryptedShares: tampered }, { index: 4, guardianKey: guardians[3]! }), /not_decryptable/)
    // Shifted commitments (another polynomial) make every honest share fail.
    const other = makeEscrow(domain, { generation: 2n, guardianSet: 1n, guardianKeys: keys, threshold: 3, secret: newKey() })
    assert.throws(() => openEscrowShare(domain, { ...escrow, commitments: other.commitments }, { index: 1, guardianKey: guardians[0]! }), /share_mismatch/)
  })

  test('release and recovery: two shares leave it pending, three recover M; a bad release is named and skipped', () => {
    const { master, guardians, escrow } = setup()
    const enclave = newKey()
    const requestId = 9n
    const releases = [1, 3, 5].map((index) => {
      const share = openEscrowShare(domain, escrow, { index, guardianKey: guardians[index - 1]! })
      const released = releaseShare(domain, { requestId, generation: 2n, share, requestKey: publicKey64(enclave), guardianKey: guardians[index - 1]! })
      // The contract learns the guardian from the signature.
      const signer = recoverSigner(shareReleaseDigest({ ...domain, requestId, generation: 2n, encryptedShare: released.encryptedShare }), hexToBytes(released.signature))
      assert.equal(signer, guardianAddress(publicKey64(guardians[index - 1]!)))
      return { index, encryptedShare: released.encryptedShare }
    })
    const common = { requestId, generation: 2n, requestSecretKey: enclave, commitments: escrow.commitments, masterPubkey: publicKey33(master) }
    const two = recoverFromReleases(domain, { ...common, releases: releases.slice(0, 2) })
    assert.equal(two.recovered, false)
    assert.deepEqual(two.recovered ? [] : [two.valid, two.needed], [[1, 3], 3])

    // A share released by guardian 2 that is not on the polynomial, and one encrypted for another request.
    const junk = new Uint8Array(32)
    junk[0] = 1
    const bad = { index: 2, encryptedShare: bytesToHex(eciesEncrypt(publicKey33(enclave), junk, releaseShareAad({ ...domain, requestId, generation: 2n, index: 2 }))) }
    const share4 = openEscrowShare(domain, escrow, { index: 4, guardianKey: guardians[3]! })
    const elsewhere = releaseShare(domain, { requestId: 10n, generation: 2n, share: share4, requestKey: publicKey64(enclave), guardianKey: guardians[3]! })
    const withBad = recoverFromReleases(domain, { ...common, releases: [bad, { index: 4, encryptedShare: elsewhere.encryptedShare }, ...releases.slice(0, 2)] })
    assert.equal(withBad.recovered, false)
    assert.deepEqual(withBad.rejected, [
      { index: 2, reason: 'share_mismatch' },
      { index: 4, reason: 'not_decryptable' },
    ])

    const three = recoverFromReleases(domain, { ...common, releases: [bad, ...releases] })
    assert.equal(three.recovered, true)
    if (three.recovered) {
      assert.deepEqual(three.secret, master)
      assert.deepEqual(three.used, [1, 3, 5])
    }
    // Another generation's key (a host that swaps the proven record): refused before anything is decrypted.
    assert.throws(() => recoverFromReleases(domain, { ...common, masterPubkey: publicKey33(newKey()), releases }), /escrow_mismatch/)
  })

  test('guardian keys are checked as the contract checks them', () => {
    const keys = [publicKey64(newKey()), publicKey64(newKey())]
    const packed = bytesToHex(new Uint8Array(keys.flatMap((k) => [...k])))
    assert.deepEqual(splitGuardianKeys(packed), keys)
    assert.equal(guardianKeysHash(keys), keccak256(packed))
    assert.throws(() => splitGuardianKeys(packed.slice(0, -2) as Hex), /bad_guardian_keys.*multiple of 64/)
    assert.throws(() => splitGuardianKeys(bytesToHex(keys[0]!)), /bad_guardian_keys: 1 guardian keys/)
    assert.throws(() => splitGuardianKeys(bytesToHex(new Uint8Array([...keys[0]!, ...keys[0]!]))), /given twice/)
    assert.throws(() => splitGuardianKeys(bytesToHex(new Uint8Array([...keys[0]!, ...new Uint8Array(64).fill(1)]))), /key 2 is not a point/)
  })
})
