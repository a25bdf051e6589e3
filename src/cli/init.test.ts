// `keymanager init` (docs/protocol.md#command-line): the files it writes load with the loaders `serve` uses, for every
// network preset, comments included.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { NETWORKS } from '../chain/networks.ts'
import { loadBakedMeasuredSettings, loadHostSettings } from '../config.ts'
import { UsageError } from './args.ts'
import { runInit } from './init.ts'

const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const CODE_HASH = '0x' + 'ab'.repeat(32)
const CHECKPOINT = '0x' + 'cd'.repeat(32)
const DEVNET_CHAIN = { genesisTime: 1_700_000_000, genesisValidatorsRoot: '0x' + '11'.repeat(32), electraForkEpoch: 0, fuluForkEpoch: null }

/** The flags every run needs: registry, its code hash, the checkpoint (and the devnet chain spec on the devnet). */
function required(network: string, dir: string): string[] {
  const flags = ['--network', network, '--registry', REGISTRY, '--registry-code-hash', CODE_HASH, '--checkpoint', CHECKPOINT]
  if (network !== 'devnet') return flags
  const spec = join(dir, 'devnet-chain.json')
  writeFileSync(spec, JSON.stringify(DEVNET_CHAIN))
  return [...flags, '--devnet-chain', spec]
}

describe('keymanager init', () => {
  for (const preset of Object.values(NETWORKS)) {
    test(`default: ${preset.name}: measured.json and host.json load as serve loads them`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'km-init-'))
      const lines: string[] = []
      assert.equal(await runInit([...required(preset.name, dir), '--from-block', '123', '--dir', dir], (l) => lines.push(l)), 0)
      const measured = loadBakedMeasuredSettings(join(dir, 'measured.json'))
      assert.deepEqual(measured.chain, { chainId: preset.chainId, registry: REGISTRY.toLowerCase(), verification: 'light-client' })
      // The chain view's trust roots are the ones given, light-client only (chain.verification above).
      assert.equal(measured.chainView.registryCodeHash, CODE_HASH)
      assert.deepEqual(measured.chainView.lightClient, { network: preset.name, checkpointRoot: CHECKPOINT, ...(preset.name === 'devnet' ? { devnet: DEVNET_CHAIN } : {}) })
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
    await runInit([...required('hoodi', dir), '--quote', 'tdx', '--dir', dir], () => {})
    assert.deepEqual(loadBakedMeasuredSettings(join(dir, 'measured.json')).seal, { provider: 'none' })
  })

  test('error: bad flags and existing files are refused with a one-line reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'km-init-'))
    const refuses = (argv: string[], pattern: RegExp) => assert.rejects(runInit(argv, () => {}), (e: Error) => e instanceof UsageError && pattern.test(e.message))
    await refuses(['--network', 'goerli', '--registry', REGISTRY], /^--network must be one of mainnet, sepolia, hoodi, devnet/)
    await refuses(['--network', 'mainnet', '--registry', '0x1234'], /^--registry must be a 0x address/)
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--rpc', 'ftp://x'], /^--rpc must be an http\(s\) URL$/)
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--quote', 'sev'], /^--quote must be dstack, tdx or sgx-gramine$/)
    // The chain view's trust roots have no default.
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--checkpoint', CHECKPOINT, '--dir', dir], /^--registry-code-hash must be 32 bytes of 0x-hex/)
    await refuses(['--network', 'mainnet', '--registry', REGISTRY, '--registry-code-hash', CODE_HASH, '--checkpoint', '0x1234', '--dir', dir], /^--checkpoint must be 32 bytes of 0x-hex/)
    await refuses(['--network', 'devnet', '--registry', REGISTRY, '--registry-code-hash', CODE_HASH, '--checkpoint', CHECKPOINT, '--dir', dir], /^--devnet-chain FILE is needed with --network devnet/)
    await refuses([...required('mainnet', dir), '--devnet-chain', join(dir, 'x.json'), '--dir', dir], /^--devnet-chain is only for --network devnet$/)
    await runInit([...required('mainnet', dir), '--dir', dir], () => {})
    await refuses([...required('mainnet', dir), '--dir', dir], /measured\.json exists; give --force to overwrite it$/)
    assert.equal(await runInit([...required('sepolia', dir), '--dir', dir, '--force'], () => {}), 0)
    assert.equal(loadBakedMeasuredSettings(join(dir, 'measured.json')).chain.chainId, 11155111)
  })
})
