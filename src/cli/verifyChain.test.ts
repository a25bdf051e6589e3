import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { createPublicClient, createWalletClient, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil } from '../devnet/anvil.ts'
import { deployKeyManager } from '../chain/deploy.ts'
import { appIdForPod } from '../keys/derive.ts'
import { appCaCertificate, certificatePem } from '../keys/appCa.ts'
import { signDigest } from '../keys/signature.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { runDerive } from './derive.ts'
import { runVerifyChain } from './verifyChain.ts'

const SECRET = '0505050505050505050505050505050505050505050505050505050505050505'
const master = createMasterSecret(hexToBytes(SECRET))
const appId = appIdForPod('oracle')
const dir = mkdtempSync(join(tmpdir(), 'km-verify-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function run(argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runVerifyChain(argv, (l) => out.push(l), (l) => err.push(l))
  return { code, out: out.join('\n'), err }
}

let fileCount = 0
function write(content: unknown): string {
  const path = join(dir, `chain-${fileCount++}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

/** A GetKey response as the dstack API returns it (hex without 0x), annotated with purpose and app_id. */
function getKeyFile(overrides: Record<string, unknown> = {}, options: { algorithm?: string } = {}) {
  const { key, signatureChain } = master.getKey({ appId, path: 'reports', purpose: 'price-oracle', algorithm: options.algorithm })
  return {
    key: bytesToHex(key),
    signature_chain: signatureChain.map((s) => bytesToHex(s)),
    purpose: 'price-oracle',
    app_id: bytesToHex(appId),
    ...(options.algorithm ? { algorithm: options.algorithm } : {}),
    ...overrides,
  }
}

test('default: a GetKey response file verifies against the master address; each step is printed', async () => {
  const file = getKeyFile()
  const { code, out, err } = await run([write(file), '--master-address', master.address])
  assert.equal(code, 0, err.join('\n'))
  assert.match(out, /^\[ok\]   app-signature: app key 0x/m)
  assert.match(out, /^\[ok\]   kms-signature: master key /m)
  assert.match(out, /^verified: all 2 steps hold$/m)
  assert.doesNotMatch(out, new RegExp(file.key), 'the derived key is never printed')
})

test('default: derive --json output is a valid FILE as is', async () => {
  const lines: string[] = []
  assert.equal(await runDerive(['--master-secret', SECRET, '--app-id', bytesToHex(appId), '--path', 'x', '--purpose', 'y', '--json'], (l) => lines.push(l)), 0)
  const { code, out } = await run([write(lines.join('\n')), '--master-address', master.address.toLowerCase(), '--json'])
  assert.equal(code, 0)
  const json = JSON.parse(out) as { ok: boolean; steps: { step: string; ok: boolean }[]; masterAddress: string; purpose: string }
  assert.equal(json.ok, true)
  assert.deepEqual(json.steps.map((s) => [s.step, s.ok]), [['app-signature', true], ['kms-signature', true]])
  assert.equal(json.purpose, 'y')
})

test('default: public_key instead of key, --app-id instead of app_id, ed25519', async () => {
  const { key, ...rest } = getKeyFile({}, { algorithm: 'ed25519' })
  const { ed25519 } = await import('@noble/curves/ed25519.js')
  const file = { ...rest, app_id: undefined, public_key: bytesToHex(ed25519.getPublicKey(hexToBytes(key))) }
  const { code, out } = await run([write(file), '--master-address', master.address, '--app-id', '0x' + bytesToHex(appId)])
  assert.equal(code, 0, out)
})

test('default: a message signed by the derived key is a third step', async () => {
  const file = getKeyFile()
  const signature = bytesToHex(signDigest(keccak_256(utf8ToBytes('ETH/USD 3000')), hexToBytes(file.key)))
  const good = await run([write(file), '--master-address', master.address, '--message', 'ETH/USD 3000', '--message-signature', signature])
  assert.equal(good.code, 0)
  assert.match(good.out, /^\[ok\]   message-signature: /m)
  const bad = await run([write(file), '--master-address', master.address, '--message', 'ETH/USD 3001', '--message-signature', signature])
  assert.equal(bad.code, 1)
  assert.match(bad.out, /^\[FAIL\] message-signature: /m)
  assert.match(bad.out, /^NOT verified: 1 of 3 steps failed$/m)
})

test('error: a chain for another root, purpose or app exits 1 and says which step failed', async () => {
  const other = createMasterSecret(hexToBytes('06'.repeat(32)))
  const cases: [string[], RegExp][] = [
    [[write(getKeyFile()), '--master-address', other.address], /\[FAIL\] kms-signature: signed by 0x\w+, not by the master key/],
    [[write(getKeyFile({ purpose: 'ethereum' })), '--master-address', master.address], /\[FAIL\] kms-signature/],
    [[write(getKeyFile()), '--master-address', master.address, '--app-id', bytesToHex(appIdForPod('wallet'))], /\[FAIL\] kms-signature/],
    [[write(getKeyFile({ signature_chain: ['00'.repeat(65), getKeyFile().signature_chain[1]] })), '--master-address', master.address], /\[FAIL\] app-signature: signature_chain\[0\] recovers no app key/],
  ]
  for (const [argv, pattern] of cases) {
    const { code, out } = await run(argv)
    assert.equal(code, 1, argv.join(' '))
    assert.match(out, pattern)
    assert.match(out, /^NOT verified/m)
  }
})

test('error: bad flags and bad files exit 2 with a one-line reason, never showing the key', async () => {
  const good = write(getKeyFile())
  const key = getKeyFile().key
  const big = join(dir, 'big.json')
  writeFileSync(big, ' '.repeat(70 * 1024))
  const m = ['--master-address', master.address]
  const cases: [string[], RegExp][] = [
    [m, /takes one FILE, got 0/],
    [[good, good, ...m], /takes one FILE, got 2/],
    [[good], /needs --master-address ADDR or --rpc URL --registry ADDR/],
    [[good, ...m, '--rpc', 'http://127.0.0.1:1', '--registry', master.address], /not both/],
    [[good, '--rpc', 'http://127.0.0.1:1'], /--rpc and --registry go together/],
    [[good, '--registry', master.address], /--rpc and --registry go together/],
    [[good, '--rpc', 'ftp://x', '--registry', master.address], /--rpc must be an http\(s\) URL/],
    [[good, '--rpc', 'not a url', '--registry', master.address], /--rpc must be an http\(s\) URL/],
    [[good, '--rpc', 'http://127.0.0.1:1', '--registry', '0x12'], /--registry must be 0x followed by 40 hex digits/],
    [[good, '--master-address', 'xyz'], /--master-address must be 0x followed by 40 hex digits/],
    [[good, '--master-address', master.address.slice(0, 41) + (master.address.at(-1) === 'a' ? 'A' : 'a')], /checksum|40 hex digits/],
    [[good, ...m, '--message', 'x'], /--message and --message-signature go together/],
    [[good, ...m, '--message', 'x', '--message-signature', 'zz'], /--message-signature must contain only hex digits/],
    [[good, ...m, '--message', 'x', '--message-signature', 'ab'.repeat(64)], /messageSignature must be 65 bytes, got 64/],
    [[good, ...m, '--app-id', 'abcd'], /--app-id must be 20 bytes/],
    [[good, ...m, '--what'], /Unknown option '--what'/],
    [[join(dir, 'missing.json'), ...m], /missing\.json: ENOENT/],
    [[dir, ...m], /: EISDIR/],
    [[big, ...m], /larger than 65536 bytes/],
    [[write('{nope'), ...m], /: not JSON/],
    [[write('[1]'), ...m], /must hold a JSON object, got array/],
    [[write(getKeyFile({ signature_chain: undefined })), ...m], /signature_chain must be an array of 2 hex signatures, got undefined/],
    [[write(getKeyFile({ signature_chain: ['00'] })), ...m], /signature_chain must hold 2 signatures, got 1/],
    [[write(getKeyFile({ signature_chain: ['00', '11'] })), ...m], /signature_chain\[0\] must be 65 bytes/],
    [[write(getKeyFile({ purpose: undefined })), ...m], /purpose must be a string \(the purpose given to GetKey\), got undefined/],
    [[write(getKeyFile({ purpose: 7 })), ...m], /purpose must be a string/],
    [[write(getKeyFile({ algorithm: 'rsa' })), ...m], /unsupported key algorithm "rsa"/],
    [[write(getKeyFile({ algorithm: 1 })), ...m], /algorithm must be a string, got number/],
    [[write(getKeyFile({ key: undefined })), ...m], /give key or public_key/],
    [[write(getKeyFile({ key: key.slice(2) })), ...m], /key must be 32 bytes/],
    [[write(getKeyFile({ key: undefined, public_key: '02' + '00'.repeat(32) })), ...m], /publicKey is not a valid secp256k1 public key/],
    [[write(getKeyFile({ app_id: undefined })), ...m], /no app id: give --app-id HEX or an app_id field in FILE/],
    [[write(getKeyFile({ app_id: 'zz' })), ...m], /app_id must be 20 bytes|app_id must contain only hex/],
  ]
  for (const [argv, pattern] of cases) {
    const { code, out, err } = await run(argv)
    assert.equal(code, 2, `${argv.join(' ')}: ${err.join(' | ')}`)
    assert.equal(out, '')
    assert.equal(err.length, 1, err.join(' | '))
    assert.match(err[0]!, /^keymanager verify-chain: /)
    assert.match(err[0]!, pattern)
    assert.doesNotMatch(err[0]!, new RegExp(key))
  }
})

test('error: an unreachable RPC or a registry that is not bootstrapped exits 1 with a reason', async () => {
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
  const file = write(getKeyFile())
  const unreachable = await run([file, '--rpc', `http://127.0.0.1:${closed}`, '--registry', master.address])
  assert.equal(unreachable.code, 1)
  assert.match(unreachable.err[0]!, /cannot read xPub from registry 0x\w+ at 127\.0\.0\.1:\d+/)

  const anvil = await startAnvil()
  try {
    const account = privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80')
    const transport = http(anvil.rpcUrl)
    const walletClient = createWalletClient({ account, chain: foundry, transport })
    const publicClient = createPublicClient({ chain: foundry, transport })
    const registry = await deployKeyManager({ walletClient, publicClient, owner: account.address, measurementDelay: 0 })
    const fresh = await run([file, '--rpc', anvil.rpcUrl, '--registry', registry])
    assert.equal(fresh.code, 1)
    assert.equal(fresh.err.length, 1)
    assert.match(fresh.err[0]!, /registry 0x\w+ is not bootstrapped \(xPub is zero\)/)
  } finally {
    await anvil.stop()
  }
})

test('default: a GetTlsKey certificate chain (PEM) verifies its app CA against the master address; another root fails', async () => {
  const ca = certificatePem(appCaCertificate(appId, master.appCa(appId)))
  const otherAppCa = certificatePem(appCaCertificate(appIdForPod('other'), master.appCa(appIdForPod('other'))))
  const chainFile = write(`${ca}`)
  const good = await run([chainFile, '--master-address', master.address, '--app-id', bytesToHex(appId)])
  assert.equal(good.code, 0, good.err.join('\n'))
  assert.match(good.out, /^\[ok\]   certificate: self-signed P-256 CA 0x\w+ for app 0x/m)
  assert.match(good.out, /^\[ok\]   kms-signature: master key /m)
  assert.match(good.out, /^verified: pin this CA \(all 3 steps hold\)$/m)
  const other = createMasterSecret(hexToBytes('06'.repeat(32)))
  const bad = await run([chainFile, '--master-address', other.address])
  assert.equal(bad.code, 1)
  assert.match(bad.out, /^NOT verified: do not pin this CA$/m)
  const wrongApp = await run([write(otherAppCa), '--master-address', master.address, '--app-id', bytesToHex(appId), '--json'])
  assert.equal(wrongApp.code, 1)
  assert.equal((JSON.parse(wrongApp.out) as { ok: boolean }).ok, false)
  const noCa = await run([write('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), '--master-address', master.address])
  assert.equal(noCa.code, 2)
  assert.match(noCa.err[0]!, /not a certificate/)
  other.expire()
})
