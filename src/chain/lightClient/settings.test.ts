import assert from 'node:assert/strict'
import { test } from 'node:test'
import { chainOfSettings, LIGHT_CLIENT_CHAINS } from './chains.ts'
import { lightClientSettingsSchema } from './settings.ts'

const root = `0x${'AB'.repeat(32)}`

test('default: a public network, and a devnet with its spec', () => {
  const mainnet = lightClientSettingsSchema.parse({ network: 'mainnet', checkpointRoot: root })
  assert.equal(mainnet.checkpointRoot, root.toLowerCase())
  assert.equal(chainOfSettings(mainnet), LIGHT_CLIENT_CHAINS.mainnet)
  const devnet = lightClientSettingsSchema.parse({
    network: 'devnet',
    checkpointRoot: root,
    devnet: { genesisTime: 1, genesisValidatorsRoot: root, electraForkEpoch: 0, fuluForkEpoch: null },
    optimisticConfirmations: 2,
  })
  assert.equal(chainOfSettings(devnet).devnet, true)
  assert.equal(devnet.optimisticConfirmations, 2)
})

test('error: devnet-only settings on a public network, a devnet without its spec, bad roots, unknown keys', () => {
  const bad = [
    [{ network: 'mainnet', checkpointRoot: root, optimisticConfirmations: 1 }, /devnet-only/],
    [{ network: 'sepolia', checkpointRoot: root, devnet: { genesisTime: 1, genesisValidatorsRoot: root, electraForkEpoch: 0, fuluForkEpoch: 0 } }, /devnet chain spec on network "sepolia"/],
    [{ network: 'devnet', checkpointRoot: root }, /needs its devnet chain spec/],
    [{ network: 'mainnet', checkpointRoot: '0x12' }, /checkpointRoot: expected 0x and 64 hex digits/],
    [{ network: 'holesky', checkpointRoot: root }, /network/],
    [{ network: 'mainnet', checkpointRoot: root, beaconUrl: 'http://x' }, /beaconUrl/],
  ] as const
  for (const [value, message] of bad) {
    const result = lightClientSettingsSchema.safeParse(value)
    assert.equal(result.success, false, JSON.stringify(value))
    assert.match((result.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), message)
  }
})
