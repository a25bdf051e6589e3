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
import { dstackQuoteProvider, QuoteProviderError, sgxGramineQuoteProvider, tdxQuoteProvider, type QuoteFs } from './hardwareQuotes.ts'
import { measurementOf } from './measurement.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'

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
