import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadNodeConfig } from './config.ts'

const dir = mkdtempSync(join(tmpdir(), 'km-config-'))
const production = {
  dataDir: 'data',
  chain: { rpcUrl: 'http://127.0.0.1:8545', chainId: 1, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
  blobs: { kind: 'beacon', url: 'http://127.0.0.1:5052' },
  pod: { port: 80, sockets: [{ path: '/var/run/keymanager/app/dstack.sock', pod: 'app' }] },
  host: { port: 8081, tokenFile: 'host.token' },
  quote: { provider: 'tdx', pccsUrl: 'https://pccs.example:8081/sgx/certification/v4' },
  seal: 'dstack',
}

function write(value: unknown): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value))
  return path
}

test('default: a production config loads, relative paths resolved against the file, defaults filled', () => {
  const config = loadNodeConfig(write(production))
  assert.equal(config.dataDir, join(dir, 'data'))
  assert.equal(config.host.tokenFile, join(dir, 'host.token'))
  assert.equal(config.host.host, '127.0.0.1')
  assert.equal(config.devnet, false)
  assert.equal(config.maxReferenceAge, 64)
  for (const quote of [{ provider: 'dstack', socket: '/run/dstack.sock' }, { provider: 'sgx-gramine' }, { provider: 'tdx', collateralFile: 'c.json' }])
    assert.equal(loadNodeConfig(write({ ...production, quote })).quote.provider, quote.provider)
})

test('error: bad values are refused with the field named, in one line', () => {
  const cases: [unknown, RegExp][] = [
    ['{not json', /config .*: .*JSON/],
    [{ ...production, extra: 1 }, /Unrecognized key.*extra/],
    [{ ...production, chain: { ...production.chain, registry: '0x1234' } }, /chain\.registry: chain\.registry: expected 0x and 40 hex digits/],
    [{ ...production, chain: { ...production.chain, chainId: 0 } }, /chain\.chainId/],
    [{ ...production, chain: { ...production.chain, rpcUrl: 'not a url' } }, /chain\.rpcUrl/],
    [{ ...production, host: { port: 70000, tokenFile: 't' } }, /host\.port/],
    [{ ...production, blobs: { kind: 'ipfs', url: 'http://x' } }, /blobs\.kind/],
    [{ ...production, quote: { provider: 'sev' } }, /quote/],
    [{ ...production, quote: { provider: 'tdx', pccsUrl: 'https://p', collateralFile: 'c.json' } }, /quote: give quote\.pccsUrl or quote\.collateralFile, not both/],
    [{ ...production, seal: 'dev-file' }, /seal: seal dev-file is for devnets only/],
    [{ ...production, quote: { provider: 'simulated', pckChainFile: 'a', pckKeyFile: 'b', measurementLabel: 'x' } }, /quote\.provider: quote provider simulated is for devnets only/],
    [{ ...production, pod: { port: 80, sockets: [{ path: '', pod: 'app' }] } }, /pod\.sockets\.0\.path/],
    [{ ...production, maxReferenceAge: 300 }, /maxReferenceAge/],
    [{ ...production, pods: { names: {}, appIds: { app: '0x12' } } }, /pods\.appIds\.app/],
  ]
  for (const [value, expected] of cases) {
    assert.throws(() => loadNodeConfig(write(value)), (error: Error) => {
      assert.match(error.message, expected)
      assert.doesNotMatch(error.message, /\n/)
      return true
    })
  }
  assert.throws(() => loadNodeConfig(join(dir, 'missing.json')), /ENOENT|no such file/)
})

test('error: keymanager serve with a bad config exits 1 with one line, no stack trace', () => {
  const result = spawnSync(process.execPath, ['bin/keymanager.js', 'serve', '--config', write({ ...production, seal: 'dev-file' })], { encoding: 'utf8' })
  assert.equal(result.status, 1)
  assert.match(result.stderr, /^keymanager: config .*seal: seal dev-file is for devnets only.*\n$/)
  const usage = spawnSync(process.execPath, ['bin/keymanager.js', 'serve'], { encoding: 'utf8' })
  assert.equal(usage.status, 2)
  assert.match(usage.stderr, /^keymanager: serve needs --config FILE\n/)
})
