// The light client's state at rest (docs/protocol.md#verified-chain-view, docs/protocol.md#node-state): the finalized header
// and the sync committees it holds, as JSON, sealed by the node's seal provider under a label of its own. Sealing
// gives integrity: the host cannot write a committee or a header of its choosing, it can only keep, drop or roll back
// a blob this enclave sealed (what a rollback can do is said in lightClient.ts). The plaintext is public chain data.
import { ssz, sszTypesFor, type LightClientHeader } from '@lodestar/types'
import type { altair } from '@lodestar/types'
import { bytesToHex, hexToBytes, isHex, type Hex } from 'viem'
import { isLightClientFork, type LightClientFork } from './transport.ts'

/** AES-GCM associated data of the sealed store: a blob sealed for anything else does not unseal here. */
export const LIGHT_CLIENT_STORE_SEAL_LABEL = 'keymanager.light-client-store.v1'
const FORMAT = 'keymanager.light-client-store.v1'
const MAX_COMMITTEES = 4

export type SealedLightClientStore = {
  network: string
  genesisValidatorsRoot: Hex
  checkpointRoot: Hex
  finalized: { fork: LightClientFork; header: LightClientHeader }
  /** Ascending by period. */
  committees: { period: number; committee: altair.SyncCommittee }[]
}

export function encodeSealedStore(store: SealedLightClientStore): Uint8Array {
  const json = {
    format: FORMAT,
    network: store.network,
    genesisValidatorsRoot: store.genesisValidatorsRoot,
    checkpointRoot: store.checkpointRoot,
    finalized: { fork: store.finalized.fork, header: sszTypesFor(store.finalized.fork).LightClientHeader.toJson(store.finalized.header as never) },
    committees: store.committees.map(({ period, committee }) => ({ period, committee: bytesToHex(ssz.altair.SyncCommittee.serialize(committee)) })),
  }
  return new TextEncoder().encode(JSON.stringify(json))
}

/** Decodes what `encodeSealedStore` wrote; anything else throws a `TypeError` naming the field. */
export function decodeSealedStore(bytes: Uint8Array): SealedLightClientStore {
  const json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>
  if (json.format !== FORMAT) throw new TypeError(`sealed store: unknown format ${JSON.stringify(json.format)}`)
  const root = (name: string, value: unknown): Hex => {
    if (!isHex(value) || value.length !== 66) throw new TypeError(`sealed store: ${name} is not 32 bytes of hex`)
    return value.toLowerCase() as Hex
  }
  if (typeof json.network !== 'string') throw new TypeError('sealed store: network missing')
  const finalized = json.finalized as { fork?: unknown; header?: unknown } | undefined
  if (!finalized || !isLightClientFork(finalized.fork)) throw new TypeError('sealed store: finalized header fork missing or unknown')
  const header = sszTypesFor(finalized.fork).LightClientHeader.fromJson(finalized.header) as LightClientHeader
  if (!Array.isArray(json.committees) || json.committees.length === 0 || json.committees.length > MAX_COMMITTEES) {
    throw new TypeError('sealed store: committees must be a list of 1…4')
  }
  let previous = -1
  const committees = json.committees.map((entry: { period?: unknown; committee?: unknown }) => {
    if (!Number.isSafeInteger(entry.period) || (entry.period as number) <= previous) throw new TypeError('sealed store: committee periods must ascend')
    previous = entry.period as number
    if (!isHex(entry.committee)) throw new TypeError('sealed store: committee is not hex')
    return { period: previous, committee: ssz.altair.SyncCommittee.deserialize(hexToBytes(entry.committee)) }
  })
  return {
    network: json.network,
    genesisValidatorsRoot: root('genesisValidatorsRoot', json.genesisValidatorsRoot),
    checkpointRoot: root('checkpointRoot', json.checkpointRoot),
    finalized: { fork: finalized.fork, header },
    committees,
  }
}
