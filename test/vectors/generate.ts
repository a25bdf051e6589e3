// Writes the known-answer vectors of src/keys (docs/protocol.md#keys-and-derivations, docs/protocol.md#report-data, docs/protocol.md#wire-formats, docs/protocol.md#registry-contract) into test/vectors/*.json.
// Run once when a format is introduced: `node --import tsx test/vectors/generate.ts [FILE.json ...]` (only the files
// named, or all). The unit tests beside the
// code recompute every vector from its inputs and compare, and cross-check some by an independent path
// (node:crypto, viem's signTypedData, hand-laid ABI words), so a file is never just the code agreeing with itself.
// Regenerating a file whose format is already published is a protocol change, not a fix.
import { writeFileSync } from 'node:fs'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { APP_CA_PURPOSE, appCaCertificate } from '../../src/keys/appCa.ts'
import { dstackSign, SIGN_KEY_PATH, SIGN_KEY_PURPOSE, signKeyAlgorithm, type SignAlgorithm } from '../../src/keys/dstackSign.ts'
import { createMasterSecret } from '../../src/secret/masterSecret.ts'
import { encodeDstackAttestation } from '../../src/tee/dstackAttestation.ts'
import { runtimeEvent, runtimeEventDigest, runtimeEventsOf } from '../../src/tee/eventLog.ts'
import { toHex0x } from '../../src/keys/bytes.ts'
import {
  appIdForPod,
  deriveP256Key,
  derivedPublicKey,
  getKeyResponse,
  issueAppKey,
  deriveSealkey,
  normalizeKeyAlgorithm,
} from '../../src/keys/derive.ts'
import { eciesEncrypt, escrowShareAad, onboardAad, releaseShareAad, rotationAad } from '../../src/keys/ecies.ts'
import { bootstrapReportData, PROTOCOL_MARKER, registerReportData, rotateReportData } from '../../src/keys/reportData.ts'
import { addressOfPublicKey, publicKey33, publicKey64, signDigest } from '../../src/keys/signature.ts'
import { splitSecret } from '../../src/keys/secretSharing.ts'
import {
  attestationDigest,
  generationAckDigest,
  generationProposalDigest,
  guardianEscrowDigest,
  guardianEscrowHash,
  onboardReceiptDigest,
  onboardResponseDigest,
  shareReleaseDigest,
} from '../../src/keys/typedData.ts'
import { canonicalJson, settingsDigest } from '../../src/keys/settingsDigest.ts'
import { parseMeasuredSettings } from '../../src/config.ts'

/** A fixed test key: keccak256 of a label (all labels here give valid secp256k1 scalars). */
function testKey(label: string): Uint8Array {
  return keccak_256(utf8ToBytes(`keymanager test vector: ${label}`))
}

const hex = toHex0x
const MASTER = testKey('master secret')
const CHAIN_ID = 31337
const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3' as const

const only = process.argv.slice(2)

function write(name: string, about: string, body: object | (() => object)): void {
  if (only.length > 0 && !only.includes(name)) return
  if (typeof body === 'function') body = body()
  const path = new URL(`./${name}`, import.meta.url)
  writeFileSync(path, `${JSON.stringify({ _about: about, ...body }, null, 2)}\n`)
  console.log(`wrote test/vectors/${name}`)
}

function derivation() {
  const podNames = ['app', 'web-1', 'pod with spaces/ünïcode ✓']
  const requests = [
    { path: 'keymanager/sealkey', purpose: '', algorithm: 'secp256k1' },
    { path: '/wallet/0', purpose: 'ethereum', algorithm: 'secp256k1' },
    { path: 'signing', purpose: 'signing', algorithm: 'ed25519' },
  ]
  return {
    masterSecret: hex(MASTER),
    masterPublicKey33: hex(publicKey33(MASTER)),
    masterPublicKey64: hex(publicKey64(MASTER)),
    xPub: addressOfPublicKey(publicKey33(MASTER)),
    apps: podNames.map((podName) => {
      const appId = appIdForPod(podName)
      const issued = issueAppKey(MASTER, appId)
      return {
        podName,
        appId: hex(appId),
        appKey: hex(issued.appKey),
        appPublicKey33: hex(issued.appPublicKey33),
        appAddress: addressOfPublicKey(issued.appPublicKey33),
        kmsSignature: hex(issued.kmsSignature),
        sealkey: hex(deriveSealkey(MASTER, appId)),
        getKey: requests.map((request) => {
          const response = getKeyResponse({ appKey: issued.appKey, kmsSignature: issued.kmsSignature, ...request })
          const pub = derivedPublicKey(response.key, normalizeKeyAlgorithm(request.algorithm))
          return {
            ...request,
            key: hex(response.key),
            publicKey: hex(pub),
            signatureChain: response.signatureChain.map(hex),
          }
        }),
      }
    }),
  }
}

function ecies() {
  const recipientSecretKey = testKey('ecies recipient')
  const cases = [
    {
      name: 'master secret to a newcomer, onboarding aad',
      plaintext: MASTER,
      aad: onboardAad({ chainId: CHAIN_ID, registry: REGISTRY, requestId: 7n, generation: 1n }),
      aadArgs: { chainId: CHAIN_ID, registry: REGISTRY, requestId: '7', generation: '1' },
      uncompressedRecipient: false,
    },
    {
      name: 'empty plaintext, empty aad, recipient given uncompressed',
      plaintext: new Uint8Array(0),
      aad: new Uint8Array(0),
      aadArgs: undefined,
      uncompressedRecipient: true,
    },
    {
      name: 'odd-length plaintext and aad',
      plaintext: utf8ToBytes('keymanager ecies v1: 37-byte message!'),
      aad: utf8ToBytes('aad'),
      aadArgs: undefined,
      uncompressedRecipient: false,
    },
  ]
  return {
    vectors: cases.map((c, i) => {
      const ephemeralSecretKey = testKey(`ecies ephemeral ${i}`)
      const nonce = keccak_256(utf8ToBytes(`keymanager test vector: ecies nonce ${i}`)).slice(0, 12)
      const recipientPublicKey = c.uncompressedRecipient
        ? new Uint8Array([4, ...publicKey64(recipientSecretKey)])
        : publicKey33(recipientSecretKey)
      return {
        name: c.name,
        recipientSecretKey: hex(recipientSecretKey),
        recipientPublicKey: hex(recipientPublicKey),
        ephemeralSecretKey: hex(ephemeralSecretKey),
        nonce: hex(nonce),
        plaintext: hex(c.plaintext),
        aad: hex(c.aad),
        ...(c.aadArgs ? { onboardAad: c.aadArgs } : {}),
        ciphertext: hex(eciesEncrypt(recipientPublicKey, c.plaintext, c.aad, { ephemeralSecretKey, nonce })),
      }
    }),
  }
}

function typedData() {
  const domain = { chainId: CHAIN_ID, registry: REGISTRY }
  const newcomer = testKey('newcomer ephemeral key')
  const attestation = { hostname: 'app', appData: hex(keccak_256(utf8ToBytes('app data'))) }
  const response = {
    requestIds: ['1', '2', '115792089237316195423570985008687907853269984665640564039457584007913129639935'],
    responseBlobHash: hex(keccak_256(utf8ToBytes('blob'))).replace(/^0x../, '0x01'),
    generation: '1',
  }
  const receipt = { requestId: '1', xPub: addressOfPublicKey(publicKey33(MASTER)) }
  const attestationHash = attestationDigest({ ...domain, ...attestation })
  const responseHash = onboardResponseDigest({
    ...domain,
    ...response,
    requestIds: response.requestIds.map(BigInt),
    responseBlobHash: response.responseBlobHash as `0x${string}`,
    generation: BigInt(response.generation),
  })
  const receiptHash = onboardReceiptDigest({ ...domain, requestId: BigInt(receipt.requestId), xPub: receipt.xPub })
  return {
    domain: { name: 'KeyManager', version: '1', chainId: CHAIN_ID, verifyingContract: REGISTRY },
    masterSecret: hex(MASTER),
    newcomerSecretKey: hex(newcomer),
    attestation: { message: attestation, digest: hex(attestationHash), signature: hex(signDigest(attestationHash, MASTER)) },
    onboardResponse: { message: response, digest: hex(responseHash), signature: hex(signDigest(responseHash, MASTER)) },
    onboardReceipt: { message: receipt, digest: hex(receiptHash), signature: hex(signDigest(receiptHash, newcomer)) },
  }
}

function generations() {
  const domain = { chainId: CHAIN_ID, registry: REGISTRY }
  const member = testKey('member node key')
  const nextMaster = testKey('generation 2 master secret')
  const guardian = testKey('guardian 1 key')
  const blobHash = (label: string) => hex(keccak_256(utf8ToBytes(label))).replace(/^0x../, '0x01')
  const proposal = {
    proposal: '3',
    generation: '2',
    masterPubkey64: hex(publicKey64(nextMaster)),
    recipientIds: ['1', '4', '7'],
    proposalBlobHash: blobHash('rotate envelope'),
  }
  const proposalHash = generationProposalDigest({
    ...domain,
    ...proposal,
    proposal: BigInt(proposal.proposal),
    generation: BigInt(proposal.generation),
    masterPubkey64: proposal.masterPubkey64,
    recipientIds: proposal.recipientIds.map(BigInt),
    proposalBlobHash: proposal.proposalBlobHash as `0x${string}`,
  })
  const ack = { proposal: '3', generation: '2', xPub: addressOfPublicKey(publicKey33(nextMaster)) }
  const ackHash = generationAckDigest({ ...domain, proposal: 3n, generation: 2n, xPub: ack.xPub })
  const escrow = {
    generation: '1',
    guardianSet: '2',
    commitments: hex(new Uint8Array([...publicKey33(MASTER), ...publicKey33(testKey('coefficient 1'))])),
    encryptedShares: ['0x01', '0xabcdef', '0x'],
  }
  const escrowArgs = {
    ...domain,
    generation: 1n,
    guardianSet: 2n,
    commitments: escrow.commitments,
    encryptedShares: escrow.encryptedShares as `0x${string}`[],
  }
  const escrowHash = guardianEscrowDigest(escrowArgs)
  const release = { requestId: '9', generation: '1', encryptedShare: hex(utf8ToBytes('a share encrypted to the enclave')) }
  const releaseHash = shareReleaseDigest({ ...domain, requestId: 9n, generation: 1n, encryptedShare: release.encryptedShare as `0x${string}` })
  return {
    domain: { name: 'KeyManager', version: '1', chainId: CHAIN_ID, verifyingContract: REGISTRY },
    masterSecret: hex(MASTER),
    memberSecretKey: hex(member),
    guardianSecretKey: hex(guardian),
    generationProposal: { message: proposal, digest: hex(proposalHash), signature: hex(signDigest(proposalHash, member)) },
    generationAck: { message: ack, digest: hex(ackHash), signature: hex(signDigest(ackHash, member)) },
    guardianEscrow: {
      message: escrow,
      structHash: guardianEscrowHash(escrowArgs),
      digest: hex(escrowHash),
      signature: hex(signDigest(escrowHash, MASTER)),
    },
    shareRelease: { message: release, digest: hex(releaseHash), signature: hex(signDigest(releaseHash, guardian)) },
    aad: {
      rotation: { chainId: CHAIN_ID, registry: REGISTRY, memberId: '4', generation: '2', proposal: '3', aad: hex(rotationAad({ ...domain, memberId: 4n, generation: 2n, proposal: 3n })) },
      escrowShare: { chainId: CHAIN_ID, registry: REGISTRY, generation: '1', guardianSet: '2', index: 5, aad: hex(escrowShareAad({ ...domain, generation: 1n, guardianSet: 2n, index: 5 })) },
      releaseShare: { chainId: CHAIN_ID, registry: REGISTRY, requestId: '9', generation: '1', index: 5, aad: hex(releaseShareAad({ ...domain, requestId: 9n, generation: 1n, index: 5 })) },
    },
  }
}

function secretSharing() {
  const secret = testKey('escrowed master secret')
  let counter = 0
  // Coefficients from a fixed stream (never do this outside tests): keccak of a label and a counter.
  const rng = (length = 32) => {
    const out = new Uint8Array(length)
    for (let i = 0; i < length; i += 32) out.set(keccak_256(utf8ToBytes(`secret sharing vector ${counter++}`)).slice(0, length - i), i)
    return out
  }
  const { shares, commitments } = splitSecret(secret, { threshold: 3, count: 5, rng })
  return {
    secret: hex(secret),
    threshold: 3,
    count: 5,
    shares: shares.map((share) => ({ index: share.index, value: hex(share.value) })),
    commitments: commitments.map(hex),
  }
}

function reportData() {
  const newcomer = testKey('newcomer node key')
  // The settingsDigest of the first measured-settings vector (settings-digest.json).
  const settingsDigest = '0xbbf6eaf60c27d04de80df0cb98fa733dec7eb2ba2249fb0ccaeb92e1c962caea' as const
  const bootstrap = { chainId: CHAIN_ID, registry: REGISTRY, masterPubkey64: hex(publicKey64(MASTER)), settingsDigest }
  const register = {
    chainId: CHAIN_ID,
    registry: REGISTRY,
    pubkey64: hex(publicKey64(newcomer)),
    refBlockNumber: '12345',
    refBlockHash: hex(keccak_256(utf8ToBytes('block 12345'))),
    settingsDigest,
  }
  const rotate = { chainId: CHAIN_ID, registry: REGISTRY, generation: '2', masterPubkey64: hex(publicKey64(testKey('master secret 2'))), settingsDigest }
  return {
    protocolMarker: hex(PROTOCOL_MARKER),
    bootstrap: [{ ...bootstrap, reportData: hex(bootstrapReportData(bootstrap)) }],
    register: [{ ...register, reportData: hex(registerReportData({ ...register, refBlockNumber: BigInt(register.refBlockNumber) })) }],
    rotate: [{ ...rotate, reportData: hex(rotateReportData({ ...rotate, generation: BigInt(rotate.generation) })) }],
  }
}

write(
  'keymanager-derivation.json',
  'docs/protocol.md#keys-and-derivations: appIdForPod, app keys, getKey (secp256k1 and ed25519) with signature chains, and sealkey of a fixed M. Hex is 0x-prefixed; signatures are r||s||v with v in {0,1}.',
  derivation,
)
write(
  'ecies-v1.json',
  'docs/protocol.md#wire-formats ECIES v1 with fixed ephemeral keys and nonces (never do this outside tests): ciphertext = ephemeralPub33 || nonce12 || AES-256-GCM ciphertext || tag16.',
  ecies,
)
write(
  'typed-data.json',
  'docs/protocol.md#registry-contract EIP-712 digests and signatures (r||s||v, v in {0,1}) for Attestation (by M), OnboardResponse (by M), OnboardReceipt (by the newcomer key). Integers are decimal strings.',
  typedData,
)
write(
  'generations.json',
  'docs/protocol.md#generations EIP-712 digests and signatures (r||s||v, v in {0,1}) for GenerationProposal and GenerationAck (by a member node key), GuardianEscrow (by the generation master key; structHash is what the registry stores) and ShareRelease (by a guardian key), and the ECIES aads of rotation, escrow and release ciphertexts. Integers are decimal strings.',
  generations,
)
write(
  'secret-sharing.json',
  'docs/protocol.md#guardians Shamir 3-of-5 shares of a fixed secret over the secp256k1 group order (share i = f(i), 32-byte big-endian) and Feldman commitments C_j = a_j*G (SEC1-compressed, C_0 = the secret public key), made with a fixed coefficient stream.',
  secretSharing,
)
write(
  'report-data.json',
  'docs/protocol.md#report-data report data v2: keccak256(abi.encode(tag, uint256 chainId, address registry, ...fields, bytes32 settingsDigest)) || PROTOCOL_MARKER, PROTOCOL_MARKER = keccak256("keymanager.report-data.v2"). bootstrap fields: bytes masterPubkey64; register: bytes pubkey64, uint64 refBlockNumber, bytes32 refBlockHash; rotate: uint64 generation, bytes masterPubkey64. Integers are decimal strings.',
  reportData,
)

/** Measured settings files as an operator writes them (checksummed hex, the seal shorthand, defaults left out). */
function settingsDigests() {
  const files = [
    {
      version: 1,
      chain: { chainId: 11155111, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
      quote: { provider: 'dstack' },
      seal: 'dstack',
      pods: {
        sockets: [{ path: '/var/run/keymanager/web/dstack.sock', pod: 'web', mode: 432 }],
        names: { '10.0.0.7': 'billing' },
        appIds: { web: '0xA1B2C3D4E5F60718293A4B5C6D7E8F9012345678' },
      },
      chainView: {
        registryCodeHash: '0x6C2A0E0F2BAB1F7B7E1B7C0CF12A5B3F4D0C4E2B9A8F7E6D5C4B3A2918070605',
        lightClient: { network: 'sepolia', checkpointRoot: '0x1DB5DA0C1C0F6E7A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4E3F2A' },
      },
    },
    {
      version: 1,
      chain: { chainId: 1, registry: '0x0000000000000000000000000000000000000001', verification: 'light-client' },
      quote: { provider: 'tdx', tsmDir: '/sys/kernel/config/tsm/report' },
      seal: { provider: 'none' },
      maxReferenceAge: 32,
      chainView: {
        registryCodeHash: '0x0000000000000000000000000000000000000000000000000000000000000001',
        lightClient: { network: 'mainnet', checkpointRoot: '0x0000000000000000000000000000000000000000000000000000000000000002' },
        freshness: { timeoutSeconds: 900 },
      },
    },
  ]
  return {
    cases: files.map((file) => {
      const measured = parseMeasuredSettings(file, 'vector')
      return { file, canonical: canonicalJson(measured), settingsDigest: settingsDigest(measured) }
    }),
  }
}

write(
  'settings-digest.json',
  'docs/protocol.md#measured-settings settingsDigest = keccak256(utf8(canonical JSON of the measured settings after defaults and normalisation)). file: as written; canonical: RFC 8785 form of the settings the node runs with.',
  settingsDigests,
)

/** docs/protocol.md#dstack-api: app CA, TLS path keys, Sign answers, runtime event digests, SCALE attestation. */
function dstackApi() {
  const appId = appIdForPod('app')
  const appCa = createMasterSecret(MASTER).appCa(appId)
  const data = utf8ToBytes('price=3000.12345678')
  const signKey = (algorithm: 'secp256k1' | 'ed25519') => createMasterSecret(MASTER).getKey({ appId, path: SIGN_KEY_PATH, purpose: SIGN_KEY_PURPOSE, algorithm })
  const sign = (algorithm: SignAlgorithm, payload: Uint8Array) => {
    const issued = signKey(signKeyAlgorithm(algorithm))
    const { signature, publicKey } = dstackSign(algorithm, issued.key, payload)
    return { algorithm, data: hex(payload), signature: hex(signature), publicKey: hex(publicKey), signatureChain: [signature, ...issued.signatureChain].map(hex) }
  }
  const events = [
    ['app-id', hexToBytes('5bb4ff9a3837357f19dc176407a5709c62eb6c56')],
    ['system-ready', new Uint8Array()],
    [`${bytesToHex(appId)}:model-loaded`, hexToBytes('c0ffee')],
  ] as const
  const log = [{ imr: 0, event_type: 0x80000001, digest: bytesToHex(keccak_256(utf8ToBytes('boot')).slice(0, 32)) + '00'.repeat(16), event: '', event_payload: '01' }, ...events.map(([e, p]) => runtimeEvent(e, p))]
  return {
    masterSecret: hex(MASTER),
    xPub: addressOfPublicKey(publicKey33(MASTER)),
    appId: hex(appId),
    appCa: {
      key: hex(appCa.key),
      publicKey33: hex(appCa.publicKey33),
      purpose: APP_CA_PURPOSE,
      signatureChain: appCa.signatureChain.map(hex),
      certificate: hex(appCaCertificate(appId, appCa)),
    },
    tlsKeys: ['site/tls', ''].map((path) => ({ path, key: hex(deriveP256Key(appCa.key, path)) })),
    sign: [sign('secp256k1', data), sign('secp256k1_prehashed', sha256(data)), sign('ed25519', data)],
    runtimeEvents: events.map(([event, payload]) => ({ event, payload: hex(payload), digest: hex(runtimeEventDigest(event, payload)) })),
    attestation: {
      quote: '0x0400020081',
      eventLog: log,
      reportData: hex(new Uint8Array(64).fill(0xab)),
      config: '{"os_image_hash":"00"}',
      scale: hex(encodeDstackAttestation({ quote: hexToBytes('0400020081'), eventLog: log, runtimeEvents: runtimeEventsOf(log), reportData: new Uint8Array(64).fill(0xab), config: '{"os_image_hash":"00"}' })),
    },
  }
}

write(
  'dstack-api.json',
  'docs/protocol.md#dstack-api for the fixed M of keymanager-derivation.json and the pod "app": the app CA (key HKDF(M, appId || app-ca), chain, deterministic certificate DER), GetTlsKey path keys HKDF(appCaKey, path), Sign answers (key GetKey(vms, signing)), dstack runtime event digests, and the SCALE versioned attestation of a small event log. Hex is 0x-prefixed.',
  dstackApi,
)
