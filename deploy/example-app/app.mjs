// An example pod (deploy/compose.yaml service `app`): what an app does with the sidecar next to it.
//   - GET http://dstack-keymanager/sealkey: its persistent key (the same on every node), e.g. to encrypt its volume;
//   - GET http://dstack-keymanager/attest/<32 bytes>: a signature a contract checks with verifyAttestation;
//   - GetKey through @phala/dstack-sdk, unchanged, over the socket the sidecar serves for this pod only.
// It prints what it got (never the keys themselves: a fingerprint, a public key) and keeps running.
// A sidecar that has just started is healthy (it listens) before it holds the master secret (it onboards from its
// peers first): it answers 503 `not_ready` until then, and the app waits for it, as any pod should.
import { randomBytes, createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { secp256k1 } from '@noble/curves/secp256k1'
import { DstackClient } from '@phala/dstack-sdk'

const base = process.env.KEYMANAGER_URL ?? 'http://dstack-keymanager'
const READY_WAIT_MS = 300_000

async function getJson(path) {
  for (const deadline = Date.now() + READY_WAIT_MS; ; await sleep(1000)) {
    const res = await fetch(base + path)
    const body = await res.json()
    if (res.ok) return body
    if (res.status !== 503 || Date.now() > deadline) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
  }
}

const fingerprint = (hex) => createHash('sha256').update(hex).digest('hex').slice(0, 16)

const sealkey = await getJson('/sealkey')
console.log(JSON.stringify({ sealkey: { appId: sealkey.appId, generation: sealkey.generation, fingerprint: fingerprint(sealkey.key) } }))
const appData = '0x' + randomBytes(32).toString('hex')
const attestation = await getJson(`/attest/${appData}`)
console.log(JSON.stringify({ attest: { hostname: attestation.hostname, signer: attestation.signer, appData, signature: attestation.signature } }))
const client = new DstackClient()
const purpose = 'signing'
const key = await client.getKey('wallet/ethereum', purpose)
const publicKey = Buffer.from(secp256k1.getPublicKey(key.key, true)).toString('hex')
const signatureChain = key.signature_chain.map((s) => Buffer.from(s).toString('hex'))
console.log(JSON.stringify({ getKey: { purpose, publicKey, signatureChain } }))
setInterval(() => {}, 1 << 30)
