// Network presets (docs/protocol.md#command-line `init --network`): the execution chain id, the Osaka (Fusaka)
// activation time that decides the blob sidecar version when an RPC does not answer eth_config
// (docs/protocol.md#blob-transactions), and the beacon chain's genesis time, which a beacon node the host names must
// report (`/eth/v1/beacon/genesis`, checked with its `DEPOSIT_CHAIN_ID` by src/chain/beacon.ts).
//
// Osaka times are the first second of the Fulu fork epoch: genesis_time + epoch × 32 slots × 12 s, with the epochs
// of src/chain/lightClient/chains.ts (mainnet 411392, Sepolia 272640, Hoodi 50688) and the genesis times of
// @lodestar/config/networks (mainnet 1606824023, Sepolia 1655733600, Hoodi 1742213400). The test recomputes them.
// These are liveness facts only: a wrong value gets blob txs refused by the mempool or a beacon node refused, never a
// secret released, so they live in host settings, not measured ones.

export type NetworkName = 'mainnet' | 'sepolia' | 'hoodi' | 'devnet'

export type NetworkPreset = {
  name: NetworkName
  chainId: number
  /** Unix seconds Osaka activated (0: from genesis). */
  osakaTime: number
  /** The beacon chain's genesis time; undefined for the devnet (its beacon simulator starts with anvil). */
  beaconGenesisTime: number | undefined
  /** Fulu fork epoch (the Osaka time's epoch on the beacon chain). */
  fuluForkEpoch: number | undefined
}

const SECONDS_PER_EPOCH = 32 * 12

function live(name: NetworkName, chainId: number, beaconGenesisTime: number, fuluForkEpoch: number): NetworkPreset {
  return { name, chainId, osakaTime: beaconGenesisTime + fuluForkEpoch * SECONDS_PER_EPOCH, beaconGenesisTime, fuluForkEpoch }
}

export const NETWORKS: Readonly<Record<NetworkName, NetworkPreset>> = Object.freeze({
  mainnet: live('mainnet', 1, 1606824023, 411392),
  sepolia: live('sepolia', 11155111, 1655733600, 272640),
  hoodi: live('hoodi', 560048, 1742213400, 50688),
  // anvil (src/devnet/anvil.ts) runs Osaka from genesis.
  devnet: { name: 'devnet', chainId: 31337, osakaTime: 0, beaconGenesisTime: undefined, fuluForkEpoch: undefined },
})

export const NETWORK_NAMES = Object.keys(NETWORKS) as NetworkName[]

export function isNetworkName(value: string): value is NetworkName {
  return Object.hasOwn(NETWORKS, value)
}

/** The preset of a chain id, if it is one of ours. */
export function networkOfChainId(chainId: number): NetworkPreset | undefined {
  return Object.values(NETWORKS).find((n) => n.chainId === chainId)
}
