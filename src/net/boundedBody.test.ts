import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readBoundedBody } from './boundedBody.ts'

const errors = {
  tooLarge: (declared: number | undefined) => new Error(`too large${declared === undefined ? '' : ` (${declared})`}`),
  broken: (error: unknown) => new Error(`broken: ${(error as Error).message}`),
}

/** A chunked body (no Content-Length) of `chunks`, counting how many chunks the reader pulled; `fail` errors after them. */
function chunked(chunks: number[], fail?: string) {
  let pulled = 0
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled < chunks.length) controller.enqueue(new Uint8Array(chunks[pulled++]!).fill(7))
      else if (fail) controller.error(new Error(fail))
      else controller.close()
    },
  })
  return { response: new Response(stream), pulled: () => pulled }
}

test('default: a body up to the cap is read whole, with or without a Content-Length; no body is empty', async () => {
  assert.equal((await readBoundedBody(new Response(new Uint8Array(100)), 100, errors)).length, 100)
  assert.equal((await readBoundedBody(chunked([40, 40, 20]).response, 100, errors)).length, 100)
  assert.equal((await readBoundedBody(new Response(null), 100, errors)).length, 0)
})

test('security: a declared Content-Length over the cap is refused before reading; a chunked body stops just past it', async () => {
  await assert.rejects(readBoundedBody(new Response(new Uint8Array(101), { headers: { 'content-length': '101' } }), 100, errors), /^Error: too large \(101\)$/)
  const big = chunked([60, 60, 60, 60, 60])
  await assert.rejects(readBoundedBody(big.response, 100, errors), /^Error: too large$/)
  assert.equal(big.pulled(), 2, 'the reader stops at the chunk that passes the cap')
})

test('error: a body that breaks off is the caller\'s broken error', async () => {
  await assert.rejects(readBoundedBody(chunked([10], 'reset').response, 100, errors), /^Error: broken: reset$/)
})
