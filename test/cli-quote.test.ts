// `keymanager quote verify|measure` in-process (runQuote) and as a child process (bin/keymanager.js).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { quoteVerifierFromOptions, runQuote } from '../src/cli/quote.ts'
import { loadHostSettings } from '../src/config.ts'
import { loadDevnetMeasuredSettings } from '../src/devnet/settings.ts'
import { INTEL_SGX_ROOT_CA_DER } from '../src/tee/dcap.ts'
import { serveDevnetPccs, type DevnetPccs } from '../src/devnet/pccs.ts'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'

const fixture = (name: string) => fileURLToPath(new URL(`fixtures/dcap/${name}`, import.meta.url))
const BIN = fileURLToPath(new URL('../bin/keymanager.js', import.meta.url))
const NOW = '1751328000'
const tdxQuote = readFileSync(fixture('tdx_quote'))
const dir = mkdtempSync(join(tmpdir(), 'km-cli-quote-'))
const file = (name: string, content: string | Uint8Array) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}
const flipped = Buffer.from(tdxQuote)
flipped[600]! ^= 1
const flippedFile = file('flipped', flipped)

async function run(...argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runQuote(argv, (l) => out.push(l), (l) => err.push(l))
  return { code, out, err }
}

const EXPECTED_KEYS = ['teeType', 'status', 'advisoryIds', 'fmspc', 'measurements', 'measurementId', 'reportData']

test('default: verify --json on the Intel TDX fixture at a pinned now', async () => {
  const { code, out, err } = await run('verify', fixture('tdx_quote'), '--collateral', fixture('tdx_quote_collateral.json'), '--now', NOW, '--json')
  assert.equal(code, 0, err.join('\n'))
  assert.deepEqual(err, [])
  const json = JSON.parse(out.join('\n'))
  assert.deepEqual(Object.keys(json), EXPECTED_KEYS)
  assert.equal(json.teeType, 'tdx')
  assert.equal(json.status, 'UpToDate')
  assert.deepEqual(json.advisoryIds, [])
  assert.equal(json.fmspc, '0xb0c06f000000')
  assert.equal(json.measurementId, '0x8ee35132f2012859433fa8ab8a6b4515e0d1daaaa547214345f46bc18e0a8437')
  assert.ok(json.measurements.mrTd.startsWith('0x91eb2b44d141d4ec'))
  assert.match(json.reportData, /^0x[0-9a-f]{128}$/)
})

test('default: the SGX fixture, a hex quote file, and output for people', async () => {
  const sgx = await run('verify', fixture('sgx_quote'), '--collateral', fixture('sgx_quote_collateral.json'), '--now', NOW, '--json')
  assert.equal(sgx.code, 0, sgx.err.join('\n'))
  const json = JSON.parse(sgx.out.join('\n'))
  assert.equal(json.status, 'ConfigurationAndSWHardeningNeeded')
  assert.deepEqual(json.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615'])
  assert.equal(json.fmspc, '0x00a067110000')

  const hexFile = file('tdx_quote.hex', `0x${tdxQuote.toString('hex').replace(/.{64}/g, '$&\n')}\n`)
  const human = await run('verify', hexFile, '--collateral', fixture('tdx_quote_collateral.json'), '--now', NOW)
  assert.equal(human.code, 0, human.err.join('\n'))
  assert.equal(human.out[0], '✓ quote verified: TDX, TCB status UpToDate')
  assert.ok(human.out.some((l) => /^ {2}fmspc +b0c06f000000$/.test(l)), human.out.join('\n'))
  assert.ok(human.out.some((l) => /^ {2}measurement id +0x8ee35132/.test(l)))
  assert.ok(human.out.some((l) => /collateral +file .*tdx_quote_collateral\.json, issued 2025-06-19T10:00:35Z$/.test(l)))
})

test('error: a flipped byte, expired collateral, mismatched collateral: exit 1 and one line with the reason', async () => {
  const cases: [string[], string][] = [
    [[flippedFile, '--collateral', fixture('tdx_quote_collateral.json'), '--now', NOW], 'keymanager quote: verification failed: bad_signature: ISV enclave report signature is invalid'],
    [[fixture('tdx_quote'), '--collateral', fixture('tdx_quote_collateral.json')], 'keymanager quote: verification failed: collateral_expired: TCB info expired at 2025-07-19T10:16:03Z'],
    [[fixture('tdx_quote'), '--collateral', fixture('sgx_quote_collateral.json'), '--now', NOW], 'keymanager quote: verification failed: collateral_mismatch: TDX quote with TCB info "SGX", expected "TDX"'],
    [[file('garbage', 'not a quote '.repeat(20)), '--collateral', fixture('tdx_quote_collateral.json'), '--now', NOW], /^keymanager quote: verification failed: unsupported_quote: /],
  ] as never
  for (const [args, expected] of cases) {
    const { code, out, err } = await run('verify', ...args)
    assert.equal(code, 1, args.join(' '))
    assert.deepEqual(out, [])
    assert.equal(err.length, 1)
    if (typeof expected === 'string') assert.equal(err[0], expected)
    else assert.match(err[0]!, expected)
  }
  const json = await run('verify', flippedFile, '--collateral', fixture('tdx_quote_collateral.json'), '--now', NOW, '--json')
  assert.equal(json.code, 1)
  assert.deepEqual(JSON.parse(json.out.join('')), { error: { reason: 'bad_signature', message: 'ISV enclave report signature is invalid' } })
})

test('error: bad flags and unreadable files exit 2 with one line', async () => {
  const notACert = file('not-a-cert.pem', 'hello')
  const cases: [string[], string | RegExp][] = [
    [[], /^keymanager quote: quote needs a command: keymanager quote verify FILE/],
    [['check', 'x'], "keymanager quote: unknown quote command 'check' (verify or measure)"],
    [['verify'], 'keymanager quote: quote verify takes one FILE, got 0'],
    [['verify', 'a', 'b'], 'keymanager quote: quote verify takes one FILE, got 2'],
    [['verify', fixture('tdx_quote'), '--colateral', 'x'], /^keymanager quote: Unknown option '--colateral'/],
    [['verify', fixture('tdx_quote'), '--now', 'yesterday'], "keymanager quote: --now must be unix seconds, got 'yesterday'"],
    [['verify', fixture('tdx_quote'), '--now', '-5'], /^keymanager quote: /],
    [['verify', join(dir, 'missing'), '--collateral', fixture('tdx_quote_collateral.json')], `keymanager quote: ${join(dir, 'missing')}: ENOENT`],
    [['verify', fixture('tdx_quote'), '--collateral', join(dir, 'missing.json')], `keymanager quote: --collateral ${join(dir, 'missing.json')}: ENOENT`],
    [['verify', fixture('tdx_quote'), '--collateral', fixture('tdx_quote_collateral.json'), '--pccs', 'http://x'], 'keymanager quote: give --collateral or --pccs, not both'],
    [['verify', fixture('tdx_quote'), '--pccs', 'ftp://x'], "keymanager quote: --pccs must be an http(s) URL, got 'ftp://x'"],
    [['verify', fixture('tdx_quote'), '--collateral', fixture('tdx_quote_collateral.json'), '--root-ca', notACert], `keymanager quote: root CA file ${notACert}: not a PEM or DER certificate`],
    [['verify', file('empty', ''), '--collateral', fixture('tdx_quote_collateral.json')], `keymanager quote: ${join(dir, 'empty')}: empty file`],
    [['measure'], 'keymanager quote: quote measure takes one FILE, got 0'],
  ]
  for (const [args, expected] of cases) {
    const { code, out, err } = await run(...args)
    assert.equal(code, 2, `${args.join(' ')}: ${err.join('\n')}`)
    assert.deepEqual(out, [])
    assert.equal(err.length, 1, args.join(' '))
    if (typeof expected === 'string') assert.equal(err[0], expected)
    else assert.match(err[0]!, expected)
  }
})

test('default: measure prints the measurement id, and its fields with --json', async () => {
  const plain = await run('measure', fixture('tdx_quote'))
  assert.equal(plain.code, 0)
  assert.deepEqual(plain.out, ['0x8ee35132f2012859433fa8ab8a6b4515e0d1daaaa547214345f46bc18e0a8437'])
  const json = await run('measure', fixture('sgx_quote'), '--json')
  const m = measurementOf(new Uint8Array(readFileSync(fixture('sgx_quote'))))
  assert.deepEqual(JSON.parse(json.out.join('\n')), {
    teeType: 'sgx',
    version: 3,
    measurementId: m.measurementId,
    measurementRaw: m.measurementRaw,
    measurements: m.measurements,
    reportData: `0x${Buffer.from(m.reportData).toString('hex')}`,
  })
  // measure does not verify: a flipped signature byte still has the same measurement.
  assert.deepEqual((await run('measure', flippedFile)).out, plain.out)
  const bad = await run('measure', file('short', Buffer.alloc(10, 1)))
  assert.equal(bad.code, 1)
  assert.deepEqual(bad.err, ['keymanager quote: malformed_quote: quote is 10 bytes, shorter than its 48-byte header'])
})

describe('devnet quotes', () => {
  const pki = createDevnetPki()
  let pccs: DevnetPccs
  let quoteFile: string
  let rootFile: string
  let collateralFile: string
  before(async () => {
    pccs = await serveDevnetPccs(pki)
    const quote = await simulatedQuoteProvider({ platform: pki.mintPlatform({ tcbStatus: 'OutOfDate' }), measurement: simulatedMeasurement('cli') }).getQuote(new Uint8Array(64).fill(1))
    quoteFile = file('devnet.quote', quote)
    rootFile = file('devnet-root.pem', pki.rootCaPem)
    collateralFile = file('devnet-collateral.json', JSON.stringify(pki.collateral()))
  })
  after(() => pccs.close())

  test('default: with --root-ca the devnet root is trusted, with a warning; collateral from a file or a PCCS', async () => {
    const fromFile = await run('verify', quoteFile, '--collateral', collateralFile, '--root-ca', rootFile, '--json')
    assert.equal(fromFile.code, 0, fromFile.err.join('\n'))
    assert.equal(JSON.parse(fromFile.out.join('\n')).status, 'OutOfDate')
    assert.equal(fromFile.err.length, 1)
    assert.match(fromFile.err[0]!, /^warning: TRUSTING A ROOT CA THAT IS NOT INTEL'S: quotes under "CN=Devnet SGX Root CA, O=keymanager devnet" \(sha256 [0-9a-f]{16}…\) are accepted \(devnets only\)$/)
    const fromPccs = await run('verify', quoteFile, '--pccs', pccs.url, '--root-ca', rootFile)
    assert.equal(fromPccs.code, 0, fromPccs.err.join('\n'))
    assert.equal(fromPccs.out[0], '✓ quote verified: TDX, TCB status OutOfDate')
    assert.equal(fromPccs.err[1], `fetching collateral from ${pccs.url} …`)
  })

  test('error: without --root-ca (Intel only) a devnet quote is untrusted', async () => {
    const { code, err } = await run('verify', quoteFile, '--collateral', collateralFile)
    assert.equal(code, 1)
    assert.deepEqual(err, ['keymanager quote: verification failed: untrusted_root: PCK certificate chain ends at "Devnet SGX Root CA", not a trusted root CA'])
  })
})

describe('as a child process', () => {
  const exec = promisify(execFile)
  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { cwd: fileURLToPath(new URL('..', import.meta.url)) })
      return { code: 0, stdout, stderr }
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }

  test('default: keymanager quote verify … --json', async () => {
    const { code, stdout, stderr } = await cli('quote', 'verify', 'test/fixtures/dcap/tdx_quote', '--collateral', 'test/fixtures/dcap/tdx_quote_collateral.json', '--now', NOW, '--json')
    assert.equal(code, 0, stderr)
    const json = JSON.parse(stdout)
    assert.equal(json.status, 'UpToDate')
    assert.equal(json.fmspc, '0xb0c06f000000')
    assert.equal(stderr, '')
  })

  test('error: a flipped byte exits 1, bad flags exit 2, each with one line', async () => {
    const failed = await cli('quote', 'verify', flippedFile, '--collateral', 'test/fixtures/dcap/tdx_quote_collateral.json', '--now', NOW)
    assert.equal(failed.code, 1)
    assert.equal(failed.stdout, '')
    assert.equal(failed.stderr, 'keymanager quote: verification failed: bad_signature: ISV enclave report signature is invalid\n')
    const usage = await cli('quote', 'verify', 'test/fixtures/dcap/tdx_quote', '--bogus')
    assert.equal(usage.code, 2)
    assert.equal(usage.stderr.split('\n').filter(Boolean).length, 1, usage.stderr)
    assert.match(usage.stderr, /^keymanager quote: Unknown option '--bogus'/)
  })
})

describe('trust and config', () => {
  const pki = createDevnetPki()
  const rootFile = file('trust-root.pem', pki.rootCaPem)
  const intelFile = file('intel-root.der', INTEL_SGX_ROOT_CA_DER)

  test('default: Intel only unless roots are named; a non-Intel root is reported once, before any verification', async () => {
    const warnings: unknown[][] = []
    const warn = (...args: unknown[]) => void warnings.push(args)
    const intel = quoteVerifierFromOptions({}, warn)
    assert.deepEqual(intel.roots.map((r) => [r.subject, r.intel]), [['CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US', true]])
    assert.equal(intel.collateral, 'PCCS https://api.trustedservices.intel.com')
    assert.equal(quoteVerifierFromOptions({ trustedRootCaFiles: [intelFile] }, warn).roots[0]!.intel, true)
    assert.deepEqual(warnings, [])

    const collateralFile = file('trust-collateral.json', JSON.stringify(pki.collateral()))
    const devnet = quoteVerifierFromOptions({ trustedRootCaFiles: [rootFile, intelFile], collateralFile }, warn)
    assert.equal(warnings.length, 1)
    const [roots, message] = warnings[0] as unknown as [{ subject: string; sha256: string; intel: boolean; file: string }[], string]
    assert.deepEqual(roots, [{ subject: 'CN=Devnet SGX Root CA, O=keymanager devnet', sha256: roots[0]!.sha256, intel: false, file: rootFile }])
    assert.match(roots[0]!.sha256, /^[0-9a-f]{64}$/)
    assert.match(message, /^TRUSTING A ROOT CA THAT IS NOT INTEL'S: /)
    const quote = await simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement('trust') }).getQuote(new Uint8Array(64))
    assert.equal((await devnet.verifier.verify(quote)).status, 'UpToDate')
    assert.equal(warnings.length, 1)
  })

  test('error: trust options that cannot work', () => {
    assert.throws(() => quoteVerifierFromOptions({ pccsUrl: 'http://x', collateralFile: 'y' }), { name: 'TypeError', message: 'give a PCCS URL or a collateral file, not both' })
    assert.throws(() => quoteVerifierFromOptions({ trustedRootCaFiles: [join(dir, 'none.pem')] }), { name: 'TypeError', message: `root CA file ${join(dir, 'none.pem')}: ENOENT` })
    const leaf = file('leaf.pem', pki.mintPlatform().pckChainPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n')
    assert.throws(() => quoteVerifierFromOptions({ trustedRootCaFiles: [leaf] }), { name: 'TypeError', message: `root CA file ${leaf}: not a self-signed CA certificate` })
  })

  const devnetMeasured = (quote: Record<string, unknown>) => ({
    version: 1,
    devnet: true,
    chain: { chainId: 31337, registry: `0x${'11'.repeat(20)}`, verification: 'trusted-rpc' },
    quote: { provider: 'simulated', pckChainFile: 'platform/pck-chain.pem', pckKeyFile: 'platform/pck.key', measurementLabel: 'x', ...quote },
    seal: 'none',
    chainView: {},
  })
  const hostConfig = (collateral: Record<string, unknown>) => ({
    dataDir: 'data',
    chain: { rpcUrl: 'http://127.0.0.1:8545' },
    blobs: { kind: 'anvil', url: 'http://127.0.0.1:8545' },
    pod: { port: 0 },
    host: { port: 0, tokenFile: 'host.token' },
    collateral,
  })

  test('default: trusted roots in devnet measured settings, collateral in the host file, paths relative to each file', () => {
    const { quote } = loadDevnetMeasuredSettings(file('measured.json', JSON.stringify(devnetMeasured({ trustedRootCaFiles: ['pki/root.pem'] }))))
    assert.deepEqual(quote, {
      provider: 'simulated',
      pckChainFile: join(dir, 'platform/pck-chain.pem'),
      pckKeyFile: join(dir, 'platform/pck.key'),
      measurementLabel: 'x',
      trustedRootCaFiles: [join(dir, 'pki/root.pem')],
    })
    assert.equal(loadDevnetMeasuredSettings(file('measured-intel.json', JSON.stringify(devnetMeasured({})))).quote.trustedRootCaFiles, undefined) // Intel only
    assert.deepEqual(loadHostSettings(file('host.json', JSON.stringify(hostConfig({ file: 'collateral.json' })))).collateral, { file: join(dir, 'collateral.json') })
    assert.deepEqual(loadHostSettings(file('host-pccs.json', JSON.stringify(hostConfig({ pccsUrl: 'https://pccs.example:8081' })))).collateral, {
      pccsUrl: 'https://pccs.example:8081',
    })
  })

  test('error: trust and collateral settings that are refused at start', () => {
    const measuredCases: [Record<string, unknown>, RegExp][] = [
      [{ trustedRootCaFiles: [] }, /quote\.trustedRootCaFiles: /],
      [{ attestationKeyFile: 'old.key' }, /quote: Unrecognized key/],
    ]
    for (const [quote, expected] of measuredCases) {
      const path = file('bad-measured.json', JSON.stringify(devnetMeasured(quote)))
      assert.throws(() => loadDevnetMeasuredSettings(path), (e: Error) => expected.test(e.message), JSON.stringify(quote))
    }
    const hostCases: [Record<string, unknown>, RegExp][] = [
      [{ pccsUrl: 'https://p', file: 'c.json' }, /collateral: give collateral\.pccsUrl or collateral\.file, not both/],
      [{ pccsUrl: 'file:///etc/passwd' }, /collateral\.pccsUrl: /],
    ]
    for (const [collateral, expected] of hostCases) {
      const path = file('bad-host.json', JSON.stringify(hostConfig(collateral)))
      assert.throws(() => loadHostSettings(path), (e: Error) => expected.test(e.message), JSON.stringify(collateral))
    }
  })
})
