// `keymanager init` (docs/protocol.md#command-line): the files it writes load with the loaders `serve` uses, for every
// network preset, comments included.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { NETWORKS } from '../chain/networks.ts'
import { loadBakedMeasuredSettings, loadHostSettings } from '../config.ts'
import { UsageError } from './args.ts'
import { runInit } from './init.ts'

const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3'

describe('keymanager init', () => {
  for (const preset of Object.values(NETWORKS)) {
    test(`default: ${preset.name}: measured.json and host.json load as serve loads them`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'km-init-'))
      const lines: string[] = []
      assert.equal(await runInit(['--network', preset.name, '--registry', REGISTRY, '--from-block', '123', '--dir', dir], (l) => lines.push(l)), 0)
      const measured = loadBakedMeasuredSettings(join(dir, 'measured.json'))
      assert.deepEqual(measured.chain, { chainId: preset.chainId, registry: REGISTRY.toLowerCase() })
      assert.deepEqual([measured.quote, measured.seal], [{ provider: 'dstack' }, { provider: 'dstack' }])
      const host = loadHostSettings(join(dir, 'host.json'))
      assert.equal(host.chain.fromBlock, 123)
      assert.equal(host.chain.maxLogRange, 1000)
      assert.equal(host.blobs.kind, preset.name === 'devnet' ? 'anvil' : 'beacon')
      assert.equal(host.dataDir, join(dir, 'data'))
      // Commented for people: every security setting says what it is.
      const text = readFileSync(join(dir, 'measured.json'), 'utf8')
      assert.match(text, /^ {2}\/\/ Measured settings \(docs\/protocol\.md#measured-settings\) for /m)
      assert.match(readFileSync(join(dir, 'host.json'), 'utf8'), /\/\/ Fee caps in wei/)
      assert.equal(statSync(join(dir, 'host.token')).mode & 0o777, 0o600)
      assert.ok(lines.some((l) => l.includes('bake it into the image')))
    })
  }

  test('default: the quote provider picks its seal; tdx seals nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'km-init-'))
    await runInit(['--network', 'hoodi', '--registry', REGISTRY, '--quote', 'tdx', '--dir', dir], () => {})
    assert.deepEqual(loadBakedMeasuredSettings(join(dir, 'measured.json')).seal, { provider: 'none' })
  })

  test('error: bad flags and existing files are refused with a one-line reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'km-init-'))
    const refuses = (argv: string[], pattern: RegExp) => assert.rejects(runInit(argv, () => {}), (e: Error) => e instanceof UsageError && pattern.test(e.message))
    await refuses(['--network', 'goerli', '--registry', REGISTRY], /^--network must be one of mainnet, sepolia, hoodi, devnet/)
    await refuses(['--network', 'mainnet', '--registry', '0x1234'], /^--registry must be a 0x address/)
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--rpc', 'ftp://x'], /^--rpc must be an http\(s\) URL$/)
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--quote', 'sev'], /^--quote must be dstack, tdx or sgx-gramine$/)
    await runInit(['--network', 'mainnet', '--registry', REGISTRY, '--dir', dir], () => {})
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--dir', dir], /measured\.json exists; give --force to overwrite it$/)
    assert.equal(await runInit(['--network', 'sepolia', '--registry', REGISTRY, '--dir', dir, '--force'], () => {}), 0)
    assert.equal(loadBakedMeasuredSettings(join(dir, 'measured.json')).chain.chainId, 11155111)
  })
})
