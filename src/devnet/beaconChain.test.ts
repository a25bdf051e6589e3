import assert from 'node:assert/strict'
import { test } from 'node:test'
import bls from '@chainsafe/bls'
import { DOMAIN_SYNC_COMMITTEE, ForkName } from '@lodestar/params'
import { ssz } from '@lodestar/types'
import { bytesToHex } from 'viem'
import { beaconConfigOf, devnetChain } from '../chain/lightClient/chains.ts'
import { buildBeaconBlock, defaultFieldRoots, devnetCommittee, executionPayloadHeader, signSyncAggregate } from './beaconChain.ts'

const chain = devnetChain({ genesisTime: 1_700_000_000, genesisValidatorsRoot: `0x${'4b'.repeat(32)}`, electraForkEpoch: 0, fuluForkEpoch: 300 })
const config = beaconConfigOf(chain)
const seed = new Uint8Array(32).fill(5)
const execution = executionPayloadHeader({
  number: '0x2a',
  hash: `0x${'aa'.repeat(32)}`,
  parentHash: `0x${'bb'.repeat(32)}`,
  miner: `0x${'cc'.repeat(20)}`,
  stateRoot: `0x${'dd'.repeat(32)}`,
  receiptsRoot: `0x${'ee'.repeat(32)}`,
  logsBloom: `0x${'00'.repeat(256)}`,
  mixHash: `0x${'11'.repeat(32)}`,
  gasLimit: '0x1c9c380',
  gasUsed: '0x5208',
  timestamp: '0x6553f100',
  extraData: '0x0102',
  baseFeePerGas: '0x3b9aca00',
  blobGasUsed: '0x20000',
  excessBlobGas: '0x0',
  transactions: ['0x01'],
})

test('the simulated state and body roots are the hash_tree_roots of real BeaconState and BlindedBeaconBlockBody values', () => {
  const slot = 100
  const [current, next] = [devnetCommittee(seed, 0), devnetCommittee(seed, 1)]
  const finalized = { root: new Uint8Array(32).fill(9), slot: 96 }
  const block = buildBeaconBlock({ config, genesisTime: chain.genesisTime, slot, parentRoot: new Uint8Array(32).fill(8), execution, finalized, currentCommittee: current, nextCommittee: next })

  const body = ssz.electra.BlindedBeaconBlockBody.defaultValue()
  body.executionPayloadHeader = execution
  assert.equal(bytesToHex(block.header.bodyRoot), bytesToHex(ssz.electra.BlindedBeaconBlockBody.hashTreeRoot(body)))

  // The slow path the simulator avoids: a whole default BeaconState (randao_mixes alone is 65536 roots).
  const state = ssz.electra.BeaconState.defaultViewDU()
  state.genesisTime = chain.genesisTime
  state.genesisValidatorsRoot = config.genesisValidatorsRoot
  state.slot = slot
  const fork = config.getForkInfo(slot)
  state.fork = ssz.phase0.Fork.toViewDU({ previousVersion: fork.prevVersion, currentVersion: fork.version, epoch: fork.epoch })
  state.latestBlockHeader = ssz.phase0.BeaconBlockHeader.toViewDU({ ...block.header, stateRoot: new Uint8Array(32) })
  state.finalizedCheckpoint = ssz.phase0.Checkpoint.toViewDU({ epoch: 3, root: finalized.root })
  state.currentSyncCommittee = ssz.altair.SyncCommittee.toViewDU(current.syncCommittee)
  state.nextSyncCommittee = ssz.altair.SyncCommittee.toViewDU(next.syncCommittee)
  state.latestExecutionPayloadHeader = ssz.electra.ExecutionPayloadHeader.toViewDU(execution)
  assert.equal(bytesToHex(block.header.stateRoot), bytesToHex(state.hashTreeRoot()))

  // And the default roots taken as zero subtrees equal the types' own.
  const fields = (ssz.electra.BeaconState as unknown as { fieldsEntries: { fieldType: { hashTreeRoot(v: unknown): Uint8Array; defaultValue(): unknown } }[] }).fieldsEntries
  const fast = defaultFieldRoots(ForkName.electra, 'BeaconState')
  for (const i of [5, 6, 14]) assert.equal(bytesToHex(fast[i]!), bytesToHex(fields[i]!.fieldType.hashTreeRoot(fields[i]!.fieldType.defaultValue())))
})

test('an aggregate signed with the summed scalars verifies against the aggregated member pubkeys', () => {
  const committee = devnetCommittee(seed, 4)
  assert.equal(committee.syncCommittee.pubkeys.length, 512)
  assert.equal(new Set(committee.syncCommittee.pubkeys.map((p) => bytesToHex(p))).size, 16)
  const root = new Uint8Array(32).fill(3)
  const participation = Array.from({ length: 512 }, (_, i) => i % 3 !== 0)
  const aggregate = signSyncAggregate({ config, committee, attestedRoot: root, signatureSlot: 9000, participation })
  const signingRoot = ssz.phase0.SigningData.hashTreeRoot({ objectRoot: root, domain: config.getDomain(8999, DOMAIN_SYNC_COMMITTEE) })
  const signers = committee.syncCommittee.pubkeys.filter((_, i) => participation[i]).map((p) => bls.PublicKey.fromBytes(p))
  assert.ok(bls.Signature.fromBytes(aggregate.syncCommitteeSignature).verify(bls.PublicKey.aggregate(signers), signingRoot))
  const everyone = committee.syncCommittee.pubkeys.map((p) => bls.PublicKey.fromBytes(p))
  assert.ok(!bls.Signature.fromBytes(aggregate.syncCommitteeSignature).verify(bls.PublicKey.aggregate(everyone), signingRoot))
  assert.equal(bytesToHex(committee.syncCommittee.aggregatePubkey), bytesToHex(bls.PublicKey.aggregate(everyone).toBytes()))
})
