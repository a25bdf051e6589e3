// Test-only light-client fixtures: a crafted devnet beacon chain at chosen slots (no anvil), and a scripted beacon node
// that serves whatever a test hands it through the real routes (serveLightClientData), counting requests. Tests use
// them to feed the light client bad data: too few signers, wrong keys, bad branches, tampered roots, another fork's
// data, a fake next committee.
import type { BeaconConfig } from '@lodestar/config'
import type { LightClientBootstrap, LightClientFinalityUpdate, LightClientOptimisticUpdate, LightClientUpdate } from '@lodestar/types'
import { keccak256, numberToHex, toHex, type Hex } from 'viem'
import { beaconConfigOf, devnetChain, type DevnetChainSpec, type LightClientChain } from '../src/chain/lightClient/chains.ts'
import type { LightClientFork } from '../src/chain/lightClient/transport.ts'
import {
  buildBeaconBlock,
  devnetCommittee,
  executionPayloadHeader,
  lightClientBootstrap,
  lightClientFinalityUpdate,
  lightClientOptimisticUpdate,
  lightClientUpdate,
  syncPeriodOf,
  toVersionedJson,
  type DevnetBeaconBlock,
  type DevnetCommittee,
  type SigningParameters,
} from '../src/devnet/beaconChain.ts'
import { serveLightClientData, type LightClientDataSource, type VersionedJson } from '../src/devnet/beaconServer.ts'

export const TEST_SPEC: DevnetChainSpec = {
  genesisTime: 1_700_000_000,
  genesisValidatorsRoot: `0x${'4b'.repeat(32)}`,
  electraForkEpoch: 0,
  fuluForkEpoch: 0,
}

export type CraftedChain = {
  chain: LightClientChain
  config: BeaconConfig
  seed: Uint8Array
  committee(period: number): DevnetCommittee
  block(slot: number): DevnetBeaconBlock
  blocks: DevnetBeaconBlock[]
  root(slot: number): Hex
  bootstrap(slot: number): LightClientBootstrap
  /** Finality update: `attested` names the block `depth` slots earlier (in this chain) as finalized. */
  finality(attestedSlot: number, signing?: Partial<SigningParameters>): LightClientFinalityUpdate
  /** Period update with the attested state's next committee. */
  period(attestedSlot: number, signing?: Partial<SigningParameters>): LightClientUpdate
  optimistic(attestedSlot: number, signing?: Partial<SigningParameters>): LightClientOptimisticUpdate
  json(typeName: 'LightClientBootstrap' | 'LightClientUpdate' | 'LightClientFinalityUpdate' | 'LightClientOptimisticUpdate', value: { attestedHeader?: { beacon: { slot: number } }; header?: { beacon: { slot: number } } }, fork?: string): VersionedJson
}

export function fakeExecution(slot: number) {
  return executionPayloadHeader({
    number: numberToHex(slot),
    hash: keccak256(toHex(`block ${slot}`)),
    parentHash: keccak256(toHex(`block ${slot - 1}`)),
    miner: `0x${'00'.repeat(20)}`,
    stateRoot: keccak256(toHex(`state ${slot}`)),
    receiptsRoot: keccak256(toHex(`receipts ${slot}`)),
    logsBloom: `0x${'00'.repeat(256)}`,
    mixHash: `0x${'00'.repeat(32)}`,
    gasLimit: '0x1c9c380',
    gasUsed: '0x0',
    timestamp: numberToHex(TEST_SPEC.genesisTime + slot * 12),
    extraData: '0x',
    baseFeePerGas: '0x7',
    transactions: [],
  })
}

/**
 * Beacon blocks at `slots` (ascending), each naming the block `depth` positions earlier as finalized.
 * `nextCommittee(slot)` replaces a block's next committee (a fake committee in an otherwise honest state).
 */
export function craftChain(options: {
  slots: number[]
  spec?: Partial<DevnetChainSpec>
  chain?: (spec: DevnetChainSpec) => LightClientChain
  seed?: number
  depth?: number
  nextCommittee?: (slot: number) => DevnetCommittee | undefined
}): CraftedChain {
  const spec = { ...TEST_SPEC, ...options.spec }
  const chain = (options.chain ?? devnetChain)(spec)
  const config = beaconConfigOf(chain)
  const seed = new Uint8Array(32).fill(options.seed ?? 7)
  const depth = options.depth ?? 2
  const committee = (period: number) => devnetCommittee(seed, period)
  const blocks: DevnetBeaconBlock[] = []
  for (const [i, slot] of options.slots.entries()) {
    const period = syncPeriodOf(slot)
    const finalized = i === 0 ? { root: new Uint8Array(32), slot: 0 } : { root: blocks[Math.max(0, i - depth)]!.root, slot: blocks[Math.max(0, i - depth)]!.slot }
    blocks.push(
      buildBeaconBlock({
        config,
        genesisTime: spec.genesisTime,
        slot,
        parentRoot: blocks[i - 1]?.root ?? new Uint8Array(32),
        execution: fakeExecution(slot),
        finalized,
        currentCommittee: committee(period),
        nextCommittee: options.nextCommittee?.(slot) ?? committee(period + 1),
      }),
    )
  }
  const block = (slot: number) => {
    const found = blocks.find((b) => b.slot === slot)
    if (!found) throw new Error(`no crafted block at slot ${slot}`)
    return found
  }
  const finalizedOf = (attested: DevnetBeaconBlock) => {
    const found = blocks.find((b) => Buffer.from(b.root).equals(Buffer.from(attested.finalizedRoot)))
    if (!found) throw new Error(`slot ${attested.slot} names no crafted block as finalized`)
    return found
  }
  const signing = (attested: DevnetBeaconBlock, overrides: Partial<SigningParameters> = {}): SigningParameters => {
    const signatureSlot = overrides.signatureSlot ?? attested.slot + 1
    return { config, committee: committee(syncPeriodOf(signatureSlot)), ...overrides, signatureSlot }
  }
  return {
    chain,
    config,
    seed,
    committee,
    block,
    blocks,
    root: (slot) => toHex(block(slot).root),
    bootstrap: (slot) => lightClientBootstrap(block(slot)),
    finality: (slot, overrides) => lightClientFinalityUpdate(block(slot), finalizedOf(block(slot)), signing(block(slot), overrides)),
    period: (slot, overrides) => lightClientUpdate(block(slot), finalizedOf(block(slot)), signing(block(slot), overrides)),
    optimistic: (slot, overrides) => lightClientOptimisticUpdate(block(slot), signing(block(slot), overrides)),
    json: (typeName, value, fork) => {
      const slot = (value.attestedHeader ?? value.header)!.beacon.slot
      const versioned = toVersionedJson(config.getForkName(slot) as LightClientFork, typeName, value)
      return fork ? { ...versioned, version: fork } : versioned
    },
  }
}

export type ScriptedBeacon = {
  url: string
  requests: string[]
  count(route: 'bootstrap' | 'updates' | 'finality_update' | 'optimistic_update'): number
  script: Partial<Record<'bootstrap' | 'updates' | 'finality' | 'optimistic', unknown>>
  close(): Promise<void>
}

/**
 * A beacon node that answers from `script` (mutable: tests change it between calls): `bootstrap` maps a root to an
 * answer, `updates` maps `start_period` to a list, `finality`/`optimistic` are single answers. Missing = 404.
 */
export async function scriptedBeacon(script: {
  bootstrap?: Record<string, VersionedJson>
  updates?: Record<number, VersionedJson[]>
  finality?: VersionedJson
  optimistic?: VersionedJson
}): Promise<ScriptedBeacon & { script: typeof script }> {
  const requests: string[] = []
  const source: LightClientDataSource = {
    async genesis() {
      return { genesis_time: String(TEST_SPEC.genesisTime), genesis_validators_root: TEST_SPEC.genesisValidatorsRoot, genesis_fork_version: '0x006b6d64' }
    },
    async bootstrap(root) {
      requests.push('bootstrap')
      return script.bootstrap?.[root.toLowerCase()] ?? null
    },
    async updates(start, count) {
      requests.push('updates')
      const out: VersionedJson[] = []
      for (let p = start; p < start + count; p++) out.push(...(script.updates?.[p] ?? []))
      return out
    },
    async finalityUpdate() {
      requests.push('finality_update')
      return script.finality ?? null
    },
    async optimisticUpdate() {
      requests.push('optimistic_update')
      return script.optimistic ?? null
    },
  }
  const server = await serveLightClientData(source)
  return { url: server.url, requests, count: (route) => requests.filter((r) => r === route).length, script, close: server.close }
}

/** A deep copy of a light-client value through its JSON form, to tamper with without touching the original. */
export function cloneJson(value: VersionedJson): VersionedJson {
  return JSON.parse(JSON.stringify(value)) as VersionedJson
}

/** Flips the last hex digit of a 0x-string. */
export function flipHex(hex: string): string {
  return hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0')
}

export const silentLogger = { info() {}, warn() {}, error() {} }

/** A logger that records every line (object and message), for asserting on warnings. */
export function recordingLogger() {
  const lines: { level: string; msg: string }[] = []
  const at = (level: string) => (obj: unknown, msg?: string) => lines.push({ level, msg: msg ?? String(obj) })
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}
