// `keymanager rotate|revoke|purge` and the owner's `escrow guardians` / `recover start|cancel`: every bad flag or
// argument exits 2 with one line naming it, before any RPC is reached. (Every verb, signed and --unsigned, runs against
// a registry on anvil in test/generations.test.ts.)
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { runEscrow } from './escrow.ts'
import { runGenerations } from './generations.ts'

async function run(group: 'rotate' | 'revoke' | 'purge', argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runGenerations(group, argv, (l) => out.push(l), (l) => err.push(l))
  return { code, out, err }
}

const chain = ['--rpc', 'http://127.0.0.1:9', '--registry', '0x5FbDB2315678afecb367f032d93F642f64180aa3']

test('error: bad verbs, flags and arguments exit 2 with a one-line reason', async () => {
  const cases: [group: 'rotate' | 'revoke' | 'purge', argv: string[], reason: RegExp][] = [
    ['rotate', [], /rotate needs one of: start, status, cancel, force-commit/],
    ['rotate', ['begin'], /rotate needs one of/],
    ['revoke', ['member', '1'], /revoke needs one of: node, generation/],
    ['rotate', ['start', '--overlap=-5', ...chain], /--overlap must be whole seconds from 0 to 31536000/],
    ['rotate', ['start', '--overlap', '-5', ...chain], /Option '--overlap' argument is ambiguous/],
    ['rotate', ['start', '--overlap', '31536001', ...chain], /--overlap must be whole seconds/],
    ['rotate', ['start', '--force-delay', '1.5', ...chain], /--force-delay must be whole seconds/],
    ['rotate', ['start', '--emergency', '--overlap', '60', ...chain], /an emergency rotation has no overlap/],
    ['rotate', ['start', ...chain], /give --owner-key-file F/],
    ['rotate', ['status', '--emergency', ...chain], /belong to rotate start/],
    ['rotate', ['status', 'extra', ...chain], /rotate status takes no arguments/],
    ['rotate', ['start', '--bogus'], /Unknown option '--bogus'/],
    ['revoke', ['node', ...chain], /revoke node takes one argument, got 0/],
    ['revoke', ['node', '3', ...chain, '--owner-key-file', '/nonexistent'], /--owner-key-file: cannot read it/],
    ['revoke', ['generation', '1', '2', ...chain], /takes one argument, got 2/],
    ['purge', ['node', '1', ...chain], /purge needs one of: generation/],
    ['purge', ['generation', ...chain], /purge generation takes one argument, got 0/],
    ['purge', ['generation', '0', ...chain], /G must be a decimal integer from 1/],
    ['purge', ['generation', '2', ...chain], /give --owner-key-file F/],
    ['revoke', ['node', '1', '--overlap', '5', ...chain], /belong to rotate start/],
    // --unsigned: a Safe batch instead of a signature, so never with a key; never on a read.
    ['rotate', ['start', '--unsigned', '--owner-key-file', '/nonexistent', ...chain], /--unsigned signs nothing: leave out --owner-key-file/],
    ['revoke', ['generation', '2', '--unsigned', '--owner-key-file', '/k', ...chain], /--unsigned signs nothing/],
    ['rotate', ['status', '--unsigned', ...chain], /rotate status only reads: --unsigned does not apply/],
    ['rotate', ['start', '--unsigned', '--overlap', 'x', ...chain], /--overlap must be whole seconds/],
    ['purge', ['generation', '0', '--unsigned', ...chain], /G must be a decimal integer from 1/],
    ['rotate', ['start', '--unsigned=yes', ...chain], /Option '--unsigned' does not take an argument/],
    ['rotate', ['cancel', '1', ...chain], /rotate cancel takes no arguments/],
    ['rotate', ['cancel', ...chain], /give --owner-key-file F/],
    ['rotate', ['force-commit', ...chain], /rotate force-commit takes one argument, got 0/],
    ['rotate', ['force-commit', '0', '--unsigned', ...chain], /PROPOSAL_ID must be a decimal integer from 1 to 2\^64-1/],
    ['rotate', ['force-commit', '18446744073709551616', ...chain], /PROPOSAL_ID must be/],
    ['rotate', ['force-commit', '3', '--emergency', ...chain], /belong to rotate start/],
    ['rotate', ['cancel', '--confirmations', '0', '--unsigned', ...chain], /--confirmations must be a number of blocks from 1 to 999/],
  ]
  for (const [group, argv, reason] of cases) {
    const { code, err, out } = await run(group, argv)
    assert.equal(code, 2, `${group} ${argv.join(' ')}: ${err.join('|')}`)
    assert.equal(err.length, 1, `${group} ${argv.join(' ')}`)
    assert.match(err[0]!, reason)
    assert.ok(err[0]!.startsWith(`keymanager ${group}: `))
    assert.deepEqual(out, [])
  }
})

test('error: a member id or generation out of range is a usage error naming it', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const keyFile = join(mkdtempSync(join(tmpdir(), 'km-cli-')), 'owner.key')
  writeFileSync(keyFile, `0x${'11'.repeat(32)}`)
  for (const [verb, value, reason] of [
    ['node', '0', /MEMBER_ID must be a decimal integer from 1 to 2\^256-1/],
    ['node', '0x05', /MEMBER_ID must be/],
    ['generation', '18446744073709551616', /G must be a decimal integer from 1 to 2\^64-1/],
    ['generation', 'x1', /G must be/],
  ] as const) {
    const { code, err } = await run('revoke', [verb, value, ...chain, '--owner-key-file', keyFile])
    assert.equal(code, 2, `${verb} ${value}: ${err.join('|')}`)
    assert.match(err[0]!, reason)
  }
})

test('error: escrow guardians and recover start|cancel: bad keys, thresholds and signer flags exit 2 with a one-line reason', async () => {
  const key = (n: number) => {
    // Real points: the generator's multiples 1G, 2G, 3G (x ‖ y, as guardian keygen prints them).
    return '0x' + Buffer.from(secp256k1.Point.BASE.multiply(BigInt(n)).toBytes(false)).subarray(1).toString('hex')
  }
  const cases: [group: 'escrow' | 'recover', argv: string[], reason: RegExp][] = [
    ['escrow', ['guardians', ...chain, '--owner-key-file', '/k'], /escrow guardians takes the guardians' public keys/],
    ['escrow', ['guardians', key(1), key(2), ...chain], /give --threshold K: how many of the 2 guardians/],
    ['escrow', ['guardians', key(1), key(2), '--threshold', '3', ...chain], /--threshold must be from 2 to the number of guardians \(2\), got '3'/],
    ['escrow', ['guardians', key(1), key(2), '--threshold', '1', ...chain], /--threshold must be from 2/],
    ['escrow', ['guardians', key(1), key(2), '--threshold', 'two', ...chain], /--threshold must be from 2/],
    ['escrow', ['guardians', key(1), key(1), '--threshold', '2', ...chain], /guardian key 2 is given twice/],
    ['escrow', ['guardians', key(1), '0x' + '00'.repeat(64), '--threshold', '2', ...chain], /guardian key 2 is not a point on secp256k1/],
    ['escrow', ['guardians', key(1).slice(0, 66), '--threshold', '2', ...chain], /guardian key 1 must be 64 bytes of hex/],
    ['escrow', ['guardians', ...Array.from({ length: 33 }, (_, i) => key(i + 1)), '--threshold', '2', ...chain], /at most 32 keys, got 33/],
    ['escrow', ['guardians', 'none', '--threshold', '2', ...chain], /escrow guardians none names no guardians: drop --threshold/],
    ['escrow', ['guardians', key(1), key(2), '--threshold', '2', ...chain], /give --owner-key-file F/],
    ['escrow', ['guardians', 'none', '--unsigned', '--owner-key-file', '/k', ...chain], /--unsigned signs nothing/],
    ['escrow', ['guardians', 'none', '--node', 'http://127.0.0.1:9', '--unsigned'], /escrow guardians is the owner's/],
    ['escrow', ['status', '--unsigned', ...chain], /escrow status sends no owner call/],
    ['escrow', ['status', '--threshold', '2', ...chain], /--threshold belongs to escrow guardians/],
    ['escrow', ['rotate'], /escrow needs one of: publish, status, guardians/],
    ['recover', ['start', '5', '--unsigned', '--owner-key-file', '/k', ...chain], /--unsigned signs nothing/],
    ['recover', ['cancel', ...chain], /give --owner-key-file F/],
    ['recover', ['start', 'x', '--unsigned', ...chain], /recover start takes the request id/],
    ['recover', ['0x' + '11'.repeat(20), '--node', 'http://127.0.0.1:9', '--unsigned'], /recover ENCKEY talks to the node: --unsigned/],
  ]
  for (const [group, argv, reason] of cases) {
    const out: string[] = []
    const err: string[] = []
    const code = await runEscrow(group, argv, {}, (l) => out.push(l), (l) => err.push(l))
    assert.equal(code, 2, `${group} ${argv.join(' ').slice(0, 120)}: ${err.join('|')}`)
    assert.equal(err.length, 1)
    assert.match(err[0]!, reason)
    assert.ok(err[0]!.startsWith(`keymanager ${group}: `))
    assert.deepEqual(out, [])
  }
})
