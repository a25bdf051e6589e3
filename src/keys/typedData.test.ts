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
  generationAckDigest,
  generationProposalDigest,
  guardianEscrowDigest,
  guardianEscrowHash,
  KEYMANAGER_TYPES,
  keyManagerDomain,
  onboardReceiptDigest,
  onboardResponseDigest,
  shareReleaseDigest,
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

describe('generation digests (vectors in test/vectors/generations.json)', () => {
  const g = JSON.parse(readFileSync(new URL('../../test/vectors/generations.json', import.meta.url), 'utf8'))
  const domainArgs = { chainId: g.domain.chainId, registry: g.domain.verifyingContract }
  const proposal = {
    ...domainArgs,
    proposal: BigInt(g.generationProposal.message.proposal),
    generation: BigInt(g.generationProposal.message.generation),
    masterPubkey64: g.generationProposal.message.masterPubkey64,
    recipientIds: g.generationProposal.message.recipientIds.map(BigInt),
    proposalBlobHash: g.generationProposal.message.proposalBlobHash,
  }
  const ack = { ...domainArgs, proposal: BigInt(g.generationAck.message.proposal), generation: BigInt(g.generationAck.message.generation), xPub: g.generationAck.message.xPub }
  const escrow = {
    ...domainArgs,
    generation: BigInt(g.guardianEscrow.message.generation),
    guardianSet: BigInt(g.guardianEscrow.message.guardianSet),
    commitments: g.guardianEscrow.message.commitments,
    encryptedShares: g.guardianEscrow.message.encryptedShares,
  }
  const release = {
    ...domainArgs,
    requestId: BigInt(g.shareRelease.message.requestId),
    generation: BigInt(g.shareRelease.message.generation),
    encryptedShare: g.shareRelease.message.encryptedShare,
  }
  const manual = (structHash: Hex) => {
    const domainType = keccak256(toHex('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'))
    const separator = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }],
        [domainType, keccak256(toHex('KeyManager')), keccak256(toHex('1')), BigInt(g.domain.chainId), g.domain.verifyingContract],
      ),
    )
    return keccak256(concat(['0x1901', separator, structHash]))
  }

  test('default: digests and signatures', () => {
    const member = unhex(g.memberSecretKey)
    const cases = [
      [generationProposalDigest(proposal), g.generationProposal, member],
      [generationAckDigest(ack), g.generationAck, member],
      [guardianEscrowDigest(escrow), g.guardianEscrow, unhex(g.masterSecret)],
      [shareReleaseDigest(release), g.shareRelease, unhex(g.guardianSecretKey)],
    ] as const
    for (const [digest, expected, key] of cases) {
      assert.equal(toHex0x(digest), expected.digest)
      assert.equal(toHex0x(signDigest(digest, key)), expected.signature)
    }
    assert.equal(guardianEscrowHash(escrow), g.guardianEscrow.structHash)
  })

  test('cross-check: EIP-712 encoded by hand, as contracts/src/KeyManager.sol encodes it', () => {
    const proposalType = keccak256(
      toHex('GenerationProposal(uint64 proposal,uint64 generation,bytes masterPubkey,uint256[] recipientIds,bytes32 proposalBlobHash)'),
    )
    const proposalStruct = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }],
        [
          proposalType,
          proposal.proposal,
          proposal.generation,
          keccak256(proposal.masterPubkey64),
          keccak256(concat(proposal.recipientIds.map((id: bigint) => numberToHex(id, { size: 32 })))),
          proposal.proposalBlobHash,
        ],
      ),
    )
    assert.equal(manual(proposalStruct), g.generationProposal.digest)

    const ackType = keccak256(toHex('GenerationAck(uint64 proposal,uint64 generation,address xPub)'))
    const ackStruct = keccak256(
      encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'address' }], [ackType, ack.proposal, ack.generation, ack.xPub]),
    )
    assert.equal(manual(ackStruct), g.generationAck.digest)

    // bytes[]: keccak256 of the concatenated keccak256 of each element (empty element included).
    const escrowType = keccak256(toHex('GuardianEscrow(uint64 generation,uint64 guardianSet,bytes commitments,bytes[] encryptedShares)'))
    const escrowStruct = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'bytes32' }, { type: 'bytes32' }],
        [
          escrowType,
          escrow.generation,
          escrow.guardianSet,
          keccak256(escrow.commitments),
          keccak256(concat(escrow.encryptedShares.map((share: Hex) => keccak256(share)))),
        ],
      ),
    )
    assert.equal(escrowStruct, g.guardianEscrow.structHash)
    assert.equal(manual(escrowStruct), g.guardianEscrow.digest)

    const releaseType = keccak256(toHex('ShareRelease(uint256 requestId,uint64 generation,bytes encryptedShare)'))
    const releaseStruct = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'bytes32' }],
        [releaseType, release.requestId, release.generation, keccak256(release.encryptedShare)],
      ),
    )
    assert.equal(manual(releaseStruct), g.shareRelease.digest)
  })

  test('cross-check: viem signTypedData with the same keys', async () => {
    const domain = keyManagerDomain(domainArgs)
    const member = privateKeyToAccount(g.memberSecretKey)
    const viemSignature = await member.signTypedData({
      domain,
      types: KEYMANAGER_TYPES,
      primaryType: 'GenerationProposal',
      message: {
        proposal: proposal.proposal,
        generation: proposal.generation,
        masterPubkey: proposal.masterPubkey64,
        recipientIds: proposal.recipientIds,
        proposalBlobHash: proposal.proposalBlobHash,
      },
    })
    assert.equal(viemSignature.slice(0, 130), g.generationProposal.signature.slice(0, 130))
  })

  test('default: bytes and hex inputs give one digest', () => {
    assert.deepEqual(generationProposalDigest({ ...proposal, masterPubkey64: unhex(proposal.masterPubkey64) }), generationProposalDigest(proposal))
    assert.deepEqual(
      guardianEscrowDigest({ ...escrow, commitments: unhex(escrow.commitments), encryptedShares: escrow.encryptedShares.map(unhex) }),
      guardianEscrowDigest(escrow),
    )
    assert.deepEqual(shareReleaseDigest({ ...release, encryptedShare: unhex(release.encryptedShare) }), shareReleaseDigest(release))
  })

  test('error: bad arguments', () => {
    assert.throws(() => generationProposalDigest({ ...proposal, masterPubkey64: '0x04' }), {
      name: 'RangeError',
      message: 'masterPubkey64 must be 64 bytes (128 hex digits), got 2 hex digits',
    })
    assert.throws(() => generationProposalDigest({ ...proposal, generation: 1n }), {
      name: 'RangeError',
      message: 'generation must be in [2, 2^64 - 1], got 1',
    })
    assert.throws(() => generationProposalDigest({ ...proposal, recipientIds: 1n as never }), {
      name: 'TypeError',
      message: 'recipientIds must be an array, got bigint',
    })
    assert.throws(() => generationAckDigest({ ...ack, proposal: 0n }), { name: 'RangeError', message: 'proposal must be in [1, 2^64 - 1], got 0' })
    assert.throws(() => guardianEscrowDigest({ ...escrow, encryptedShares: ['0x1'] }), {
      name: 'RangeError',
      message: 'encryptedShares[0] must have an even number of hex digits, got 1',
    })
    assert.throws(() => shareReleaseDigest({ ...release, requestId: 0n }), { name: 'RangeError', message: 'requestId must be in [1, 2^256 - 1], got 0' })
  })
})
