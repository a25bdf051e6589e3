import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { appIdForPod, deriveAppKey } from '../keys/derive.ts'
import { verifyGetKeyChain } from '../keys/verifyChain.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { runDerive } from './derive.ts'

const SECRET = '0404040404040404040404040404040404040404040404040404040404040404'
const APP_ID = bytesToHex(appIdForPod('oracle'))
const dir = mkdtempSync(join(tmpdir(), 'km-derive-'))
after(() => rmSync(dir, { recursive: true, force: true }))

async function run(argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runDerive(argv, (l) => out.push(l), (l) => err.push(l))
  return { code, out: out.join('\n'), err }
}

const base = ['--master-secret', SECRET, '--app-id', APP_ID, '--path', 'reports', '--purpose', 'price-oracle']

type DeriveJson = {
  appId: string
  path: string
  purpose: string
  algorithm: string
  key: string
  publicKey: string
  address?: string
  appPublicKey: string
  masterAddress: string
  signatureChain: string[]
}

test('default: derive --json prints what the sidecar answers GetKey with, and the chain verifies', async () => {
  const { code, out, err } = await run([...base, '--json'])
  assert.equal(code, 0)
  assert.deepEqual(err, [])
  const json = JSON.parse(out) as DeriveJson
  const master = createMasterSecret(hexToBytes(SECRET))
  const expected = master.getKey({ appId: appIdForPod('oracle'), path: 'reports', purpose: 'price-oracle' })
  assert.equal(json.key, '0x' + bytesToHex(expected.key))
  assert.deepEqual(json.signatureChain, expected.signatureChain.map((s) => '0x' + bytesToHex(s)))
  assert.equal(json.masterAddress, master.address)
  assert.equal(json.appId, '0x' + APP_ID)
  assert.equal(json.algorithm, 'secp256k1')
  assert.match(json.address!, /^0x[0-9a-fA-F]{40}$/)
  const verified = verifyGetKeyChain({
    appId: appIdForPod('oracle'),
    publicKey: hexToBytes(json.publicKey.slice(2)),
    signatureChain: json.signatureChain.map((s) => hexToBytes(s.slice(2))),
    purpose: 'price-oracle',
    masterAddress: json.masterAddress,
  })
  assert.equal(verified.ok, true)
  assert.equal('0x' + bytesToHex(verified.appPublicKey33!), json.appPublicKey)
})

test('default: derive prints one labelled line per value for people, and never the master secret or app key', async () => {
  const { code, out } = await run(base)
  assert.equal(code, 0)
  for (const label of ['appId', 'path', 'purpose', 'algorithm', 'key', 'publicKey', 'address', 'appPublicKey', 'masterAddress', 'signatureChain[0]', 'signatureChain[1]']) {
    assert.match(out, new RegExp(`^${label.replace(/[[\]]/g, '\\$&')} +\\S`, 'm'), label)
  }
  assert.doesNotMatch(out.toLowerCase(), new RegExp(SECRET))
  assert.doesNotMatch(out.toLowerCase(), new RegExp(bytesToHex(deriveAppKey(hexToBytes(SECRET), appIdForPod('oracle')))))
})

test('default: ed25519 keys have no address; k256 is secp256k1', async () => {
  const ed = JSON.parse((await run([...base, '--algorithm', 'ed25519', '--json'])).out) as DeriveJson
  assert.equal(ed.algorithm, 'ed25519')
  assert.equal(ed.address, undefined)
  assert.equal(ed.publicKey, '0x' + bytesToHex(ed25519.getPublicKey(hexToBytes(ed.key.slice(2)))))
  const k256 = (await run([...base, '--algorithm', 'k256', '--json'])).out
  assert.equal(k256, (await run([...base, '--json'])).out)
})

test('default: --master-secret-file reads hex from a file (0x and a trailing newline allowed)', async () => {
  const file = join(dir, 'secret')
  writeFileSync(file, `0x${SECRET}\n`, { mode: 0o600 })
  const fromFile = await run(['--master-secret-file', file, '--app-id', APP_ID, '--path', 'reports', '--purpose', 'price-oracle', '--json'])
  assert.equal(fromFile.code, 0)
  assert.equal(fromFile.out, (await run([...base, '--json'])).out)
  assert.equal(readFileSync(file, 'utf8'), `0x${SECRET}\n`, 'file untouched')
})

test('error: bad flags exit 2 with a one-line reason that never shows the secret', async () => {
  const noSecret = base.slice(2)
  const cases: [string[], RegExp][] = [
    [noSecret, /needs --master-secret HEX or --master-secret-file FILE/],
    [['--master-secret', SECRET, '--path', 'p', '--purpose', 'q'], /needs --app-id HEX/],
    [['--master-secret', SECRET, '--app-id', APP_ID, '--purpose', 'q'], /needs --path P/],
    [['--master-secret', SECRET, '--app-id', APP_ID, '--path', 'p'], /needs --purpose Q/],
    [[...base, '--algorithm', 'p256'], /unsupported key algorithm "p256"/],
    [[...base, '--bogus'], /Unknown option '--bogus'/],
    [[...base, SECRET], /no positional arguments \(got 1\)/],
    [['--master-secret', SECRET.slice(2), ...base.slice(2)], /master secret must be 32 bytes \(64 hex digits\), got 62/],
    [['--master-secret', 'zz' + SECRET.slice(2), ...base.slice(2)], /master secret must contain only hex digits/],
    [['--master-secret', '00'.repeat(32), ...base.slice(2)], /master secret must be a valid secp256k1 secret key/],
    [['--master-secret', 'ff'.repeat(32), ...base.slice(2)], /master secret must be a valid secp256k1 secret key/],
    [['--master-secret', SECRET, '--master-secret-file', '/x', ...base.slice(2)], /not both/],
    [['--master-secret-file', join(dir, 'missing'), ...base.slice(2)], /--master-secret-file .*missing: ENOENT/],
    [['--master-secret', SECRET, '--app-id', APP_ID.slice(2), '--path', 'p', '--purpose', 'q'], /--app-id must be 20 bytes/],
    [['--master-secret', SECRET, '--app-id', '0x' + APP_ID + '00', '--path', 'p', '--purpose', 'q'], /--app-id must be 20 bytes/],
    [['--master-secret'], /argument missing/],
  ]
  for (const [argv, pattern] of cases) {
    const { code, out, err } = await run(argv)
    assert.equal(code, 2, argv.join(' '))
    assert.equal(out, '')
    assert.equal(err.length, 1, `one line: ${err.join(' | ')}`)
    assert.match(err[0]!, /^keymanager derive: /)
    assert.match(err[0]!, pattern)
    assert.doesNotMatch(err[0]!.toLowerCase(), new RegExp(SECRET.slice(4)))
  }
})
