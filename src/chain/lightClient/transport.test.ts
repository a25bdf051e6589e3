import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, test } from 'node:test'
import { ssz } from '@lodestar/types'
import { LightClientError } from './errors.ts'
import { createLightClientTransport } from './transport.ts'

// A beacon node that answers each path with what the test sets: a status, a body (string or chunks), headers, or silence.
type Answer = { status?: number; body?: string | string[]; headers?: Record<string, string>; hang?: boolean }
const answers = new Map<string, Answer>()
const server: Server = createServer((req, res) => {
  const answer = answers.get(req.url ?? '') ?? { status: 404, body: '{"code":404,"message":"not found"}' }
  if (answer.hang) return
  res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
  const chunks = Array.isArray(answer.body) ? answer.body : [answer.body ?? '']
  for (const chunk of chunks) res.write(chunk)
  res.end()
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
after(() => {
  server.closeAllConnections()
  server.close()
})

const FINALITY = '/eth/v1/beacon/light_client/finality_update'
const transport = createLightClientTransport({ url, timeoutMs: 1000 })

function refused(reason: string, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof LightClientError, String(error))
    assert.equal(error.reason, reason, error.message)
    assert.match(error.message, message)
    return true
  }
}

const finalityJson = () => ({ version: 'electra', data: ssz.electra.LightClientFinalityUpdate.toJson(ssz.electra.LightClientFinalityUpdate.defaultValue()) })

test('default: {version, data} decodes as the named fork', async () => {
  answers.set(FINALITY, { body: JSON.stringify(finalityJson()) })
  const { fork, data } = await transport.finalityUpdate()
  assert.equal(fork, 'electra')
  assert.equal(data.finalityBranch.length, 7)
})

test('default: updates is a list, asked with start_period and count', async () => {
  const update = { version: 'fulu', data: ssz.electra.LightClientUpdate.toJson(ssz.electra.LightClientUpdate.defaultValue()) }
  answers.set('/eth/v1/beacon/light_client/updates?start_period=3&count=2', { body: JSON.stringify([update, update]) })
  const updates = await transport.updates(3, 2)
  assert.deepEqual(updates.map((u) => u.fork), ['fulu', 'fulu'])
  answers.set('/eth/v1/beacon/light_client/updates?start_period=3&count=1', { body: JSON.stringify([update, update]) })
  await assert.rejects(transport.updates(3, 1), refused('malformed_response', /2 updates for 1 periods/))
  await assert.rejects(transport.updates(3, 17), /count must be 1…16/)
})

test('error: HTTP errors, unreachable, timeouts', async () => {
  answers.set(FINALITY, { status: 503, body: '{"code":503,"message":"syncing"}' })
  await assert.rejects(transport.finalityUpdate(), refused('beacon_unavailable', /HTTP 503[\s\S]*syncing/))
  answers.set(FINALITY, { hang: true })
  await assert.rejects(transport.finalityUpdate(), refused('beacon_unavailable', /no answer within 1000 ms/))
  const closed = createLightClientTransport({ url: 'http://127.0.0.1:1', timeoutMs: 1000 })
  await assert.rejects(closed.finalityUpdate(), refused('beacon_unavailable', /unreachable/))
})

test('error: oversize answers, declared or streamed, are refused without reading them whole', async () => {
  answers.set(FINALITY, { body: 'x', headers: { 'content-length': String(10 * 1024 * 1024) } })
  await assert.rejects(transport.finalityUpdate(), refused('response_too_large', /10485760 bytes exceeds the 65536-byte cap/))
  answers.set(FINALITY, { body: Array.from({ length: 100 }, () => ' '.repeat(1024)) })
  await assert.rejects(transport.finalityUpdate(), refused('response_too_large', /exceeds the 65536-byte cap/))
})

test('error: malformed answers are clear errors, never crashes', async () => {
  const cases: [string, string, RegExp][] = [
    ['not json', 'malformed_response', /not JSON/],
    ['[]', 'malformed_response', /not \{version, data\}/],
    ['null', 'malformed_response', /not \{version, data\}/],
    ['{"version":"electra"}', 'malformed_response', /not \{version, data\}/],
    ['{"version":"electra","data":{}}', 'malformed_response', /does not decode as electra LightClientFinalityUpdate/],
    ['{"version":"electra","data":{"attested_header":"\\u0000"}}', 'malformed_response', /does not decode/],
    ['{"version":"gloas","data":{}}', 'unknown_fork', /does not verify: gloas/],
    ['{"version":"bellatrix","data":{}}', 'unknown_fork', /does not verify: bellatrix/],
    ['{"version":"\\u001b[31mred","data":{}}', 'unknown_fork', /does not verify: \?\[31mred/],
    ['{"version":7,"data":{}}', 'unknown_fork', /does not verify: 7/],
  ]
  for (const [body, reason, message] of cases) {
    answers.set(FINALITY, { body })
    await assert.rejects(transport.finalityUpdate(), refused(reason, message), body)
  }
  const bad = finalityJson()
  ;(bad.data as { finality_branch: string[] }).finality_branch.pop()
  answers.set(FINALITY, { body: JSON.stringify(bad) })
  await assert.rejects(transport.finalityUpdate(), refused('malformed_response', /does not decode/))
  answers.set('/eth/v1/beacon/light_client/updates?start_period=0&count=1', { body: '{"version":"electra","data":{}}' })
  await assert.rejects(transport.updates(0, 1), refused('malformed_response', /not a list/))
})

test('error: bad options and arguments', async () => {
  assert.throws(() => createLightClientTransport({ url: 'not a url' }), /not a URL/)
  assert.throws(() => createLightClientTransport({ url: 'file:///etc/passwd' }), /expected http\(s\)/)
  await assert.rejects(transport.bootstrap('0x1234'), /block root must be 32 bytes/)
  await assert.rejects(transport.updates(-1, 1), /startPeriod/)
})
