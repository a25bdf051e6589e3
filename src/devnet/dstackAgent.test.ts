// The simulated dstack guest agent, driven by the production clients of a dstack CVM: the `dstack` quote provider
// and seal provider (what the sidecar image uses), and the production DCAP verifier with the devnet root trusted.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { dstackSealProvider } from '../secret/dstackSeal.ts'
import { UnsealError } from '../secret/seal.ts'
import { dstackQuoteProvider } from '../tee/hardwareQuotes.ts'
import { createDcapVerifier } from '../tee/dcap.ts'
import { measurementOf } from '../tee/measurement.ts'
import { serveSimulatedDstackAgent } from './dstackAgent.ts'
import { createDevnetPki } from './pki.ts'
import { simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from './simulated.ts'
import { replayRtmrs, runtimeEvent } from '../tee/eventLog.ts'
import { bytesToHex } from '@noble/hashes/utils.js'

const pki = createDevnetPki()
const measurement = simulatedMeasurement('agent-test')
const quoteProvider = simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement })
const socketIn = () => join(mkdtempSync(join(tmpdir(), 'km-agent-')), 'dstack.sock')

function post(socketPath: string, path: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('default: the dstack quote provider gets a quote over its report data that the DCAP verifier accepts under the devnet root', async () => {
  const agent = await serveSimulatedDstackAgent({ socketPath: socketIn(), quoteProvider, seed: new Uint8Array(32).fill(1) })
  try {
    const reportData = new Uint8Array(64).map((_, i) => 255 - i)
    const quote = await dstackQuoteProvider({ socketPath: agent.socketPath }).getQuote(reportData)
    const collateral = pki.collateral()
    const verifier = createDcapVerifier({ trustedRootCaDer: [pki.rootCaDer], collateral: { get: async () => collateral } })
    const verified = await verifier.verify(quote)
    assert.deepEqual(verified.reportData, reportData)
    assert.equal(verified.measurementId, measurementOf(await quoteProvider.getQuote(reportData)).measurementId)
  } finally {
    await agent.close()
  }
})

test('default: the dstack provider gets the TD event log in the agent\'s stripped form, fills it in so it replays to the quote; EmitEvent moves RTMR3', async () => {
  const td = simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement('agent-events'), bootEventLog: simulatedBootEventLog('agent-events') })
  const agent = await serveSimulatedDstackAgent({ socketPath: socketIn(), quoteProvider: td, seed: new Uint8Array(32).fill(5) })
  try {
    const reportData = new Uint8Array(64).fill(0x5a)
    const wire = await post(agent.socketPath, '/GetQuote', JSON.stringify({ report_data: bytesToHex(reportData) }))
    const raw = JSON.parse(wire.body.event_log as string) as { imr: number; digest: string; event_payload: string }[]
    assert.ok(raw.length > 0 && raw.every((e) => (e.imr === 3 ? e.digest === '' : e.event_payload === '')), 'dstack\'s stripped form')
    const provider = dstackQuoteProvider({ socketPath: agent.socketPath })
    const rtmrs = (quote: Uint8Array) => [376, 424, 472, 520].map((o) => bytesToHex(quote.subarray(o, o + 48)))
    const before = await provider.quoteWithEvidence!(reportData)
    assert.deepEqual(replayRtmrs(before.eventLog).map(bytesToHex), rtmrs(before.quote))
    await provider.emitEvent!('app:loaded', Uint8Array.of(1, 2, 3))
    const after = await provider.quoteWithEvidence!(reportData)
    assert.notEqual(rtmrs(after.quote)[3], rtmrs(before.quote)[3])
    assert.deepEqual(replayRtmrs(after.eventLog).map(bytesToHex), rtmrs(after.quote))
    assert.deepEqual(after.eventLog.at(-1), runtimeEvent('app:loaded', Uint8Array.of(1, 2, 3)))
    assert.deepEqual(await post(agent.socketPath, '/EmitEvent', '{"event":"","payload":""}'), {
      status: 400,
      body: { error: 'event: expected a non-empty string of at most 512 bytes' },
    })
    assert.deepEqual(await post(agent.socketPath, '/EmitEvent', '{"event":"x","payload":"zz"}'), { status: 400, body: { error: 'payload: expected at most 4096 bytes of hex' } })
  } finally {
    await agent.close()
  }
})

test('default: a sealed secret survives an agent restart with the same seed, and no other seed opens it', async () => {
  const socketPath = socketIn()
  const dataDir = dirname(socketPath)
  const secret = new Uint8Array(32).fill(7)
  let agent = await serveSimulatedDstackAgent({ socketPath, quoteProvider, seed: new Uint8Array(32).fill(2) })
  const sealed = (await dstackSealProvider({ socketPath, dataDir })).seal(secret, 'master')
  await agent.close()
  agent = await serveSimulatedDstackAgent({ socketPath, quoteProvider, seed: new Uint8Array(32).fill(2) })
  assert.deepEqual((await dstackSealProvider({ socketPath, dataDir })).unseal(sealed, 'master'), secret)
  await agent.close()
  agent = await serveSimulatedDstackAgent({ socketPath, quoteProvider, seed: new Uint8Array(32).fill(3) })
  const other = await dstackSealProvider({ socketPath, dataDir })
  assert.throws(() => other.unseal(sealed, 'master'), UnsealError)
  await agent.close()
})

test('error: bad requests get the agent error shape, never a crash', async () => {
  const agent = await serveSimulatedDstackAgent({ socketPath: socketIn(), quoteProvider, seed: new Uint8Array(32).fill(4) })
  try {
    assert.deepEqual(await post(agent.socketPath, '/GetQuote', '{"report_data":"zz"}'), {
      status: 400,
      body: { error: 'report_data: expected at most 64 bytes of hex' },
    })
    assert.deepEqual(await post(agent.socketPath, '/GetQuote', `{"report_data":"${'00'.repeat(65)}"}`), {
      status: 400,
      body: { error: 'report_data: expected at most 64 bytes of hex' },
    })
    assert.deepEqual(await post(agent.socketPath, '/GetKey', '{"path":7}'), { status: 400, body: { error: 'path: expected a string of at most 512 bytes' } })
    assert.deepEqual(await post(agent.socketPath, '/GetKey', 'not json'), { status: 400, body: { error: 'request body is not JSON' } })
    assert.deepEqual(await post(agent.socketPath, '/Nope', '{}'), { status: 400, body: { error: 'unknown method /Nope' } })
    const short = await post(agent.socketPath, '/GetQuote', '{"report_data":"0x0102"}')
    assert.equal(short.status, 200, 'a short report_data is zero-padded, as dstack does')
    const padded = new Uint8Array(64)
    padded.set([1, 2])
    assert.deepEqual(measurementOf(Buffer.from(short.body.quote as string, 'hex')).reportData, padded)
  } finally {
    await agent.close()
  }
  await assert.rejects(serveSimulatedDstackAgent({ socketPath: socketIn(), quoteProvider, seed: new Uint8Array(31) }), RangeError)
})
