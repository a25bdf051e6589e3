// A dstack key source rooted in dstack's public simulator (test/vectors/dstack-simulator.json): the simulator's app
// key and its KMS signature, with no KMS root secret. GetKey reproduces the simulator byte for byte; the app CA key
// (which dstack's KMS derives from its root CA key, not public) is derived here from the app key instead, and signed
// by it, so its chain still verifies up to the simulator's KMS root address.
import { readFileSync } from 'node:fs'
import { p256 } from '@noble/curves/nist.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import type { Address } from 'viem'
import type { DstackKeySource } from '../src/app/dstack.ts'
import { APP_CA_PURPOSE } from '../src/keys/appCa.ts'
import { appSignatureDigest, deriveP256Key, getKeyResponse } from '../src/keys/derive.ts'
import { signDigest } from '../src/keys/signature.ts'

export type SimulatorVectors = {
  app_id: string
  app_key: string
  app_pub_compressed: string
  kms_signature: string
  kms_root_pub_compressed: string
  kms_root_address: string
  getKey: { path: string; purpose: string; key: string; signature_chain_0: string }[]
}

export const simulatorVectors = JSON.parse(readFileSync(new URL('./vectors/dstack-simulator.json', import.meta.url), 'utf8')) as SimulatorVectors

export function simulatorKeySource(v: SimulatorVectors = simulatorVectors): DstackKeySource {
  const appKey = hexToBytes(v.app_key)
  const kmsSignature = hexToBytes(v.kms_signature)
  const caKey = deriveP256Key(appKey, 'test: app CA under the dstack simulator app key')
  const caPublicKey33 = p256.getPublicKey(caKey, true)
  const appSignature = signDigest(appSignatureDigest(APP_CA_PURPOSE, caPublicKey33), appKey)
  return {
    address: v.kms_root_address as Address,
    publicKey33: hexToBytes(v.kms_root_pub_compressed),
    getKey: ({ path, purpose, algorithm }) => getKeyResponse({ appKey, kmsSignature, path, purpose, algorithm }),
    appCa: () => ({ key: caKey.slice(), publicKey33: caPublicKey33.slice(), signatureChain: [appSignature.slice(), kmsSignature.slice()] }),
  }
}
