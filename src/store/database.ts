import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

export type Db = Database.Database

// docs/protocol.md#node-state: one data dir, one SQLite file. Each migration runs once, in order, inside a transaction;
// `user_version` records how many have run. Never edit a shipped migration: append a new one.
const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  -- Sealed master secrets, one per generation (docs/protocol.md#node-state).
  CREATE TABLE sealed_secrets (
    generation INTEGER PRIMARY KEY,
    x_pub TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  -- This node's own pending registration: the ephemeral key, sealed.
  CREATE TABLE registrations (
    address TEXT PRIMARY KEY,
    pubkey64 TEXT NOT NULL,
    sealed_key BLOB,
    ref_block_number INTEGER NOT NULL,
    ref_block_hash TEXT NOT NULL,
    request_id TEXT,
    tx_hash TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  -- Onboarding requests this node has looked at as a helper, and what it decided (docs/protocol.md#help).
  CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    message TEXT,
    measurement_id TEXT,
    fulfill_tx TEXT,
    decided_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX requests_requester ON requests (requester);
  -- Every blob this node used, by versioned hash (docs/protocol.md#limits: beacon nodes prune after ~18 days).
  CREATE TABLE blobs (
    versioned_hash TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    stored_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  -- Tx outbox (docs/protocol.md#node-state): a nonce is assigned and the signed tx stored before it is broadcast, so a crash
  -- between signing and sending neither reuses nor skips a nonce. One row per nonce; a fee bump replaces the
  -- signed tx in place and keeps every hash it ever had (any of them may be the one that gets mined).
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    label TEXT NOT NULL,
    params TEXT NOT NULL,
    blobs BLOB,
    raw_tx TEXT NOT NULL,
    tx_hashes TEXT NOT NULL,
    status TEXT NOT NULL,
    broadcast_block INTEGER,
    mined_hash TEXT,
    mined_block INTEGER,
    mined_block_hash TEXT,
    receipt_status TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (account, nonce)
  ) STRICT;
  -- Chain watcher cursor (docs/protocol.md#node-state): the last processed block and recent block hashes, to detect reorgs.
  CREATE TABLE chain_blocks (
    number INTEGER PRIMARY KEY,
    hash TEXT NOT NULL
  ) STRICT;
  -- Registry events the watcher has processed, keyed by request id (idempotent; rolled back on reorgs).
  CREATE TABLE watched_requests (
    request_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    onboarded_block INTEGER,
    onboarded_tx TEXT
  ) STRICT;
  `,
  `
  -- DCAP collateral fetched from a PCCS (docs/protocol.md#tee-providers), by collateralCacheKey (TEE type, PCK CA, FMSPC).
  CREATE TABLE collateral_cache (
    key TEXT PRIMARY KEY,
    collateral TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    stored_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  -- The light client's store (docs/protocol.md#verified-chain-view): one row, sealed by the node's seal provider, so a
  -- restarted node resumes from its own verified sync committee and finalized header instead of bootstrapping again.
  -- finalized_slot is a copy of what the sealed bytes hold, for operators; the node reads only the sealed bytes.
  CREATE TABLE light_client_store (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL,
    finalized_slot INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  -- Blob txs carry a network wrapper (docs/protocol.md#blob-transactions): v0 (one KZG proof per blob) before Osaka,
  -- v1 (EIP-7594, 128 cell proofs per blob) after. Every blob tx stored before this column existed is v0; the outbox
  -- re-wraps open ones in place when the network takes v1 (same canonical tx, same hash).
  ALTER TABLE outbox ADD COLUMN sidecar_version INTEGER;
  UPDATE outbox SET sidecar_version = 0 WHERE blobs IS NOT NULL;
  `,
  `
  -- The settingsDigest a judged request's envelope carries (docs/protocol.md#measured-settings), once it decoded.
  ALTER TABLE requests ADD COLUMN settings_digest TEXT;
  `,
  `
  -- The node reads requests and answers through the watcher's store, never by scanning logs from the deployment block
  -- (docs/protocol.md#limits): an Onboarded event keeps what completing needs (response blob hash, index, block hash).
  -- Rows from before these columns are taken again: the watcher rescans from the deployment block once, range by range.
  ALTER TABLE watched_requests ADD COLUMN requester TEXT;
  ALTER TABLE watched_requests ADD COLUMN onboarded_blob_hash TEXT;
  ALTER TABLE watched_requests ADD COLUMN onboarded_index INTEGER;
  ALTER TABLE watched_requests ADD COLUMN onboarded_block_hash TEXT;
  CREATE INDEX watched_requests_requester ON watched_requests (requester);
  DELETE FROM watched_requests;
  DELETE FROM chain_blocks;
  `,
  `
  -- Collateral kept with the decisions (docs/protocol.md#node-state): the exact DCAP collateral each quote this node
  -- acted on was judged with, stored once per content hash, and which one each decision used, so that audit judges
  -- an old quote with the collateral of its time. Public Intel data; never pruned (one row per decision acted on).
  CREATE TABLE kept_collateral (
    hash TEXT PRIMARY KEY,
    collateral TEXT NOT NULL,
    stored_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE decision_collateral (
    quote_blob_hash TEXT PRIMARY KEY,
    collateral_hash TEXT NOT NULL REFERENCES kept_collateral (hash),
    judged_at INTEGER NOT NULL
  ) STRICT;
  `,
]

/**
 * Opens (creating if needed) the node database and brings its schema up to date. `upTo` stops after that many
 * migrations: upgrade tests use it to build the database an older build left behind.
 */
export function openDatabase(path: string, options: { upTo?: number } = {}): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  // Secrets and nonces are written here: a power cut must not lose an acknowledged write (docs/protocol.md#node-state).
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > MIGRATIONS.length) {
    db.close()
    throw new Error(`database ${path} has schema version ${current}, newer than this build knows (${MIGRATIONS.length})`)
  }
  for (let version = current; version < Math.min(options.upTo ?? MIGRATIONS.length, MIGRATIONS.length); version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!)
      db.pragma(`user_version = ${version + 1}`)
    })()
  }
  return db
}
