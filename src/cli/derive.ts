// `keymanager derive` (docs/protocol.md#command-line): the dstack GetKey derivation, offline, from a master secret. It prints what a
// sidecar of that network answers a pod with this appId (same functions: issueAppKey for the KMS half,
// getKeyResponse for the guest-agent half), so an auditor can check a key and its chain without a TEE.
//
// Migrating from a dstack KMS root. The derivation is byte-identical to dstack's (docs/protocol.md#keys-and-derivations): a dstack app whose
// KMS root secret is R and whose app_id is A gets, for a path P, HKDF(HKDF(R, A ‖ "app-key"), P). So:
// - if keymanager's master secret is R (possible only where the operator controls the root: a self-hosted dstack KMS
//   whose k256 root key can be exported, or a test root like the dstack simulator's) and the pod is pinned to A
//   (the pods.appIds map of the node config), the pod's GetKey answers are exactly the keys it had under dstack:
//   `keymanager derive --master-secret R --app-id A --path P --purpose Q` shows them, and they can be compared with
//   what the app received from dstack before the move;
// - otherwise (the usual case: the dstack KMS root never leaves its TEE) the keys change with the root. The chain
//   format does not: verifiers (dstack's SDK, KeyManager.verifySignatureChain, `keymanager verify-chain`) keep
//   working once they trust the new root address, xPub, instead of the dstack KMS root; the app re-keys whatever
//   depended on the old keys (addresses, encrypted data), e.g. by signing a hand-over with its old key.
// The secret comes from --master-secret HEX (visible in the process list and shell history: for test roots) or
// --master-secret-file FILE (hex in a file). Only the derived key is printed; the master secret and the app key never.
import { readFileSync } from 'node:fs'
import { parseHex, toHex0x, wipe } from '../keys/bytes.ts'
import { derivedPublicKey, getKeyResponse, issueAppKey, normalizeKeyAlgorithm } from '../keys/derive.ts'
import { addressOfPublicKey, assertSecretKey, publicKey33 } from '../keys/signature.ts'
import { parseFlags, UsageError } from './args.ts'

export const DERIVE_USAGE =
  'usage: keymanager derive (--master-secret HEX | --master-secret-file FILE) --app-id HEX --path P --purpose Q [--algorithm secp256k1|k256|ed25519] [--json]'

const writeErr = (line: string) => void process.stderr.write(line + '\n')

/** Turns a TypeError/RangeError of input parsing (argument named, value never shown) into a usage error. */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message)
    throw error
  }
}

function readMasterSecret(values: { 'master-secret'?: string; 'master-secret-file'?: string }): Uint8Array {
  const inline = values['master-secret']
  const file = values['master-secret-file']
  if (inline !== undefined && file !== undefined) throw new UsageError('give --master-secret or --master-secret-file, not both')
  let hex: string
  if (inline !== undefined) hex = inline
  else if (file !== undefined) {
    try {
      hex = readFileSync(file, 'utf8').trim()
    } catch (error) {
      throw new UsageError(`--master-secret-file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  } else throw new UsageError('derive needs --master-secret HEX or --master-secret-file FILE')
  return asUsage(() => {
    const secret = parseHex(hex, { name: 'master secret', length: 32, prefix: 'optional' })
    assertSecretKey(secret, 'master secret')
    return secret
  })
}

/** `keymanager derive …`: prints the derived key, its public key, address and signature chain. Exit 0, or 2 on bad input. */
export async function runDerive(argv: string[], out: (line: string) => void, err: (line: string) => void = writeErr): Promise<number> {
  let secret: Uint8Array | undefined
  try {
    const { values, positionals } = parseFlags(argv, {
      'master-secret': { type: 'string' },
      'master-secret-file': { type: 'string' },
      'app-id': { type: 'string' },
      path: { type: 'string' },
      purpose: { type: 'string' },
      algorithm: { type: 'string' },
      json: { type: 'boolean', default: false },
    })
    // Never echo a stray argument: it may be a secret pasted without its flag.
    if (positionals.length > 0) throw new UsageError(`derive takes no positional arguments (got ${positionals.length})`)
    if (values['app-id'] === undefined) throw new UsageError('derive needs --app-id HEX (20 bytes)')
    if (values.path === undefined) throw new UsageError('derive needs --path P (may be empty: --path "")')
    if (values.purpose === undefined) throw new UsageError('derive needs --purpose Q (may be empty: --purpose "")')
    const appId = asUsage(() => parseHex(values['app-id'], { name: '--app-id', length: 20, prefix: 'optional' }))
    const algorithm = asUsage(() => normalizeKeyAlgorithm(values.algorithm))
    secret = readMasterSecret(values)

    const issued = issueAppKey(secret, appId)
    const { key, signatureChain } = getKeyResponse({
      appKey: issued.appKey,
      kmsSignature: issued.kmsSignature,
      path: values.path,
      purpose: values.purpose,
      algorithm,
    })
    wipe(issued.appKey)
    const publicKey = derivedPublicKey(key, algorithm)
    const result = {
      appId: toHex0x(appId),
      path: values.path,
      purpose: values.purpose,
      algorithm,
      key: toHex0x(key),
      publicKey: toHex0x(publicKey),
      ...(algorithm === 'secp256k1' ? { address: addressOfPublicKey(publicKey) } : {}),
      appPublicKey: toHex0x(issued.appPublicKey33),
      masterAddress: addressOfPublicKey(publicKey33(secret)),
      signatureChain: signatureChain.map((s) => toHex0x(s)),
    }
    wipe(key)
    if (values.json) {
      out(JSON.stringify(result, null, 2))
      return 0
    }
    const rows: [string, string][] = [
      ['appId', result.appId],
      ['path', JSON.stringify(result.path)],
      ['purpose', JSON.stringify(result.purpose)],
      ['algorithm', algorithm],
      ['key', `${result.key}  (secret: the derived key)`],
      ['publicKey', result.publicKey],
      ...(result.address ? ([['address', result.address]] as [string, string][]) : []),
      ['appPublicKey', result.appPublicKey],
      ['masterAddress', result.masterAddress],
      ['signatureChain[0]', `${result.signatureChain[0]}  (app key over keccak256(purpose ":" publicKey hex))`],
      ['signatureChain[1]', `${result.signatureChain[1]}  (master key over keccak256("dstack-kms-issued:" appId appPublicKey))`],
    ]
    for (const [name, value] of rows) out(`${name.padEnd(18)}${value}`)
    return 0
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager derive: ${error.message}`)
      return 2
    }
    throw error
  } finally {
    if (secret) wipe(secret)
  }
}
