// Pins layout.ts against the compiler: `forge inspect KeyManager storageLayout` (forge from npm, offline, through
// scripts/forge.ts). A contract change that moves, retypes or adds a state variable fails here until layout.ts says
// where it now lives.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { contractsRoot } from '../../../scripts/forge.ts'
import {
  GENERATION_MEMBERS,
  GUARDIAN_SET_MEMBERS,
  KEY_MANAGER_LAYOUT,
  KEY_MANAGER_MAPPINGS,
  KEY_MANAGER_STRUCTS,
  PROPOSAL_MEMBERS,
  REQUEST_MEMBERS,
  ROTATION_MEMBERS,
  acknowledgedSlot,
  mappingSlot,
  member,
  type SlotField,
} from './layout.ts'

type Entry = { label: string; slot: string; offset: number; type: string }
type Layout = { storage: Entry[]; types: Record<string, { numberOfBytes: string; members?: Entry[] }> }

/** State variables no decision reads; listed so that a new variable cannot go unnoticed. */
const NOT_READ = new Set(['_pendingOwner', '_bootstrapQuoteBlobHash'])

function forgeLayout(): Layout {
  const forge = join(dirname(createRequire(import.meta.url).resolve('@foundry-rs/forge-linux-amd64/package.json')), 'bin', 'forge')
  const out = spawnSync(forge, ['inspect', '--root', contractsRoot, 'KeyManager', 'storageLayout', '--json'], {
    cwd: contractsRoot,
    env: { ...process.env, FOUNDRY_SOLC: join(contractsRoot, 'solc') },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  })
  assert.equal(out.status, 0, `forge inspect failed: ${out.stderr}`)
  return JSON.parse(out.stdout) as Layout
}

describe('KeyManager storage layout', () => {
  test('default: layout.ts matches forge inspect KeyManager storageLayout', () => {
    const layout = forgeLayout()
    const byLabel = new Map(layout.storage.map((e) => [e.label, e]))
    const known = new Set<string>(NOT_READ)
    for (const field of Object.values(KEY_MANAGER_LAYOUT)) {
      const entry = byLabel.get(field.label)
      assert.ok(entry, `${field.label} is not in the contract any more`)
      assert.deepEqual({ slot: BigInt(entry.slot), offset: entry.offset, type: entry.type }, { slot: field.slot, offset: field.offset, type: field.type }, field.label)
      assert.equal(Number(layout.types[entry.type]!.numberOfBytes), field.bytes, `${field.label} size`)
      known.add(field.label)
    }
    for (const mapping of Object.values(KEY_MANAGER_MAPPINGS)) {
      const entry = byLabel.get(mapping.label)
      assert.ok(entry, `${mapping.label} is not in the contract any more`)
      assert.equal(BigInt(entry.slot), mapping.slot, mapping.label)
      assert.ok(entry.type.startsWith(mapping.type), `${mapping.label}: ${entry.type} is not ${mapping.type}…`)
      known.add(mapping.label)
    }
    for (const struct of Object.values(KEY_MANAGER_STRUCTS)) {
      const entry = byLabel.get(struct.label)
      assert.ok(entry, `${struct.label} is not in the contract any more`)
      assert.equal(BigInt(entry.slot), struct.slot, struct.label)
      assert.ok(entry.type.startsWith(`t_struct(${struct.struct})`), `${struct.label}: ${entry.type}`)
      known.add(struct.label)
    }
    /** Every member of a struct type (the value type of `mappingLabel`, or a struct state variable) is pinned. */
    const pinStruct = (typeName: string, expected: Record<string, SlotField>) => {
      const members = layout.types[typeName]?.members ?? []
      const name = typeName.replace(/^t_struct\((\w+)\).*$/, '$1')
      assert.equal(members.length, Object.keys(expected).length, `struct ${name} members`)
      for (const field of Object.values(expected)) {
        const m = members.find((x) => x.label === field.label)
        assert.ok(m, `${name}.${field.label} is gone`)
        assert.deepEqual({ slot: BigInt(m.slot), offset: m.offset, type: m.type }, { slot: field.slot, offset: field.offset, type: field.type }, `${name}.${field.label}`)
        assert.equal(Number(layout.types[m.type]!.numberOfBytes), field.bytes, `${name}.${field.label} size`)
      }
    }
    const valueType = (label: string) => byLabel.get(label)!.type.replace(/^t_mapping\(t_\w+,(.*)\)$/, '$1')
    pinStruct(valueType(KEY_MANAGER_MAPPINGS.requests.label), REQUEST_MEMBERS)
    pinStruct(valueType(KEY_MANAGER_MAPPINGS.generations.label), GENERATION_MEMBERS)
    pinStruct(valueType(KEY_MANAGER_MAPPINGS.guardianSets.label), GUARDIAN_SET_MEMBERS)
    pinStruct(byLabel.get(KEY_MANAGER_STRUCTS.rotation.label)!.type, ROTATION_MEMBERS)
    pinStruct(byLabel.get(KEY_MANAGER_STRUCTS.proposal.label)!.type, PROPOSAL_MEMBERS)
    const unknown = layout.storage.map((e) => e.label).filter((label) => !known.has(label))
    assert.deepEqual(unknown, [], 'state variables layout.ts does not know: add them to layout.ts (or NOT_READ)')
  })

  test('default: mapping slots and packed members follow the Solidity rules', () => {
    // keccak256(abi.encode(key, slot)): a bytes6 key is left-aligned in its word, an integer right-aligned. (The
    // decoded values are checked against the contract's own getters on anvil in accountProof.test.ts.)
    assert.equal(mappingSlot(7n, 'bytes6', '0x00906ed50000'), mappingSlot(7n, 'bytes32', `0x00906ed50000${'00'.repeat(26)}`))
    assert.equal(mappingSlot(8n, 'uint256', 1n), mappingSlot(8n, 'bytes32', `0x${'00'.repeat(31)}01`))
    // A nested mapping: the inner mapping's slot is the outer entry's slot (contracts/test/StorageLayout.t.sol).
    assert.equal(acknowledgedSlot(3n, 5n), mappingSlot(mappingSlot(19n, 'uint256', 3n), 'uint256', 5n))
    const packed = (0xaan << 224n) | (0x1122334455667788n << 160n) | 0xdeadbeefn
    assert.equal(member(packed, { offset: 0, bytes: 20 }), 0xdeadbeefn)
    assert.equal(member(packed, { offset: 20, bytes: 8 }), 0x1122334455667788n)
    assert.equal(member(packed, { offset: 28, bytes: 1 }), 0xaan)
  })
})
