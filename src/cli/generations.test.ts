// `keymanager rotate|revoke`: every bad flag or argument exits 2 with one line naming it, before any RPC is reached.
// (The verbs against a chain run in test/rotation.test.ts.)
import assert from 'node:assert/strict'
import { test } from 'node:test'
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
    ['rotate', [], /rotate needs one of: start, status/],
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
