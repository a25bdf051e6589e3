// `keymanager guardian|escrow|recover`: every bad flag or argument exits 2 with one line naming it, before any RPC or
// node is reached. (The verbs against a chain run in test/escrow.test.ts and test/recovery.test.ts.)
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { runEscrow } from './escrow.ts'
import { runGuardian } from './guardian.ts'

const chain = ['--rpc', 'http://127.0.0.1:9', '--registry', '0x5FbDB2315678afecb367f032d93F642f64180aa3']

test('error: bad verbs, flags and arguments exit 2 with a one-line reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-guardian-cli-'))
  try {
    const key = join(dir, 'g.key')
    writeFileSync(key, `0x${'11'.repeat(32)}\n`)
    const badKey = join(dir, 'bad.key')
    writeFileSync(badKey, `0x${'00'.repeat(32)}\n`)
    const settings = join(dir, 'view.json')
    writeFileSync(settings, JSON.stringify({ verification: 'light-client', registryCodeHash: `0x${'ab'.repeat(32)}`, lightClient: { network: 'mainnet', checkpointRoot: '0x12' } }))
    // As `keymanager init` writes settings: with whole-line comments, read past them.
    const commented = join(dir, 'view-commented.json')
    writeFileSync(commented, `// The registry and the light client's trust root.\n${JSON.stringify({ chainView: { verification: 'light-client', registryCodeHash: `0x${'ab'.repeat(32)}`, lightClient: { network: 'mainnet', checkpointRoot: '0x12' } } }, null, 2).replace('{\n', '{\n  // measured\n')}\n`)
    const guardianCases: [argv: string[], reason: RegExp][] = [
      [['verify', '--guardian-key-file', key, '--rpc', 'http://127.0.0.1:9', '--registry', `0x${'11'.repeat(20)}`, '--view-settings', commented, '--beacon', 'http://127.0.0.1:9'], /lightClient: checkpointRoot/],
      [[], /guardian needs one of: keygen, verify, release/],
      [['keygen'], /--key-file F is required/],
      [['keygen', '--key-file', key], /exists: a guardian key is never overwritten/],
      [['keygen', '--key-file', join(dir, 'missing', 'k')], /--key-file: cannot create it \(ENOENT\)/],
      [['verify', ...chain], /--guardian-key-file F is required/],
      [['verify', '--guardian-key-file', join(dir, 'nope'), ...chain], /--guardian-key-file: cannot read it/],
      [['verify', '--guardian-key-file', badKey, ...chain], /does not hold a valid secp256k1 private key/],
      [['verify', '--guardian-key-file', key, ...chain, '--generation', '0'], /--generation must be an integer from 1/],
      [['verify', '--guardian-key-file', key, '--registry', '0x1', '--rpc', 'http://127.0.0.1:9'], /--registry must be the registry address/],
      [['verify', '--guardian-key-file', key, '--registry', chain[3]!, '--rpc', 'ftp://x'], /--rpc must be an http\(s\) URL/],
      [['verify', '--guardian-key-file', key, ...chain], /give --view-settings FILE .* or --insecure-trusted-rpc/],
      [['verify', '--guardian-key-file', key, ...chain, '--view-settings', settings, '--beacon', 'http://127.0.0.1:9'], /lightClient: checkpointRoot/],
      [['verify', '--guardian-key-file', key, ...chain, '--insecure-trusted-rpc', '--beacon', 'http://127.0.0.1:9'], /takes no --view-settings or --beacon/],
      [['release', '--guardian-key-file', key, ...chain, '--insecure-trusted-rpc'], /--gas-key-file F is required/],
      [['release', '--guardian-key-file', key, '--gas-key-file', key, ...chain, '--insecure-trusted-rpc'], /--blobs URL is required/],
      [['release', '--guardian-key-file', key, '--gas-key-file', key, '--blobs', 'http://x', '--blobs-kind', 'ipfs', ...chain], /--blobs-kind is anvil or beacon/],
      [['release', '--guardian-key-file', key, '--gas-key-file', key, '--blobs', 'http://x', '--freshness-timeout', '0', ...chain], /--freshness-timeout is whole seconds/],
      [['verify', 'extra'], /guardian verify takes no arguments/],
      [['verify', '--guardian-key-file', key, ...chain, '--insecure-trusted-rpc', '--from-block', 'latest'], /--from-block must be a block number, got 'latest'/],
      [['verify', '--guardian-key-file', key, ...chain, '--insecure-trusted-rpc', '--from-block', '-1'], /--from-block' argument is ambiguous|--from-block must be a block number/],
      [['release', '--guardian-key-file', key, '--gas-key-file', key, '--blobs', 'http://x', ...chain, '--insecure-trusted-rpc', '--max-log-range', '0'], /--max-log-range must be a number of blocks, 1 or more, got '0'/],
      [['verify', '--bogus'], /Unknown option '--bogus'/],
    ]
    for (const [argv, reason] of guardianCases) {
      const err: string[] = []
      const code = await runGuardian(argv, () => {}, (l) => err.push(l))
      assert.equal(code, 2, `guardian ${argv.join(' ')}: ${err.join('|')}`)
      assert.equal(err.length, 1, `guardian ${argv.join(' ')}: ${err.join('|')}`)
      assert.match(err[0]!, reason)
      assert.ok(err[0]!.startsWith('keymanager guardian: '))
    }
    const escrowCases: [group: 'escrow' | 'recover', argv: string[], reason: RegExp][] = [
      ['escrow', [], /escrow needs one of: publish, status/],
      ['escrow', ['publish'], /--node HOST_URL is required/],
      ['escrow', ['publish', '--node', 'http://127.0.0.1:9', ...chain], /escrow publish talks to a node/],
      ['escrow', ['status', '--node', 'http://127.0.0.1:9'], /escrow status reads the chain/],
      ['escrow', ['status', 'x'], /takes no arguments/],
      ['escrow', ['status', '--registry', chain[3]!], /give --rpc URL/],
      ['recover', [], /recover takes the enclave's registration key ENCKEY/],
      ['recover', ['0x1234'], /recover takes the enclave's registration key ENCKEY/],
      ['recover', ['start', ...chain], /recover start takes the request id/],
      ['recover', ['start', '0', ...chain], /recover start takes the request id/],
      ['recover', ['start', '3', ...chain], /give --owner-key-file F/],
      ['recover', ['cancel', '3', ...chain], /recover cancel takes no argument/],
      ['recover', ['start', '3', '--node', 'http://127.0.0.1:9'], /recover start is the owner's/],
      ['recover', [`0x${'ab'.repeat(20)}`, ...chain], /recover ENCKEY talks to the node/],
      ['recover', [`0x${'ab'.repeat(20)}`], /--node HOST_URL is required/],
    ]
    for (const [group, argv, reason] of escrowCases) {
      const err: string[] = []
      const code = await runEscrow(group, argv, {}, () => {}, (l) => err.push(l))
      assert.equal(code, 2, `${group} ${argv.join(' ')}: ${err.join('|')}`)
      assert.equal(err.length, 1, `${group} ${argv.join(' ')}`)
      assert.match(err[0]!, reason)
      assert.ok(err[0]!.startsWith(`keymanager ${group}: `))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
