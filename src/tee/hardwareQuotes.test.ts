// The real-TEE quote providers against stand-ins for their OS interfaces: a temp dir that behaves like configfs-tsm
// or Gramine's /dev/attestation (files that answer writes, as the kernel or Gramine do), and a unix-socket server
// speaking the dstack guest-agent protocol.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { test } from 'node:test'
import { bytesToHex } from '@noble/hashes/utils.js'
import { dstackQuoteProvider, MAX_APP_COMPOSE_CHARS, platformInfoOf, QuoteProviderError, sgxGramineQuoteProvider, tdxQuoteProvider, type QuoteFs } from './hardwareQuotes.ts'
import { measurementOf } from './measurement.ts'
import { simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { replayRtmrs, runtimeEvent, runtimeEventDigest, withoutBootPayloads } from './eventLog.ts'
import { bootFacts } from './tdReport.ts'
import { ccelTable } from '../../test/ccelTable.ts'

const td = simulatedQuoteProvider({ measurement: simulatedMeasurement('hardware-test') })
const reportData = new Uint8Array(64).map((_, i) => i + 1)
const tempDir = () => fsp.mkdtemp(join(tmpdir(), 'km-tee-'))

/** configfs-tsm in a temp dir: mkdir makes `generation`; writing `inblob` makes `outblob` and bumps `generation`. */
function configfsStandIn(quoteFor: (inblob: Uint8Array) => Promise<Uint8Array>, options: { extraBump?: boolean } = {}): QuoteFs {
  return {
    ...fsp,
    async mkdir(path, opts) {
      const made = await fsp.mkdir(path, opts)
      await fsp.writeFile(join(String(path), 'generation'), '0\n')
      return made
    },
    async writeFile(path, data, opts) {
      await fsp.writeFile(path, data, opts)
      if (basename(String(path)) !== 'inblob') return
      const entry = dirname(String(path))
      await fsp.writeFile(join(entry, 'outblob'), await quoteFor(new Uint8Array(data as Uint8Array)))
      const generation = Number(await fsp.readFile(join(entry, 'generation'), 'utf8'))
      await fsp.writeFile(join(entry, 'generation'), `${generation + (options.extraBump ? 2 : 1)}\n`)
    },
    async rmdir(path) {
      await fsp.rm(path, { recursive: true })
    },
  } as QuoteFs
}

test('default: tdx asks configfs-tsm for a quote over exactly the report data and removes its entry', async () => {
  const dir = await tempDir()
  const quote = await tdxQuoteProvider({ tsmDir: dir, fs: configfsStandIn((data) => td.getQuote(data)) }).getQuote(reportData)
  assert.deepEqual(measurementOf(quote).reportData, reportData)
  assert.deepEqual(await fsp.readdir(dir), [], 'the report entry is removed')
})

test('error: tdx without configfs-tsm, with a lying or concurrently written entry', async () => {
  await assert.rejects(tdxQuoteProvider({ tsmDir: '/nonexistent/tsm/report' }).getQuote(reportData), {
    name: 'QuoteProviderError',
    message: 'quote provider tdx: /nonexistent/tsm/report does not exist (not a TDX guest, or configfs-tsm is not mounted)',
  })
  const lying = configfsStandIn(() => td.getQuote(new Uint8Array(64).fill(9)))
  await assert.rejects(tdxQuoteProvider({ tsmDir: await tempDir(), fs: lying }).getQuote(reportData), /returned a quote over other report data/)
  const garbage = configfsStandIn(async () => new Uint8Array(100))
  await assert.rejects(tdxQuoteProvider({ tsmDir: await tempDir(), fs: garbage }).getQuote(reportData), /returned no valid quote/)
  const raced = configfsStandIn((data) => td.getQuote(data), { extraBump: true })
  await assert.rejects(tdxQuoteProvider({ tsmDir: await tempDir(), fs: raced }).getQuote(reportData), /written concurrently/)
  await assert.rejects(tdxQuoteProvider({ tsmDir: await tempDir() }).getQuote(new Uint8Array(32)), RangeError)
})

// The Intel-signed SGX fixture with its report data replaced: the provider fetches, it does not verify.
const sgxFixture = new Uint8Array(readFileSync(new URL('../../test/fixtures/dcap/sgx_quote', import.meta.url)))
function sgxQuoteOver(data: Uint8Array): Uint8Array {
  const quote = Uint8Array.from(sgxFixture)
  quote.set(data, 368)
  return quote
}

/** Gramine's /dev/attestation in a temp dir: writing `user_report_data` makes `quote`. */
async function gramineStandIn(type = 'dcap', quoteFor = sgxQuoteOver): Promise<{ dir: string; fs: QuoteFs }> {
  const dir = await tempDir()
  await fsp.writeFile(join(dir, 'attestation_type'), type)
  const fs = {
    ...fsp,
    async writeFile(path, data, opts) {
      await fsp.writeFile(path, data, opts)
      if (basename(String(path)) === 'user_report_data') await fsp.writeFile(join(dir, 'quote'), quoteFor(new Uint8Array(data as Uint8Array)))
    },
  } as QuoteFs
  return { dir, fs }
}

test('default: sgx-gramine writes user_report_data and reads the quote, one at a time', async () => {
  const { dir, fs } = await gramineStandIn()
  const provider = sgxGramineQuoteProvider({ attestationDir: dir, fs })
  const other = new Uint8Array(64).fill(5)
  const [a, b] = await Promise.all([provider.getQuote(reportData), provider.getQuote(other)])
  assert.deepEqual(measurementOf(a).reportData, reportData)
  assert.deepEqual(measurementOf(b).reportData, other)
  assert.equal(provider.teeType, 'sgx')
})

test('error: sgx-gramine outside Gramine, with EPID, or with a quote over other data', async () => {
  await assert.rejects(sgxGramineQuoteProvider({ attestationDir: await tempDir() }).getQuote(reportData), {
    message: /attestation_type is missing \(not inside a Gramine SGX enclave\)/,
  })
  const epid = await gramineStandIn('epid')
  await assert.rejects(sgxGramineQuoteProvider({ attestationDir: epid.dir, fs: epid.fs }).getQuote(reportData), /DCAP is required/)
  const stale = await gramineStandIn('dcap', () => sgxFixture)
  await assert.rejects(sgxGramineQuoteProvider({ attestationDir: stale.dir, fs: stale.fs }).getQuote(reportData), /over other report data/)
})

/** A unix-socket server speaking the dstack guest-agent GetQuote protocol. */
async function dstackAgent(answer: (reportDataHex: string) => Promise<unknown>): Promise<{ path: string; close: () => void }> {
  const path = join(await tempDir(), 'dstack.sock')
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { report_data: string }
    const payload = JSON.stringify(await answer(body.report_data))
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload)
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return { path, close: () => server.close() }
}

test('default: dstack gets the quote from the guest agent over its socket', async () => {
  const agent = await dstackAgent(async (hex) => ({ quote: bytesToHex(await td.getQuote(Buffer.from(hex, 'hex'))), event_log: '[]' }))
  try {
    const quote = await dstackQuoteProvider({ socketPath: agent.path }).getQuote(reportData)
    assert.deepEqual(measurementOf(quote).reportData, reportData)
  } finally {
    agent.close()
  }
})

test('error: dstack without an agent, with an agent error, with a quote over other data', async () => {
  await assert.rejects(dstackQuoteProvider({ socketPath: '/nonexistent/dstack.sock' }).getQuote(reportData), {
    message: 'quote provider dstack: /nonexistent/dstack.sock: no dstack guest agent listens there (not a dstack CVM, or the socket is not mounted)',
  })
  const failing = await dstackAgent(async () => ({ error: 'quote generation failed' }))
  const lying = await dstackAgent(async () => ({ quote: bytesToHex(await td.getQuote(new Uint8Array(64))) }))
  const empty = await dstackAgent(async () => ({ quote: 'zz' }))
  try {
    await assert.rejects(dstackQuoteProvider({ socketPath: failing.path }).getQuote(reportData), { message: 'quote provider dstack: /GetQuote failed: quote generation failed' })
    await assert.rejects(dstackQuoteProvider({ socketPath: lying.path }).getQuote(reportData), QuoteProviderError)
    await assert.rejects(dstackQuoteProvider({ socketPath: empty.path }).getQuote(reportData), /without a hex quote/)
  } finally {
    failing.close()
    lying.close()
    empty.close()
  }
})

/**
 * A TDX guest in temp files around a simulated TD: configfs-tsm for quotes, the CCEL table of the TD's boot log, and
 * the kernel's `rtmr3:sha384` file, which (like the kernel) extends RTMR3 by the 48 bytes written. The stand-in
 * learns which event that was from the last line of the runtime log and replays it on the simulated TD.
 */
async function tdxGuest(options: { failExtend?: boolean } = {}) {
  const label = 'tdx-guest'
  const guest = simulatedQuoteProvider({ measurement: simulatedMeasurement(label), bootEventLog: simulatedBootEventLog(label) })
  const dir = await tempDir()
  const paths = { tsmDir: join(dir, 'tsm'), ccelFile: join(dir, 'CCEL'), runtimeEventLog: join(dir, 'run', 'runtime_events.log'), rtmrDir: join(dir, 'measurements') }
  await fsp.mkdir(paths.tsmDir)
  await fsp.mkdir(paths.rtmrDir)
  await fsp.writeFile(join(paths.rtmrDir, 'rtmr3:sha384'), '')
  const boot = simulatedBootEventLog(label)
  await fsp.writeFile(paths.ccelFile, ccelTable(boot.map((e) => ({ index: e.imr + 1, type: e.event_type, digest: Buffer.from(e.digest, 'hex'), payload: Buffer.from(e.event_payload, 'hex') }))))
  const configfs = configfsStandIn((data) => guest.getQuote(data))
  const fs = {
    ...configfs,
    async writeFile(path, data, opts) {
      if (String(path) !== join(paths.rtmrDir, 'rtmr3:sha384')) return configfs.writeFile(path, data, opts)
      if (options.failExtend) throw Object.assign(new Error('EPERM'), { code: 'EPERM' })
      const last = (await fsp.readFile(paths.runtimeEventLog, 'utf8')).trim().split('\n').at(-1)!
      const { event, payload } = JSON.parse(last) as { event: string; payload: string }
      assert.equal(bytesToHex(data as Uint8Array), bytesToHex(runtimeEventDigest(event, Buffer.from(payload, 'base64'))), 'the kernel gets the event digest')
      await guest.emitEvent!(event, Buffer.from(payload, 'base64'))
    },
  } as QuoteFs
  return { provider: tdxQuoteProvider({ ...paths, fs }), paths, boot }
}

const rtmrsOf = (quote: Uint8Array) => [376, 424, 472, 520].map((o) => bytesToHex(quote.subarray(o, o + 48)))

test('default: tdx evidence is the CCEL boot log and the runtime log, and replays to the quote; emitEvent extends RTMR3', async () => {
  const { provider, paths, boot } = await tdxGuest()
  const before = await provider.quoteWithEvidence!(reportData)
  assert.deepEqual(before.eventLog, boot)
  assert.deepEqual(replayRtmrs(before.eventLog).map(bytesToHex), rtmrsOf(before.quote))
  assert.equal(before.vmConfig, '')

  await provider.emitEvent!('app-started', Buffer.from('v1'))
  await provider.emitEvent!('model', Uint8Array.of(0xde, 0xad))
  assert.equal(await fsp.readFile(paths.runtimeEventLog, 'utf8'), '{"event":"app-started","payload":"djE="}\n{"event":"model","payload":"3q0="}\n')
  const after = await provider.quoteWithEvidence!(reportData)
  assert.deepEqual(after.eventLog.slice(boot.length), [runtimeEvent('app-started', Buffer.from('v1')), runtimeEvent('model', Uint8Array.of(0xde, 0xad))])
  assert.deepEqual(replayRtmrs(after.eventLog).map(bytesToHex), rtmrsOf(after.quote))
  assert.notEqual(rtmrsOf(after.quote)[3], rtmrsOf(before.quote)[3])
  assert.deepEqual(rtmrsOf(after.quote).slice(0, 3), rtmrsOf(before.quote).slice(0, 3))
})

test('error: tdx emitEvent without the measurement interface, or when the kernel refuses, leaves the log as it was', async () => {
  const failing = await tdxGuest({ failExtend: true })
  await failing.provider.emitEvent!('a', new Uint8Array())
    .then(() => assert.fail('extension should fail'))
    .catch((error: Error) => assert.match(error.message, /extending RTMR3 failed \(EPERM\)/))
  assert.equal(await fsp.readFile(failing.paths.runtimeEventLog, 'utf8'), '', 'the appended line is taken back')
  const evidence = await failing.provider.quoteWithEvidence!(reportData)
  assert.deepEqual(replayRtmrs(evidence.eventLog).map(bytesToHex), rtmrsOf(evidence.quote))

  const bare = await tdxGuest()
  await fsp.rm(join(bare.paths.rtmrDir, 'rtmr3:sha384'))
  await assert.rejects(bare.provider.emitEvent!('a', new Uint8Array()), /RTMR3 cannot be extended here: no .*rtmr3:sha384/)
  await fsp.writeFile(bare.paths.ccelFile, new Uint8Array(10))
  await assert.rejects(tdxQuoteProvider({ ...bare.paths, fs: configfsStandIn((d) => td.getQuote(d)) }).quoteWithEvidence!(reportData), /CCEL truncated/)
  await fsp.writeFile(failing.paths.runtimeEventLog, 'garbage\n')
  await assert.rejects(failing.provider.quoteWithEvidence!(reportData), /runtime_events.log: runtime event log line 1 is not JSON/)
})

test('default: dstack evidence is the agent event log with runtime digests filled in; EmitEvent goes to the agent', async () => {
  const label = 'agent'
  const guest = simulatedQuoteProvider({ measurement: simulatedMeasurement(label), bootEventLog: simulatedBootEventLog(label) })
  await guest.emitEvent!('compose-hash', Uint8Array.of(1, 2))
  const emitted: unknown[] = []
  const path = join(await tempDir(), 'dstack.sock')
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, string>
    if (req.url === '/EmitEvent') {
      emitted.push(body)
      return res.writeHead(200, { 'content-length': 0 }).end()
    }
    if (req.url === '/Info') {
      const info = JSON.stringify({ app_id: 'aa', device_id: 'cd'.repeat(32), cloud_vendor: 'Example Cloud', cloud_product: 'tdx-small', tcb_info: JSON.stringify({ mrtd: '', app_compose: '{"name":"cvm"}' }) })
      return res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(info) }).end(info)
    }
    const evidence = await guest.quoteWithEvidence!(Buffer.from(body.report_data!, 'hex'))
    // As dstack's agent answers: boot payloads and runtime digests stripped.
    const stripped = evidence.eventLog.map((e) => (e.imr === 3 ? { ...e, digest: '' } : { ...e, event_payload: '' }))
    const payload = JSON.stringify({ quote: bytesToHex(evidence.quote), event_log: JSON.stringify(stripped), report_data: body.report_data, vm_config: '{"cpu_count":2}' })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload)
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  try {
    const provider = dstackQuoteProvider({ socketPath: path })
    const evidence = await provider.quoteWithEvidence!(reportData)
    assert.deepEqual(replayRtmrs(evidence.eventLog).map(bytesToHex), rtmrsOf(evidence.quote))
    assert.equal(evidence.eventLog.at(-1)!.digest, runtimeEvent('compose-hash', Uint8Array.of(1, 2)).digest)
    assert.equal(evidence.vmConfig, '{"cpu_count":2}')
    await provider.emitEvent!('x', Uint8Array.of(0xab))
    assert.deepEqual(emitted, [{ event: 'x', payload: 'ab' }])
    assert.deepEqual(await provider.platformInfo!(), { deviceId: 'cd'.repeat(32), appCompose: '{"name":"cvm"}', cloudVendor: 'Example Cloud', cloudProduct: 'tdx-small' })
  } finally {
    server.close()
  }
})

test('error: platformInfoOf keeps a field only when it is a bounded string (device id: hex), never failing the answer', () => {
  const empty = { deviceId: '', appCompose: '', cloudVendor: '', cloudProduct: '' }
  assert.deepEqual(platformInfoOf({}), empty)
  assert.deepEqual(platformInfoOf({ device_id: 'not hex', cloud_vendor: 7, cloud_product: null, tcb_info: '{not json' }), empty)
  assert.deepEqual(platformInfoOf({ device_id: 'ABCD', tcb_info: '[]', cloud_vendor: 'x'.repeat(257) }), empty)
  assert.deepEqual(platformInfoOf({ tcb_info: JSON.stringify({ app_compose: 'y'.repeat(MAX_APP_COMPOSE_CHARS + 1) }) }), empty)
  assert.deepEqual(platformInfoOf({ tcb_info: JSON.stringify({ app_compose: { nested: true } }) }), empty)
  assert.equal(platformInfoOf({ tcb_info: JSON.stringify({ app_compose: 'z'.repeat(MAX_APP_COMPOSE_CHARS) }) }).appCompose.length, MAX_APP_COMPOSE_CHARS)
})

test('vectors: a real dstack 0.6.0 agent GetQuote answer: runtime digests filled in, the log replays to all four RTMRs of its quote; Info facts read from it', async () => {
  const fixture = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-agent-getquote.json', import.meta.url), 'utf8')) as Record<string, string>
  // As the agent sends it: every runtime (RTMR3) digest empty, which is why the SDK's replayRtmrs() cannot reproduce
  // RTMR3 from dstack's own answer (docs/protocol.md#dstack-api).
  const raw = JSON.parse(fixture.event_log!) as { imr: number; digest: string; event: string; event_payload: string }[]
  assert.ok(raw.filter((e) => e.imr === 3).length > 0 && raw.filter((e) => e.imr === 3).every((e) => e.digest === ''))
  const agent = await dstackAgent(async (hex) => {
    assert.equal(hex, fixture.report_data)
    return { quote: fixture.quote, event_log: fixture.event_log, report_data: fixture.report_data, vm_config: fixture.vm_config }
  })
  try {
    const evidence = await dstackQuoteProvider({ socketPath: agent.path }).quoteWithEvidence!(Buffer.from(fixture.report_data!, 'hex'))
    assert.equal(evidence.eventLog.length, raw.length)
    assert.deepEqual(replayRtmrs(evidence.eventLog).map(bytesToHex), rtmrsOf(evidence.quote), 'RTMR0-3 of the quote')
    assert.equal(evidence.vmConfig, fixture.vm_config)
    // The facts Info derives (src/tee/tdReport.ts) are the payloads of dstack's own boot events.
    const facts = bootFacts(evidence.eventLog)
    const payload = (name: string) => raw.find((e) => e.imr === 3 && e.event === name)!.event_payload
    assert.equal(bytesToHex(facts.composeHash), payload('compose-hash'))
    assert.equal(bytesToHex(facts.instanceId), payload('instance-id'))
    assert.equal(bytesToHex(facts.osImageHash), payload('os-image-hash'))
    // Our GetQuote form keeps dstack's field set and entry shape.
    for (const entry of withoutBootPayloads(evidence.eventLog)) assert.deepEqual(Object.keys(entry), ['imr', 'event_type', 'digest', 'event', 'event_payload'])
  } finally {
    agent.close()
  }
})
