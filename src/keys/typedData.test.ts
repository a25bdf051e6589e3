import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { hexToBytes } from '@noble/hashes/utils.js'
import { concat, encodeAbiParameters, hashTypedData, keccak256, numberToHex, toHex, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { toHex0x } from './bytes.ts'
import { signDigest } from './signature.ts'
import {
  attestationDigest,
  KEYMANAGER_TYPES,
  keyManagerDomain,
  onboardReceiptDigest,
  onboardResponseDigest,
} from './typedData.ts'

const v = JSON.parse(readFileSync(new URL('../../test/vectors/typed-data.json', import.meta.url), 'utf8'))
const domainArgs = { chainId: v.domain.chainId, registry: v.domain.verifyingContract }
const attestation = { ...domainArgs, ...v.attestation.message }
const response = {
  ...domainArgs,
  requestIds: v.onboardResponse.message.requestIds.map(BigInt),
  responseBlobHash: v.onboardResponse.message.responseBlobHash,
  generation: BigInt(v.onboardResponse.message.generation),
}
const receipt = { ...domainArgs, requestId: BigInt(v.onboardReceipt.message.requestId), xPub: v.onboardReceipt.message.xPub }
const unhex = (value: string) => hexToBytes(value.slice(2))

/** EIP-712 by hand (type strings written out, words laid with abi.encode): independent of viem's hashTypedData. */
function manualDigest(structHash: Hex): Hex {
  const domainType = keccak256(toHex('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'))
  const domainSeparator = keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }],
      [domainType, keccak256(toHex('KeyManager')), keccak256(toHex('1')), BigInt(v.domain.chainId), v.domain.verifyingContract],
    ),
  )
  return keccak256(concat(['0x1901', domainSeparator, structHash]))
}

describe('typed-data vectors', () => {
  test('default: digests and signatures', () => {
    const master = unhex(v.masterSecret)
    const newcomer = unhex(v.newcomerSecretKey)
    const cases = [
      [attestationDigest(attestation), v.attestation, master],
      [onboardResponseDigest(response), v.onboardResponse, master],
      [onboardReceiptDigest(receipt), v.onboardReceipt, newcomer],
    ] as const
    for (const [digest, expected, key] of cases) {
      assert.equal(toHex0x(digest), expected.digest)
      assert.equal(toHex0x(signDigest(digest, key)), expected.signature)
    }
  })

  test('cross-check: viem signTypedData with the same keys', async () => {
    const domain = keyManagerDomain(domainArgs)
    const master = privateKeyToAccount(v.masterSecret)
    const newcomer = privateKeyToAccount(v.newcomerSecretKey)
    const signatures = [
      [await master.signTypedData({ domain, types: KEYMANAGER_TYPES, primaryType: 'Attestation', message: v.attestation.message }), v.attestation.signature],
      [
        await master.signTypedData({
          domain,
          types: KEYMANAGER_TYPES,
          primaryType: 'OnboardResponse',
          message: { requestIds: response.requestIds, responseBlobHash: response.responseBlobHash, generation: response.generation },
        }),
        v.onboardResponse.signature,
      ],
      [
        await newcomer.signTypedData({ domain, types: KEYMANAGER_TYPES, primaryType: 'OnboardReceipt', message: { requestId: receipt.requestId, xPub: receipt.xPub } }),
        v.onboardReceipt.signature,
      ],
    ] as const
    for (const [viemSignature, ours] of signatures) {
      // viem: r ‖ s ‖ (27 + yParity); ours: r ‖ s ‖ yParity.
      assert.equal(viemSignature.slice(0, 130), ours.slice(0, 130))
      assert.equal(Number.parseInt(viemSignature.slice(130), 16) - 27, Number.parseInt(ours.slice(130), 16))
    }
  })

  test('cross-check: EIP-712 encoded by hand', () => {
    const attestationType = keccak256(toHex('Attestation(string hostname,bytes32 appData)'))
    const attestationStruct = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }],
        [attestationType, keccak256(toHex(attestation.hostname)), attestation.appData],
      ),
    )
    assert.equal(manualDigest(attestationStruct), v.attestation.digest)

    const responseType = keccak256(toHex('OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)'))
    const idsHash = keccak256(concat(response.requestIds.map((id: bigint) => numberToHex(id, { size: 32 }))))
    const responseStruct = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint64' }],
        [responseType, idsHash, response.responseBlobHash, response.generation],
      ),
    )
    assert.equal(manualDigest(responseStruct), v.onboardResponse.digest)

    const receiptType = keccak256(toHex('OnboardReceipt(uint256 requestId,address xPub)'))
    const receiptStruct = keccak256(
      encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }], [receiptType, receipt.requestId, receipt.xPub]),
    )
    assert.equal(manualDigest(receiptStruct), v.onboardReceipt.digest)
  })
})

describe('attestationDigest', () => {
  test('default: appData as bytes or hex', () => {
    assert.deepEqual(attestationDigest({ ...attestation, appData: unhex(attestation.appData) }), attestationDigest(attestation))
  })

  test('default: equals viem hashTypedData across domains (the cached separator is per chainId and registry)', () => {
    const domains = [
      { chainId: 1, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
      { chainId: 1, registry: '0x0000000000000000000000000000000000000001' },
      { chainId: 8453n, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
      { chainId: 1, registry: '0x5fbdb2315678afecb367f032d93f642f64180aa3' },
    ] as const
    for (const domain of domains) {
      for (const hostname of ['', 'app', 'ünïcode ✓', 'x'.repeat(300)]) {
        const message = { hostname, appData: attestation.appData }
        const expected = hashTypedData({ domain: keyManagerDomain(domain), types: KEYMANAGER_TYPES, primaryType: 'Attestation', message })
        assert.equal(toHex0x(attestationDigest({ ...domain, ...message })), expected)
      }
    }
  })

  test('error: bad arguments', () => {
    assert.throws(() => attestationDigest({ ...attestation, appData: '0x1234' }), {
      name: 'RangeError',
      message: 'appData must be 32 bytes (64 hex digits), got 4 hex digits',
    })
    assert.throws(() => attestationDigest({ ...attestation, hostname: 1 as never }), {
      name: 'TypeError',
      message: 'hostname must be a string, got number',
    })
    assert.throws(() => attestationDigest({ ...attestation, chainId: 0 }), {
      name: 'RangeError',
      message: 'chainId must be in [1, 2^256 - 1], got 0',
    })
    assert.throws(() => attestationDigest({ ...attestation, registry: '0x12' }), {
      name: 'RangeError',
      message: 'registry must be 0x followed by 40 hex digits',
    })
  })
})

describe('onboard digests', () => {
  test('default: empty batch still hashes (the contract refuses it, not the encoder)', () => {
    assert.equal(onboardResponseDigest({ ...response, requestIds: [] }).length, 32)
  })

  test('error: bad arguments', () => {
    assert.throws(() => onboardResponseDigest({ ...response, requestIds: [1n, -1n] }), {
      name: 'RangeError',
      message: 'requestIds[1] must be in [0, 2^256 - 1], got -1',
    })
    assert.throws(() => onboardResponseDigest({ ...response, requestIds: 1n as never }), {
      name: 'TypeError',
      message: 'requestIds must be an array, got bigint',
    })
    assert.throws(() => onboardResponseDigest({ ...response, generation: 2n ** 64n }), {
      name: 'RangeError',
      message: 'generation must be in [0, 2^64 - 1], got 18446744073709551616',
    })
    assert.throws(() => onboardReceiptDigest({ ...receipt, xPub: 'nope' as never }), {
      name: 'RangeError',
      message: 'xPub must be 0x followed by 40 hex digits',
    })
  })
})
