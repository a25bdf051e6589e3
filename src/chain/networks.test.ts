// Network presets (docs/protocol.md#command-line `init --network`) against the light client's chain configs, which cite
// their public sources: the same genesis times, and Osaka at the first second of the Fulu epoch.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { LIGHT_CLIENT_CHAINS } from './lightClient/chains.ts'
import { isNetworkName, NETWORKS, networkOfChainId } from './networks.ts'

describe('network presets', () => {
  test('default: genesis times and Fulu epochs are the light client chains\', Osaka at genesis + epoch × 384 s', () => {
    for (const name of ['mainnet', 'sepolia', 'hoodi'] as const) {
      const chain = LIGHT_CLIENT_CHAINS[name]
      const preset = NETWORKS[name]
      assert.equal(preset.beaconGenesisTime, chain.genesisTime, name)
      assert.equal(preset.fuluForkEpoch, chain.config.FULU_FORK_EPOCH, name)
      assert.equal(preset.osakaTime, chain.genesisTime + Number(chain.config.FULU_FORK_EPOCH) * 32 * Number(chain.config.SECONDS_PER_SLOT), name)
    }
  })

  test('default: the Osaka dates are the public Fusaka dates', () => {
    const day = (name: 'mainnet' | 'sepolia' | 'hoodi') => new Date(NETWORKS[name].osakaTime * 1000).toISOString().slice(0, 10)
    assert.deepEqual([day('sepolia'), day('hoodi'), day('mainnet')], ['2025-10-14', '2025-10-28', '2025-12-03'])
  })

  test('default: chain ids, and lookups by chain id and name', () => {
    assert.deepEqual(
      Object.values(NETWORKS).map((n) => [n.name, n.chainId]),
      [
        ['mainnet', 1],
        ['sepolia', 11155111],
        ['hoodi', 560048],
        ['devnet', 31337],
      ],
    )
    assert.equal(networkOfChainId(560048)?.name, 'hoodi')
    assert.equal(networkOfChainId(5), undefined)
    assert.ok(isNetworkName('sepolia') && !isNetworkName('goerli') && !isNetworkName('toString'))
  })
})
