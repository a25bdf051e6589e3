import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openDatabase } from './database.ts'
import { createLightClientStoreTable } from './lightClientStore.ts'

test('default: one row, replaced on put', () => {
  const table = createLightClientStoreTable(openDatabase(':memory:'))
  assert.equal(table.get(), undefined)
  table.put({ sealed: Uint8Array.of(1, 2, 3), finalizedSlot: 10, updatedAt: 100 })
  table.put({ sealed: Uint8Array.of(4, 5), finalizedSlot: 12, updatedAt: 101 })
  assert.deepEqual(table.get(), { sealed: Uint8Array.of(4, 5), finalizedSlot: 12, updatedAt: 101 })
  table.clear()
  assert.equal(table.get(), undefined)
})
