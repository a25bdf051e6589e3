import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BaseError, encodeErrorResult, ExecutionRevertedError, type Hex } from 'viem'
import { revertReason } from './blobs.ts'
import { keyManagerAbi } from './keyManagerArtifact.ts'

// The shape viem gives an estimation revert: the revert data on the innermost RPC error of the cause chain.
const reverted = (data: Hex) => new BaseError('estimation failed', { cause: new ExecutionRevertedError({ cause: Object.assign(new BaseError('rpc'), { data }) }) })
const errorString = (reason: string) => encodeErrorResult({ abi: [{ type: 'error', name: 'Error', inputs: [{ name: 'reason', type: 'string' }] }], errorName: 'Error', args: [reason] })

test('revertReason: a custom error by name, an Error string as given, undecodable data in hex; not a revert: undefined', () => {
  const custom = encodeErrorResult({ abi: keyManagerAbi, errorName: 'KeyManagerAlreadyEscrowed', args: [2n, 1n] } as never)
  assert.equal(revertReason(reverted(custom), keyManagerAbi), 'KeyManagerAlreadyEscrowed(2, 1)')
  assert.equal(revertReason(reverted(errorString('not the owner')), keyManagerAbi), 'not the owner')
  assert.equal(revertReason(reverted('0xdeadbeef'), keyManagerAbi), 'undecoded revert data 0xdeadbeef')
  assert.equal(revertReason(new BaseError('timeout'), keyManagerAbi), undefined)
})

test('security: a lying RPC\'s revert string reaches clients as one printable line of at most 300 characters', () => {
  const reason = revertReason(reverted(errorString(`line one\nline two\u001b[31m\u0000${'x'.repeat(1000)}`)), keyManagerAbi)!
  assert.match(reason, /^line one\?line two\?\[31m\?x+…$/)
  assert.equal(reason.length, 301)
})
