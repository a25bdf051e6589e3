// Spam a host can feed a helper (docs/protocol.md#limits), on a real anvil with real blobs and the helpers' real SQLite
// databases: onboarding requests whose quotes verify under the devnet PKI but bind another key, all from one requester
// and one blob. The helper refuses each, archives none of their blobs, stops fetching and verifying after the
// requester's budget of refusals, forgets the refusals once the requests expire, and keeps serving a real newcomer.
// Each judgement goes through the verified chain view (light client on the devnet beacon chain, a freshness mark per
// decision). A second helper runs with open-request caps set low (watcher.*, docs/protocol.md#limits): the spam hits
// them, its database holds no more than they allow, and it still serves a real newcomer. KEYMANAGER_SPAM_REQUESTS sets
// the count (default 30); the 10k figure comes from `npm run bench:spam` (docs/performance.md).
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, createWalletClient, hexToBytes, http, numberToHex } from 'viem'
import { foundry } from 'viem/chains'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { envelopeToBlobs } from '../src/chain/envelope.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { devAccount, hostCall, runDevnet, type DevnetNodeInfo } from '../src/devnet/network.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { DEVNET_MEASUREMENT_LABEL } from '../src/devnet/network.ts'
import { registerReportData } from '../src/keys/reportData.ts'
import { addressOfPublicKey } from '../src/keys/signature.ts'
import { VERIFY_LIMIT } from '../src/node/node.ts'
import { DEFAULT_MAX_OPEN_PER_REQUESTER } from '../src/config.ts'
import { fund } from './attacker.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
const SPAM = Number(process.env.KEYMANAGER_SPAM_REQUESTS ?? 30)
/** The capped helper's caps: one key's spam hits the per-requester cap, and the total cap below it. */
const CAPS = { maxOpenPerRequester: 10, maxOpenRequests: 5 }

describe('spam: a flood of bad onboarding requests', () => {
  let devnet: Devnet
  const lines: string[] = []
  const wallet = (index: number) =>
    createWalletClient({ account: devAccount(index), chain: { ...foundry, rpcUrls: { default: { http: [''] } } }, transport: http(devnet.anvil.rpcUrl, { timeout: 60_000 }) })
  /** Counts in a node's own database (read-only, beside the running node). */
  const dbCounts = (dir: string) => {
    const db = new Database(join(dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
    try {
      const blobs = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM blobs').get() as { n: number; bytes: number }
      const requests = db.prepare('SELECT decision, COUNT(*) AS n FROM requests GROUP BY decision').all() as { decision: string; n: number }[]
      const unanswered = (db.prepare('SELECT COUNT(*) AS n FROM watched_requests WHERE onboarded_block IS NULL').get() as { n: number }).n
      const watchedTo = (db.prepare('SELECT COALESCE(MAX(number), 0) AS n FROM chain_blocks').get() as { n: number }).n
      return { blobs: blobs.n, blobBytes: blobs.bytes, requests: Object.fromEntries(requests.map((r) => [r.decision, r.n])) as Record<string, number>, unanswered, watchedTo }
    } finally {
      db.close()
    }
  }
  const rpc = (method: string, params: unknown[]) =>
    fetch(devnet.anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })

  let capped: Awaited<ReturnType<Devnet['addNode']>>
  before(async () => {
    devnet = await runDevnet({ nodes: 2, dir: mkdtempSync(join(tmpdir(), 'km-spam-')), print: (l) => lines.push(l) })
    capped = await devnet.addNode({ configure: (settings) => void (settings.host.watcher = CAPS) })
    await devnet.onboard(capped, devnet.info.nodes[0]!)
  })
  after(async () => {
    await devnet?.stop()
  })

  test(`security: ${SPAM} spam requests: no blob archived, verification capped per requester, a real newcomer still served`, async () => {
    const helper = devnet.info.nodes[0]!
    const helperDir = devnet.nodes[0]!.dir
    const before = dbCounts(helperDir)
    // One genuine devnet platform run by a malicious host: a quote that verifies, over another key than the request's.
    const victim = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const attacker = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const provider = simulatedQuoteProvider({ platform: devnet.pki.mintPlatform(), measurement: simulatedMeasurement(DEVNET_MEASUREMENT_LABEL) })
    const digest = new Uint8Array(32).fill(0x5e)
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    const spammer = wallet(40)
    await fund(devnet, spammer.account.address)
    // A request lives requestTtl blocks from the block it is made in; a short one (set before the spam) lets the test
    // mine past it below. Restored at the end.
    const owner = wallet(0)
    const setTtl = async (ttl: bigint) => {
      const hash = await owner.writeContract({ address: devnet.registry, abi: keyManagerAbi, functionName: 'setRequestTtl', args: [ttl] } as never)
      await devnet.publicClient.waitForTransactionReceipt({ hash })
    }
    await setTtl(400n)
    const spam: { requestId: bigint; blockNumber: bigint }[] = []
    for (let i = 0; i < SPAM; i++) {
      // Each request references the newest block (the devnet beacon server mines blocks between them as nodes follow
      // the chain), so each is judged on its quote, not refused as a stale reference.
      const head = await devnet.publicClient.getBlock({ blockTag: 'latest' })
      const quote = await provider.getQuote(
        registerReportData({ chainId: foundry.id, registry: devnet.registry, pubkey64: attacker, refBlockNumber: head.number, refBlockHash: head.hash, settingsDigest: digest }),
      )
      const blobs = envelopeToBlobs({ kind: 'register', teeType: 'tdx', quote, pubkey64: victim, refBlockNumber: head.number, refBlockHash: hexToBytes(head.hash), settingsDigest: digest })
      const sent = await sendBlobTransaction({ walletClient: spammer, publicClient: devnet.publicClient, to: devnet.registry, data: registry.calldata.requestOnboard(bytesToHex(victim), head.number), blobs })
      spam.push({ requestId: registry.requestIdFromReceipt(sent.receipt, addressOfPublicKey(victim))!, blockNumber: sent.receipt.blockNumber })
    }
    assert.equal(new Set(spam.map((r) => r.requestId)).size, SPAM)

    const reasons: string[] = []
    for (const [i, request] of spam.entries()) {
      const res = await fetch(`${helper.hostUrl}/helper/${request.requestId}`, { method: 'POST', headers: { authorization: `Bearer ${helper.hostToken}` } })
      const body = (await res.json()) as { error?: { reason?: string; code?: string } }
      // Past the default per-requester cap (a count set above it), the key's oldest requests are no longer stored.
      if (res.status === 404 && i < SPAM - DEFAULT_MAX_OPEN_PER_REQUESTER) continue
      assert.equal(res.status, 422, JSON.stringify(body))
      reasons.push(body.error!.reason!)
    }
    const budget = Math.min(reasons.length, VERIFY_LIMIT.count)
    assert.deepEqual(reasons.slice(0, budget), Array(budget).fill('report_data_mismatch'))
    assert.deepEqual(reasons.slice(budget), Array(reasons.length - budget).fill('rate_limited'))

    const afterSpam = dbCounts(helperDir)
    assert.equal(afterSpam.blobs, before.blobs, 'no spam blob is archived')
    assert.equal(afterSpam.blobBytes, before.blobBytes)
    assert.equal(afterSpam.requests.refused, (before.requests.refused ?? 0) + reasons.length)

    // The capped helper watched the same spam: its database holds the caps, and it says so in its log.
    const lastSpamBlock = Number(spam.at(-1)!.blockNumber)
    let cappedCounts = dbCounts(capped.dir)
    for (let i = 0; cappedCounts.watchedTo < lastSpamBlock; i++) {
      assert.ok(i < 600, `the capped helper's watcher reached block ${cappedCounts.watchedTo}, not ${lastSpamBlock}`)
      await new Promise((r) => setTimeout(r, 200))
      cappedCounts = dbCounts(capped.dir)
    }
    assert.ok(SPAM > CAPS.maxOpenPerRequester, 'the spam is larger than the caps it is meant to hit')
    assert.ok(cappedCounts.unanswered <= CAPS.maxOpenRequests, `${cappedCounts.unanswered} unanswered requests stored, cap ${CAPS.maxOpenRequests}`)
    assert.equal(cappedCounts.unanswered, CAPS.maxOpenRequests, 'the spam\'s latest requests fill the cap')
    assert.match(readFileSync(join(capped.dir, 'node.log'), 'utf8'), /open-request cap hit: \d+ stored requests evicted \(watcher\.maxOpenPerRequester 10, watcher\.maxOpenRequests 5\)/)
    // A real newcomer is served by the capped helper: the spam's own rows make room for its request.
    const cappedNewcomer = await devnet.addNode()
    await devnet.onboard(cappedNewcomer, capped)
    assert.equal((await hostCall<{ state: string }>(cappedNewcomer, 'GET', '/status')).state, 'ready')
    assert.ok(dbCounts(capped.dir).unanswered <= CAPS.maxOpenRequests)

    // A real newcomer is served by the same helper.
    const newcomer = await devnet.addNode()
    await devnet.onboard(newcomer, helper)
    assert.equal((await hostCall<{ state: string }>(newcomer, 'GET', '/status')).state, 'ready')
    const served = dbCounts(helperDir)
    assert.equal(served.blobs, before.blobs + 2, 'the request the helper answered and its own response are archived')

    // Once the spam expires on chain, its refusals go; the fulfilled decisions stay.
    try {
      await rpc('anvil_mine', [numberToHex(400)])
      const expired = await fetch(`${helper.hostUrl}/helper/${spam[0]!.requestId}`, { method: 'POST', headers: { authorization: `Bearer ${helper.hostToken}` } })
      assert.equal(((await expired.json()) as { error: { reason: string } }).error.reason, 'expired')
      const pruned = dbCounts(helperDir)
      assert.equal(pruned.requests.refused ?? 0, 0, JSON.stringify(pruned.requests))
      // The watcher forgot the expired spam it had stored, all but the spamming key's latest request.
      assert.ok(served.unanswered >= SPAM, `the watcher stored the spam (${served.unanswered} unanswered)`)
      assert.equal(pruned.unanswered, 1, 'only the spamming key\'s latest request is left')
      assert.equal(pruned.requests.fulfilled, served.requests.fulfilled)
      assert.ok(pruned.requests.fulfilled! >= 1)
    } finally {
      await setTtl(7200n)
    }
  })

  test('default: a helper whose archive is full still serves, and says so in its log', async () => {
    // Room for one blob: the helper's own register blob fills it.
    const capped = await devnet.addNode({ configure: (settings) => void (settings.host.blobs.archiveMaxBytes = 131_072) })
    await devnet.onboard(capped, devnet.info.nodes[0]!)
    const cappedInfo: DevnetNodeInfo = capped
    const newcomer = await devnet.addNode()
    await devnet.onboard(newcomer, cappedInfo)
    assert.equal((await hostCall<{ state: string }>(newcomer, 'GET', '/status')).state, 'ready')
    const counts = dbCounts(capped.dir)
    assert.ok(counts.blobBytes <= 131_072, `archive holds ${counts.blobBytes} bytes`)
    const log = readFileSync(join(capped.dir, 'node.log'), 'utf8')
    assert.match(log, /blob archive full: blob not archived \(raise blobs\.archiveMaxBytes/)
  })

})
