// `keymanager verify-chain FILE` (docs/protocol.md#command-line): checks a GetKey answer's signature chain off chain
// (src/keys/verifyChain.ts) and, with --rpc/--registry, also on chain with `KeyManager.verifySignatureChain`.
//
// FILE is one JSON object: the GetKey response as the dstack API returns it, annotated with what the response itself
// does not say (the purpose, and the app it was issued to). `keymanager derive --json` output is accepted as is.
//   {
//     "signature_chain": ["<65-byte hex>", "<65-byte hex>"],   // or "signatureChain"
//     "key": "<32-byte hex>",            // the derived key (secret: only its public key is used, never printed),
//     "public_key": "<hex>",             //   or "publicKey" instead: secp256k1 33/64/65 bytes, ed25519 32 bytes
//     "purpose": "<the purpose given to GetKey>",                // required ("" is a purpose)
//     "app_id": "<20-byte hex>",         // or "appId"; --app-id wins over it (the app the verifier expects)
//     "algorithm": "secp256k1"           // optional: secp256k1 (default), k256, ed25519
//   }
// Hex may carry 0x or not. Other fields are ignored.
// FILE may instead hold PEM certificates: a dstack GetTlsKey `certificate_chain` or an `Info.app_cert`. The app CA
// among them (the certificate with CA:true) is checked with verifyAppCaCertificate (docs/protocol.md#dstack-api):
// self-signed P-256, its embedded chain signed by xPub for its app (or --app-id). No on-chain step: the contract's
// verifySignatureChain takes secp256k1 keys, the CA key is P-256.
// The root: --master-address ADDR, or --rpc URL --registry ADDR to read xPub from the registry (then the chain is
// also checked by the contract, for secp256k1 keys: the contract takes 33-byte derived keys only).
// --message TEXT --message-signature HEX: also check a message signed by the derived key (UTF-8 text; secp256k1:
// 65-byte signature over keccak256(text), ed25519: 64-byte signature over the text).
// Exit 0 when every step holds, 1 when one fails (or the registry cannot be read), 2 on bad flags or a bad FILE.
import { readFileSync, statSync } from 'node:fs'
import { createPublicClient, http, zeroAddress, type Address, type Hex, type PublicClient } from 'viem'
import { keyManagerAbi } from '../chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../chain/registry.ts'
import { assertAddress, describeValue, parseHex, toHex0x, wipe } from '../keys/bytes.ts'
import { verifyGetKeyChain, type ChainStep } from '../keys/verifyChain.ts'
import { verifyAppCaCertificate, type AppCaStep } from '../keys/appCa.ts'
import { X509Certificate } from 'node:crypto'
import { parseFlags, UsageError } from './args.ts'
import { asUsage } from './derive.ts'

export const VERIFY_CHAIN_USAGE =
  'usage: keymanager verify-chain FILE (--master-address ADDR | --rpc URL --registry ADDR) [--app-id HEX] [--message TEXT --message-signature HEX] [--json]'

/** A GetKey file is a few hundred bytes; anything past this is not one. */
const MAX_FILE_BYTES = 64 * 1024

export type VerifyChainStep = ChainStep | AppCaStep | { step: 'on-chain'; ok: boolean; detail: string }

const writeErr = (line: string) => void process.stderr.write(line + '\n')

type ChainFile = {
  signatureChain: Uint8Array[]
  key?: Uint8Array
  publicKey?: Uint8Array
  purpose: string
  appId?: Uint8Array
  algorithm?: string
}

function field(record: Record<string, unknown>, ...names: string[]): unknown {
  for (const name of names) if (record[name] !== undefined) return record[name]
  return undefined
}

function readFileText(path: string): string {
  try {
    if (statSync(path).size > MAX_FILE_BYTES) throw new UsageError(`${path}: larger than ${MAX_FILE_BYTES} bytes, not a GetKey response`)
    return readFileSync(path, 'utf8')
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/** The app CA among the PEM certificates of FILE (the one with CA:true); a UsageError when there is none. */
function readAppCa(path: string, text: string): string {
  const pems = text.match(PEM_CERTIFICATE) ?? []
  for (const pem of pems) {
    try {
      if (new X509Certificate(pem).ca) return pem
    } catch {
      throw new UsageError(`${path}: holds a PEM block that is not a certificate`)
    }
  }
  throw new UsageError(`${path}: no CA certificate among its ${pems.length} PEM certificates (give the app CA or a GetTlsKey chain)`)
}

/** Reads and checks FILE; every fault is a UsageError naming the field, never showing a value. */
function readChainFile(path: string, text: string): ChainFile {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new UsageError(`${path}: not JSON`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UsageError(`${path}: must hold a JSON object, got ${describeValue(json)}`)
  }
  const record = json as Record<string, unknown>
  try {
    const chain = field(record, 'signature_chain', 'signatureChain')
    if (!Array.isArray(chain)) throw new TypeError(`signature_chain must be an array of 2 hex signatures, got ${describeValue(chain)}`)
    if (chain.length !== 2) throw new RangeError(`signature_chain must hold 2 signatures, got ${chain.length}`)
    const signatureChain = chain.map((s, i) => parseHex(s, { name: `signature_chain[${i}]`, length: 65, prefix: 'optional' }))
    const purpose = record.purpose
    if (typeof purpose !== 'string') throw new TypeError(`purpose must be a string (the purpose given to GetKey), got ${describeValue(purpose)}`)
    const algorithm = record.algorithm
    if (algorithm !== undefined && typeof algorithm !== 'string') throw new TypeError(`algorithm must be a string, got ${describeValue(algorithm)}`)
    const rawKey = record.key
    const rawPublicKey = field(record, 'public_key', 'publicKey')
    const rawAppId = field(record, 'app_id', 'appId')
    const file: ChainFile = { signatureChain, purpose }
    if (algorithm !== undefined) file.algorithm = algorithm
    if (rawKey !== undefined) file.key = parseHex(rawKey, { name: 'key', length: 32, prefix: 'optional' })
    if (rawPublicKey !== undefined) file.publicKey = parseHex(rawPublicKey, { name: 'public_key', prefix: 'optional' })
    if (rawAppId !== undefined) file.appId = parseHex(rawAppId, { name: 'app_id', length: 20, prefix: 'optional' })
    if (!file.key && !file.publicKey) throw new TypeError('give key or public_key')
    return file
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(`${path}: ${error.message}`)
    throw error
  }
}

function shortError(error: unknown): string {
  const e = error as { shortMessage?: string; message?: string }
  return (e.shortMessage ?? e.message ?? String(error)).split('\n')[0]!
}

/** Prints the app CA verification; 0 when it holds, 1 when not. */
function reportAppCa(pem: string, masterAddress: Address, appId: Uint8Array | undefined, registry: Address | undefined, json: boolean | undefined, out: (line: string) => void): number {
  const result = verifyAppCaCertificate(pem, { masterAddress, ...(appId ? { appId } : {}) })
  if (json) {
    out(
      JSON.stringify(
        {
          ok: result.ok,
          appId: result.appId ? toHex0x(result.appId) : null,
          appCaPublicKey: result.publicKey33 ? toHex0x(result.publicKey33) : null,
          masterAddress,
          ...(registry ? { registry } : {}),
          steps: result.steps,
        },
        null,
        2,
      ),
    )
  } else {
    out(`app CA         ${result.publicKey33 ? toHex0x(result.publicKey33) : '?'} (P-256)`)
    out(`appId          ${result.appId ? toHex0x(result.appId) : '?'}`)
    out(`masterAddress  ${masterAddress}${registry ? ` (xPub of registry ${registry})` : ''}`)
    for (const s of result.steps) out(`${s.ok ? '[ok]  ' : '[FAIL]'} ${s.step}: ${s.detail}`)
    out(result.ok ? `verified: pin this CA (all ${result.steps.length} steps hold)` : 'NOT verified: do not pin this CA')
  }
  return result.ok ? 0 : 1
}

/** `keymanager verify-chain FILE …`: prints each step; 0 when all hold, 1 when one fails, 2 on bad input. */
export async function runVerifyChain(argv: string[], out: (line: string) => void, err: (line: string) => void = writeErr): Promise<number> {
  let file: ChainFile | undefined
  try {
    const { values, positionals } = parseFlags(argv, {
      rpc: { type: 'string' },
      registry: { type: 'string' },
      'master-address': { type: 'string' },
      'app-id': { type: 'string' },
      message: { type: 'string' },
      'message-signature': { type: 'string' },
      json: { type: 'boolean', default: false },
    })
    if (positionals.length !== 1) throw new UsageError(`verify-chain takes one FILE, got ${positionals.length}`)
    const onChain = values.rpc !== undefined || values.registry !== undefined
    if (onChain && values['master-address'] !== undefined) throw new UsageError('give --master-address or --rpc with --registry, not both')
    if (onChain && (values.rpc === undefined || values.registry === undefined)) throw new UsageError('--rpc and --registry go together')
    if (!onChain && values['master-address'] === undefined) throw new UsageError('verify-chain needs --master-address ADDR or --rpc URL --registry ADDR')
    if ((values.message === undefined) !== (values['message-signature'] === undefined)) {
      throw new UsageError('--message and --message-signature go together')
    }
    let rpcUrl: URL | undefined
    if (values.rpc !== undefined) {
      try {
        rpcUrl = new URL(values.rpc)
      } catch {
        throw new UsageError('--rpc must be an http(s) URL')
      }
      if (rpcUrl.protocol !== 'http:' && rpcUrl.protocol !== 'https:') throw new UsageError('--rpc must be an http(s) URL')
    }
    if (values.registry !== undefined) asUsage(() => assertAddress(values.registry, '--registry'))
    if (values['master-address'] !== undefined) asUsage(() => assertAddress(values['master-address'], '--master-address'))
    const expectedAppId = values['app-id'] === undefined ? undefined : asUsage(() => parseHex(values['app-id'], { name: '--app-id', length: 20, prefix: 'optional' }))
    const messageSignature = values['message-signature'] === undefined ? undefined : asUsage(() => parseHex(values['message-signature'], { name: '--message-signature', prefix: 'optional' }))
    const path = positionals[0]!
    const text = readFileText(path)
    const appCaPem = text.trimStart().startsWith('-----BEGIN CERTIFICATE-----') ? readAppCa(path, text) : undefined
    if (appCaPem && values.message !== undefined) throw new UsageError('--message applies to GetKey files, not to certificates')
    if (!appCaPem) file = readChainFile(path, text)
    const appId = expectedAppId ?? file?.appId
    if (!appCaPem && !appId) throw new UsageError('no app id: give --app-id HEX or an app_id field in FILE')

    let masterAddress: Address
    let publicClient: PublicClient | undefined
    const registry = values.registry as Address | undefined
    if (rpcUrl && registry) {
      publicClient = createPublicClient({ transport: http(rpcUrl.href, { retryCount: 1, timeout: 15_000 }) }) as PublicClient
      try {
        masterAddress = await createRegistryClient({ publicClient, address: registry }).xPub()
      } catch (error) {
        err(`keymanager verify-chain: cannot read xPub from registry ${registry} at ${rpcUrl.host}: ${shortError(error)}`)
        return 1
      }
      if (masterAddress === zeroAddress) {
        err(`keymanager verify-chain: registry ${registry} is not bootstrapped (xPub is zero): nothing can verify`)
        return 1
      }
    } else {
      masterAddress = values['master-address'] as Address
    }

    if (appCaPem) return reportAppCa(appCaPem, masterAddress, appId, registry, values.json, out)
    if (!file || !appId) throw new Error('unreachable: a GetKey file was read')
    const chainFile = file
    const result = asUsage(() =>
      verifyGetKeyChain({
        appId,
        key: chainFile.key,
        publicKey: chainFile.publicKey,
        signatureChain: chainFile.signatureChain,
        purpose: chainFile.purpose,
        algorithm: chainFile.algorithm,
        masterAddress,
        message: values.message === undefined ? undefined : new TextEncoder().encode(values.message),
        messageSignature,
      }),
    )
    const steps: VerifyChainStep[] = [...result.steps]
    const notes: string[] = []
    if (publicClient && registry) {
      if (result.algorithm === 'secp256k1') steps.push(await onChainStep(publicClient, registry, appId, chainFile, result))
      else notes.push('on-chain check skipped: verifySignatureChain takes secp256k1 derived keys only')
    }

    const ok = steps.every((s) => s.ok)
    if (values.json) {
      out(
        JSON.stringify(
          {
            ok,
            appId: toHex0x(appId),
            purpose: file.purpose,
            algorithm: result.algorithm,
            publicKey: toHex0x(result.derivedPublicKey),
            appPublicKey: result.appPublicKey33 ? toHex0x(result.appPublicKey33) : null,
            masterAddress,
            ...(registry ? { registry } : {}),
            steps,
            ...(notes.length > 0 ? { notes } : {}),
          },
          null,
          2,
        ),
      )
    } else {
      out(`appId          ${toHex0x(appId)}`)
      out(`purpose        ${JSON.stringify(file.purpose)}`)
      out(`publicKey      ${toHex0x(result.derivedPublicKey)} (${result.algorithm})`)
      out(`masterAddress  ${masterAddress}${registry ? ` (xPub of registry ${registry})` : ''}`)
      for (const s of steps) out(`${s.ok ? '[ok]  ' : '[FAIL]'} ${s.step}: ${s.detail}`)
      for (const note of notes) out(`note: ${note}`)
      const failed = steps.filter((s) => !s.ok).length
      out(ok ? `verified: all ${steps.length} steps hold` : `NOT verified: ${failed} of ${steps.length} steps failed`)
    }
    return ok ? 0 : 1
  } catch (error) {
    if (error instanceof UsageError) {
      err(`keymanager verify-chain: ${error.message}`)
      return 2
    }
    throw error
  } finally {
    if (file?.key) wipe(file.key)
  }
}

/** KeyManager.verifySignatureChain on the same secp256k1 chain. */
async function onChainStep(
  publicClient: PublicClient,
  registry: Address,
  appId: Uint8Array,
  file: ChainFile,
  result: ReturnType<typeof verifyGetKeyChain>,
): Promise<VerifyChainStep> {
  if (!result.appPublicKey33) return { step: 'on-chain', ok: false, detail: 'not checked: there is no app key to pass' }
  try {
    const verified = await publicClient.readContract({
      address: registry,
      abi: keyManagerAbi,
      functionName: 'verifySignatureChain',
      args: [
        toHex0x(appId),
        toHex0x(result.derivedPublicKey),
        toHex0x(result.appPublicKey33),
        toHex0x(file.signatureChain[0]!),
        toHex0x(file.signatureChain[1]!),
        file.purpose,
      ] as readonly [Hex, Hex, Hex, Hex, Hex, string],
    })
    return {
      step: 'on-chain',
      ok: verified === true,
      detail: verified ? `registry ${registry} verifySignatureChain returned true` : `registry ${registry} verifySignatureChain returned false`,
    }
  } catch (error) {
    return { step: 'on-chain', ok: false, detail: `verifySignatureChain call failed: ${shortError(error)}` }
  }
}
