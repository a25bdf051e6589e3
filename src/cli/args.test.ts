import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFlags, UsageError } from './args.ts'

test('default: declared flags and positionals', () => {
  const { values, positionals } = parseFlags(['--path', 'a', 'x'], { path: { type: 'string' } })
  assert.deepEqual({ ...values }, { path: 'a' })
  assert.deepEqual(positionals, ['x'])
})

test('error: unknown flags and flags missing their value are one-line usage errors', () => {
  // Found by fuzzing: node's parseArgs explains an ambiguous value over three lines.
  for (const args of [['--nope'], ['--path'], ['--path', '-x']]) {
    assert.throws(
      () => parseFlags(args, { path: { type: 'string' } }),
      (error: unknown) => error instanceof UsageError && error.code === 'bad_request' && !error.message.includes('\n'),
      args.join(' '),
    )
  }
})
