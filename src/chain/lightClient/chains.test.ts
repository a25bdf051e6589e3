import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ForkName } from '@lodestar/params'
import { bytesToHex } from 'viem'
import { beaconConfigOf, DEVNET_FORK_VERSIONS, devnetChain, LIGHT_CLIENT_CHAINS, lightClientChain } from './chains.ts'

const SLOTS_PER_EPOCH = 32

test('mainnet: Electra at epoch 364032, Fulu at 411392, and the known genesis and fork versions', () => {
  const chain = LIGHT_CLIENT_CHAINS.mainnet
  const config = beaconConfigOf(chain)
  assert.equal(chain.config.ELECTRA_FORK_EPOCH, 364032)
  assert.equal(chain.config.FULU_FORK_EPOCH, 411392)
  assert.equal(chain.genesisValidatorsRoot, '0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95')
  assert.equal(chain.genesisTime, 1606824023)
  assert.equal(bytesToHex(config.ELECTRA_FORK_VERSION), '0x05000000')
  assert.equal(bytesToHex(config.FULU_FORK_VERSION), '0x06000000')
  assert.equal(config.getForkName(364032 * SLOTS_PER_EPOCH - 1), ForkName.deneb)
  assert.equal(config.getForkName(364032 * SLOTS_PER_EPOCH), ForkName.electra)
  assert.equal(config.getForkName(411392 * SLOTS_PER_EPOCH), ForkName.fulu)
  assert.equal(chain.unsupportedFromEpoch, Infinity)
  assert.equal(chain.slotClock, 'wall')
  assert.equal(chain.devnet, false)
})

test('sepolia and hoodi: fork epochs, and Gloas as the first fork this build cannot verify', () => {
  const sepolia = beaconConfigOf(LIGHT_CLIENT_CHAINS.sepolia)
  assert.equal(sepolia.getForkName(222464 * SLOTS_PER_EPOCH), ForkName.electra)
  assert.equal(sepolia.getForkName(272640 * SLOTS_PER_EPOCH), ForkName.fulu)
  assert.equal(bytesToHex(sepolia.FULU_FORK_VERSION), '0x90000075')
  assert.equal(LIGHT_CLIENT_CHAINS.sepolia.genesisValidatorsRoot, '0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078')
  assert.equal(LIGHT_CLIENT_CHAINS.sepolia.unsupportedFromEpoch, 353024)
  const hoodi = beaconConfigOf(LIGHT_CLIENT_CHAINS.hoodi)
  assert.equal(hoodi.getForkName(2048 * SLOTS_PER_EPOCH), ForkName.electra)
  assert.equal(hoodi.getForkName(50688 * SLOTS_PER_EPOCH), ForkName.fulu)
  assert.equal(bytesToHex(hoodi.FULU_FORK_VERSION), '0x70000910')
  assert.equal(LIGHT_CLIENT_CHAINS.hoodi.genesisValidatorsRoot, '0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f')
  assert.equal(LIGHT_CLIENT_CHAINS.hoodi.unsupportedFromEpoch, 132352)
})

test('devnet: its own fork versions, the schedule it is given, no wall clock', () => {
  const chain = devnetChain({ genesisTime: 1, genesisValidatorsRoot: `0x${'00'.repeat(32)}`, electraForkEpoch: 0, fuluForkEpoch: 5 })
  const config = beaconConfigOf(chain)
  assert.equal(config.getForkName(0), ForkName.electra)
  assert.equal(config.getForkName(5 * SLOTS_PER_EPOCH), ForkName.fulu)
  assert.equal(bytesToHex(config.FULU_FORK_VERSION), DEVNET_FORK_VERSIONS.fulu)
  assert.equal(chain.devnet, true)
  assert.equal(chain.slotClock, 'none')
  assert.equal(beaconConfigOf(devnetChain({ genesisTime: 1, genesisValidatorsRoot: `0x${'00'.repeat(32)}`, electraForkEpoch: 0, fuluForkEpoch: null })).getForkName(10 ** 9), ForkName.electra)
  const publicVersions = Object.values(LIGHT_CLIENT_CHAINS).flatMap((c) => [c.config.ELECTRA_FORK_VERSION, c.config.FULU_FORK_VERSION].map((v) => bytesToHex(v!)))
  for (const version of Object.values(DEVNET_FORK_VERSIONS)) assert.ok(!publicVersions.includes(version))
})

test('error: unknown network, devnet without its spec, bad devnet values', () => {
  assert.throws(() => lightClientChain('holesky' as never), /unknown light-client network "holesky"/)
  assert.throws(() => lightClientChain('devnet'), /needs its devnet chain spec/)
  assert.throws(() => devnetChain({ genesisTime: 1, genesisValidatorsRoot: '0x12', electraForkEpoch: 0, fuluForkEpoch: 0 }), /genesisValidatorsRoot/)
  assert.throws(() => devnetChain({ genesisTime: 1, genesisValidatorsRoot: `0x${'00'.repeat(32)}`, electraForkEpoch: 3, fuluForkEpoch: 2 }), /fuluForkEpoch must be an integer ≥ 3/)
  assert.equal(lightClientChain('mainnet'), LIGHT_CLIENT_CHAINS.mainnet)
})
