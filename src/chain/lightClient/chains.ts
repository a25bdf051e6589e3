// The beacon chains the light client can follow (docs/protocol.md#verified-chain-view). A chain is a measured setting: its
// fork schedule, fork versions and genesis validators root decide which signatures verify, so they come from the
// image, never from the beacon node the host points us at.
//
// @lodestar/config 1.28.1 (the newest on the registry here) schedules Electra and Fulu at Infinity on mainnet, Sepolia
// and Hoodi, and knows no fork after Fulu. We keep its base configs (fork versions, genesis data) and set the epochs
// ourselves, each beside its public source. A fork this library cannot verify (Gloas: execution-payload separation,
// new light-client header shape) is recorded as `unsupportedFromEpoch`: headers and signatures at or after it are
// refused by name rather than mis-verified. Even without that guard the client fails closed there: the committee signs
// under the new fork's version, which is not in our config, so every signature check fails.
import { createBeaconConfig, type BeaconConfig, type ChainConfig } from '@lodestar/config'
import { genesisData, hoodiChainConfig, mainnetChainConfig, sepoliaChainConfig } from '@lodestar/config/networks'
import { SLOTS_PER_EPOCH } from '@lodestar/params'
import { hexToBytes, isHex, type Hex } from 'viem'
import type { LightClientSettings } from './settings.ts'

export type LightClientNetwork = 'mainnet' | 'sepolia' | 'hoodi' | 'devnet'

export type LightClientChain = {
  network: LightClientNetwork
  /** A chain whose sync committee is a devnet simulator's keys: logged loudly, never a production trust root. */
  devnet: boolean
  /** Fork schedule and versions on top of lodestar's mainnet preset (frozen at import: 32 slots/epoch, 512 members). */
  config: Partial<ChainConfig>
  genesisTime: number
  genesisValidatorsRoot: Hex
  /** First epoch of a fork this build cannot verify; Infinity while none is scheduled. */
  unsupportedFromEpoch: number
  /** Name of that fork, for the refusal message. */
  unsupportedForkName: string
  /**
   * How the current slot (the spec's `current_slot`, used only to refuse updates signed in the future) is read:
   * `wall`: from the host clock, `genesisTime` and `SECONDS_PER_SLOT`; `none`: no clock, devnet slots count anvil
   * blocks, not seconds (see `currentSlot` in lightClient.ts for why neither choice touches safety).
   */
  slotClock: 'wall' | 'none'
}

// Mainnet: Electra at epoch 364032 (2025-05-07) and Fulu at 411392 (2025-12-03) from ChainSafe/lodestar
// packages/config/src/chainConfig/configs/mainnet.ts (commit 0054395c), which also leaves Gloas unscheduled
// (GLOAS_FORK_EPOCH: Infinity). Genesis (time 1606824023, root 0x4b363db9…) from @lodestar/config/networks.
const MAINNET: LightClientChain = {
  network: 'mainnet',
  devnet: false,
  config: { ...mainnetChainConfig, ELECTRA_FORK_EPOCH: 364032, FULU_FORK_EPOCH: 411392 },
  genesisTime: genesisData.mainnet.genesisTime,
  genesisValidatorsRoot: genesisData.mainnet.genesisValidatorsRoot as Hex,
  unsupportedFromEpoch: Infinity,
  unsupportedForkName: 'gloas',
  slotClock: 'wall',
}

// Sepolia: Electra 222464, Fulu 272640, Gloas 353024 (fork version 0x90000076), from eth-clients/sepolia
// metadata/config.yaml (commit 00d17b43). Fork versions 0x90000069…0x90000075 and genesis (time 1655733600, root
// 0xd8ea171f…) from @lodestar/config/networks, which agree with that file.
const SEPOLIA: LightClientChain = {
  network: 'sepolia',
  devnet: false,
  config: { ...sepoliaChainConfig, ELECTRA_FORK_EPOCH: 222464, FULU_FORK_EPOCH: 272640 },
  genesisTime: genesisData.sepolia.genesisTime,
  genesisValidatorsRoot: genesisData.sepolia.genesisValidatorsRoot as Hex,
  unsupportedFromEpoch: 353024,
  unsupportedForkName: 'gloas',
  slotClock: 'wall',
}

// Hoodi: Electra 2048 and Fulu 50688 from ChainSafe/lodestar packages/config/src/chainConfig/networks/hoodi.ts
// (commit 101bf338; Fulu also in sigp/lighthouse's and other clients' built-in configs), which schedules Gloas at
// 132352 (fork version 0x80000910). Genesis validators root 0x212f13fc… from eth-clients/hoodi
// metadata/genesis_validators_root.txt (commit 7f71638a), genesis time 1742213400 (MIN_GENESIS_TIME 1742212800 +
// GENESIS_DELAY 600), both as in @lodestar/config/networks.
const HOODI: LightClientChain = {
  network: 'hoodi',
  devnet: false,
  config: { ...hoodiChainConfig, ELECTRA_FORK_EPOCH: 2048, FULU_FORK_EPOCH: 50688 },
  genesisTime: genesisData.hoodi.genesisTime,
  genesisValidatorsRoot: genesisData.hoodi.genesisValidatorsRoot as Hex,
  unsupportedFromEpoch: 132352,
  unsupportedForkName: 'gloas',
  slotClock: 'wall',
}

export const LIGHT_CLIENT_CHAINS = Object.freeze({ mainnet: MAINNET, sepolia: SEPOLIA, hoodi: HOODI })

/**
 * A devnet beacon chain (the devnet beacon server's, src/devnet/beaconServer.ts). Plain JSON, so that it can sit in a
 * measured settings file: every number and root a devnet node trusts is in it.
 */
export type DevnetChainSpec = {
  genesisTime: number
  genesisValidatorsRoot: Hex
  /** Epoch Electra starts (forks before it start at 0). */
  electraForkEpoch: number
  /** Epoch Fulu starts; null = never. */
  fuluForkEpoch: number | null
}

/**
 * Devnet fork versions: `fork index ‖ "kmd"`, so that no devnet signature verifies on a public network (whose fork
 * versions end in 0x00, 0x69…0x76 or 0x10 0x09) and the other way round.
 */
export const DEVNET_FORK_VERSIONS = Object.freeze({
  genesis: '0x006b6d64',
  altair: '0x016b6d64',
  bellatrix: '0x026b6d64',
  capella: '0x036b6d64',
  deneb: '0x046b6d64',
  electra: '0x056b6d64',
  fulu: '0x066b6d64',
} as const)

export function devnetChain(spec: DevnetChainSpec): LightClientChain {
  const epoch = (name: string, value: unknown, min = 0) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new TypeError(`devnet chain: ${name} must be an integer ≥ ${min}`)
    return value
  }
  epoch('genesisTime', spec.genesisTime)
  if (!isHex(spec.genesisValidatorsRoot) || hexToBytes(spec.genesisValidatorsRoot).length !== 32) {
    throw new TypeError('devnet chain: genesisValidatorsRoot must be 32 bytes of 0x-hex')
  }
  const electra = epoch('electraForkEpoch', spec.electraForkEpoch)
  const fulu = spec.fuluForkEpoch === null ? Infinity : epoch('fuluForkEpoch', spec.fuluForkEpoch, electra)
  const v = (hex: string) => hexToBytes(hex as Hex)
  return {
    network: 'devnet',
    devnet: true,
    config: {
      ...mainnetChainConfig,
      CONFIG_NAME: 'keymanager-devnet',
      GENESIS_FORK_VERSION: v(DEVNET_FORK_VERSIONS.genesis),
      ALTAIR_FORK_VERSION: v(DEVNET_FORK_VERSIONS.altair),
      ALTAIR_FORK_EPOCH: 0,
      BELLATRIX_FORK_VERSION: v(DEVNET_FORK_VERSIONS.bellatrix),
      BELLATRIX_FORK_EPOCH: 0,
      CAPELLA_FORK_VERSION: v(DEVNET_FORK_VERSIONS.capella),
      CAPELLA_FORK_EPOCH: 0,
      DENEB_FORK_VERSION: v(DEVNET_FORK_VERSIONS.deneb),
      DENEB_FORK_EPOCH: 0,
      ELECTRA_FORK_VERSION: v(DEVNET_FORK_VERSIONS.electra),
      ELECTRA_FORK_EPOCH: electra,
      FULU_FORK_VERSION: v(DEVNET_FORK_VERSIONS.fulu),
      FULU_FORK_EPOCH: fulu,
    },
    genesisTime: spec.genesisTime,
    genesisValidatorsRoot: spec.genesisValidatorsRoot,
    unsupportedFromEpoch: Infinity,
    unsupportedForkName: 'gloas',
    slotClock: 'none',
  }
}

/** The chain a `chain.lightClient.network` setting names; a devnet needs its spec. */
export function lightClientChain(network: LightClientNetwork, devnet?: DevnetChainSpec): LightClientChain {
  if (network === 'devnet') {
    if (!devnet) throw new TypeError('a devnet light-client chain needs its devnet chain spec (genesis, validators root, forks)')
    return devnetChain(devnet)
  }
  const chain = LIGHT_CLIENT_CHAINS[network]
  if (!chain) throw new TypeError(`unknown light-client network ${JSON.stringify(network)} (mainnet, sepolia, hoodi or devnet)`)
  return chain
}

/** The chain a parsed light-client setting (settings.ts) names. */
export function chainOfSettings(settings: LightClientSettings): LightClientChain {
  return lightClientChain(settings.network, settings.devnet)
}

export function beaconConfigOf(chain: LightClientChain): BeaconConfig {
  return createBeaconConfig(chain.config, hexToBytes(chain.genesisValidatorsRoot))
}

export const epochAtSlot = (slot: number) => Math.floor(slot / SLOTS_PER_EPOCH)
