import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createDcapVerifier } from '../tee/dcap.ts'
import { collateralCacheKey, pccsCollateral } from '../tee/collateral.ts'
import { serveDevnetPccs } from '../devnet/pccs.ts'
import { createDevnetPki, DEVNET_FMSPC } from '../devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { createCollateralCache } from './collateralCache.ts'
import { openDatabase } from './database.ts'

const pki = createDevnetPki()
const key = collateralCacheKey({ teeType: 'tdx', ca: 'platform', fmspc: DEVNET_FMSPC })

test('default: put, get, overwrite; survives reopening the database', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'km-cc-')), 'db.sqlite')
  let db = openDatabase(path)
  let clock = 1_000
  const cache = createCollateralCache(db, { now: () => clock })
  assert.equal(cache.get(key), undefined)
  const first = pki.collateral()
  cache.put(key, first, 2_000)
  assert.deepEqual(cache.get(key), { collateral: first, expiresAt: 2_000 })
  const second = pki.collateral({ fmspc: DEVNET_FMSPC })
  cache.put(key, second, 3_000)
  assert.deepEqual(cache.get(key), { collateral: second, expiresAt: 3_000 })
  db.close()
  db = openDatabase(path)
  assert.deepEqual(createCollateralCache(db, { now: () => clock }).get(key), { collateral: second, expiresAt: 3_000 })
  clock = 3_000
  assert.equal(createCollateralCache(db, { now: () => clock }).get(key), undefined)
  db.close()
})

test('default: expired entries are never returned and are pruned on the next write', () => {
  const db = openDatabase(':memory:')
  let clock = 100
  const cache = createCollateralCache(db, { now: () => clock })
  cache.put('a', pki.collateral(), 150)
  cache.put('b', pki.collateral(), 500)
  clock = 200
  assert.equal(cache.get('a'), undefined)
  assert.equal(cache.get('b')?.expiresAt, 500)
  cache.put('c', pki.collateral(), 900)
  assert.deepEqual(db.prepare('SELECT key FROM collateral_cache ORDER BY key').all(), [{ key: 'b' }, { key: 'c' }])
})

test('error: a corrupt row is a miss, not a crash; a bad expiry is refused', () => {
  const db = openDatabase(':memory:')
  const cache = createCollateralCache(db, { now: () => 0 })
  db.prepare('INSERT INTO collateral_cache (key, collateral, expires_at, stored_at) VALUES (?, ?, ?, ?)').run('x', '{"tcb_info":1', 10, 0)
  assert.equal(cache.get('x'), undefined)
  db.prepare('UPDATE collateral_cache SET collateral = ? WHERE key = ?').run('{"tcb_info":"{}"}', 'x')
  assert.equal(cache.get('x'), undefined)
  assert.throws(() => cache.put('y', pki.collateral(), 1.5), { name: 'RangeError', message: 'expiresAt must be unix seconds, got 1.5' })
})

test('default: pccsCollateral over the SQLite cache fetches once, then serves from the database', async () => {
  const pccs = await serveDevnetPccs(pki)
  const db = openDatabase(':memory:')
  try {
    const quote = await simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement('cache') }).getQuote(new Uint8Array(64))
    const verifier = createDcapVerifier({ collateral: pccsCollateral({ url: pccs.url, cache: createCollateralCache(db) }), trustedRootCaDer: [pki.rootCaDer] })
    assert.equal((await verifier.verify(quote)).status, 'UpToDate')
    await pccs.close()
    // The PCCS is gone: a new source over the same database still has the collateral.
    const offline = createDcapVerifier({ collateral: pccsCollateral({ url: pccs.url, cache: createCollateralCache(db) }), trustedRootCaDer: [pki.rootCaDer] })
    assert.equal((await offline.verify(quote)).status, 'UpToDate')
    assert.deepEqual(db.prepare('SELECT key FROM collateral_cache').all(), [{ key }])
  } finally {
    await pccs.close()
    db.close()
  }
})
