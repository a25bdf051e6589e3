// `npm run bench:spam`: how a helper fares under a flood of onboarding requests from one requester
// (docs/protocol.md#limits). A one-node devnet in auto mode (light-client chain view, real blobs on anvil, the helper's
// real SQLite); a baseline newcomer is served first; then SPAM requests (default 10,000) land at once, all naming one
// key and carrying quotes that verify under the devnet PKI but bind another key (the most a helper can be made to spend
// on a request it must refuse), 100 requests per blob transaction through a small spam contract; a second newcomer
// registers right after. Printed: the newcomer's time to ready under the flood against the baseline's, the helper's CPU
// over the flood window against an idle window of the same length, its archive and database, and what it decided.
// Then the caps are checked (docs/protocol.md#limits): archive bytes ≤ blobs.archiveMaxBytes, unanswered requests
// stored ≤ watcher.maxOpenRequests and ≤ watcher.maxOpenPerRequester per requester, and the database file (with its
// WAL) grown by no more than maxOpenRequests rows of 1 KiB plus one WAL of SQLite's auto-checkpoint size (4 MiB);
// a cap exceeded exits 1 with one line naming it. Wall time is printed, never checked (the figures go to
// docs/performance.md).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import solc from 'solc'
import { bytesToHex, createWalletClient, encodeFunctionData, hexToBytes, http, parseEther, type Abi, type Address, type Hex } from 'viem'
import { foundry } from 'viem/chains'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { envelopeToBlobs } from '../src/chain/envelope.ts'
import { DEVNET_AUTO, DEVNET_MEASUREMENT_LABEL, devAccount, runDevnet, waitUntilReady } from '../src/devnet/network.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { registerReportData } from '../src/keys/reportData.ts'
import { DEFAULT_MAX_OPEN_PER_REQUESTER, DEFAULT_MAX_OPEN_REQUESTS, type HostSettingsInput } from '../src/config.ts'

const SPAM = Number(process.env.BENCH_SPAM ?? 10_000)
const PER_TX = Number(process.env.BENCH_SPAM_PER_TX ?? 100)
/** How long the helper is watched after the flood landed (seconds), for its CPU and what it decided. */
const SETTLE = Number(process.env.BENCH_SPAM_SETTLE ?? 120)

// One transaction, many requests: `requestOnboard` reads the transaction's blob (BLOBHASH), which a nested call sees too.
const SPAMMER = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
interface IKeyManager { function requestOnboard(bytes calldata pubkey64, uint64 refBlockNumber) external returns (uint256); }
contract Spammer {
  function spam(address registry, bytes calldata pubkey64, uint64 refBlockNumber, uint256 n) external {
    for (uint256 i = 0; i < n; i++) IKeyManager(registry).requestOnboard(pubkey64, refBlockNumber);
  }
}`

function compileSpammer(): { abi: Abi; bytecode: Hex } {
  const input = {
    language: 'Solidity',
    sources: { 'Spammer.sol': { content: SPAMMER } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[]
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>
  }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const contract = output.contracts['Spammer.sol']!.Spammer!
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` }
}

/** User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!
  return Number(line.replace(/\D+/g, '')) / 1024
}

function dbCounts(dir: string) {
  const db = new Database(join(dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
  try {
    const blobs = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM blobs').get() as { n: number; bytes: number }
    const rows = db.prepare('SELECT decision, reason, COUNT(*) AS n FROM requests GROUP BY decision, reason').all() as { decision: string; reason: string | null; n: number }[]
    const open = (db.prepare('SELECT COUNT(*) AS n FROM watched_requests WHERE onboarded_block IS NULL').get() as { n: number }).n
    const openPerRequester = (
      db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM (SELECT COUNT(*) AS n FROM watched_requests WHERE onboarded_block IS NULL GROUP BY requester)').get() as { n: number }
    ).n
    return { blobs: blobs.n, blobBytes: blobs.bytes, decisions: rows, open, openPerRequester }
  } finally {
    db.close()
  }
}

const dbBytes = (dir: string) => ['keymanager.sqlite', 'keymanager.sqlite-wal'].reduce((sum, f) => sum + (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The caps the helper runs with: its host file, defaults filled as src/config.ts fills them. */
function capsOf(configPath: string) {
  const host = JSON.parse(readFileSync(configPath, 'utf8')) as HostSettingsInput
  return {
    archiveMaxBytes: host.blobs.archiveMaxBytes ?? 4 * 1024 ** 3,
    maxOpenRequests: host.watcher?.maxOpenRequests ?? DEFAULT_MAX_OPEN_REQUESTS,
    maxOpenPerRequester: host.watcher?.maxOpenPerRequester ?? DEFAULT_MAX_OPEN_PER_REQUESTER,
  }
}
/** One WAL at SQLite's default auto-checkpoint (1,000 pages of 4 KiB), which the file may hold between checkpoints. */
const WAL_BYTES = 1000 * 4096

/** Newcomers join by themselves but do not help: node 1 is the one helper measured. */
const NEWCOMER = { ...(DEVNET_AUTO as object), help: false }

/** Runs the bench; resolves to the caps exceeded (empty: all held). */
export async function benchSpam(print: (line: string) => void, spam = SPAM): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'km-bench-spam-'))
  const devnet = await runDevnet({ nodes: 1, dir, auto: true, print: () => {} })
  try {
    const helper = devnet.nodes[0]!
    const pid = helper.child.pid!
    const rpc = (method: string, params: unknown[]) =>
      fetch(devnet.anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })

    // Baseline: a newcomer on a quiet network.
    let t = performance.now()
    await waitUntilReady(await devnet.addNode({ auto: NEWCOMER }), 600_000)
    const baselineSeconds = (performance.now() - t) / 1000
    print(`baseline newcomer ready in ${baselineSeconds.toFixed(1)} s`)

    // The helper idle (its view refresh and watcher polls) for the length of the settle window.
    let cpu = cpuSeconds(pid)
    await sleep(SETTLE * 1000)
    const idleCpu = cpuSeconds(pid) - cpu
    const before = dbCounts(helper.dir)
    const beforeDb = dbBytes(helper.dir)

    // The flood: one key named in every request, quotes of a genuine devnet platform that bind another key.
    const spammerAccount = devAccount(30)
    await rpc('anvil_setBalance', [spammerAccount.address, `0x${parseEther('1000').toString(16)}`])
    const chain = { ...foundry, rpcUrls: { default: { http: [devnet.anvil.rpcUrl] } } }
    const wallet = createWalletClient({ account: spammerAccount, chain, transport: http(devnet.anvil.rpcUrl, { timeout: 120_000 }) })
    const { abi, bytecode } = compileSpammer()
    const deployHash = await wallet.deployContract({ abi, bytecode })
    const spammer = (await devnet.publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress as Address
    const victim = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const attacker = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const provider = simulatedQuoteProvider({ platform: devnet.pki.mintPlatform(), measurement: simulatedMeasurement(DEVNET_MEASUREMENT_LABEL) })
    const digest = new Uint8Array(32).fill(0x5e)
    t = performance.now()
    cpu = cpuSeconds(pid)
    let posted = 0
    let txs = 0
    while (posted < spam) {
      const n = Math.min(PER_TX, spam - posted)
      const head = await devnet.publicClient.getBlock({ blockTag: 'latest' })
      const quote = await provider.getQuote(
        registerReportData({ chainId: foundry.id, registry: devnet.registry, pubkey64: attacker, refBlockNumber: head.number, refBlockHash: head.hash, settingsDigest: digest }),
      )
      const blobs = envelopeToBlobs({ kind: 'register', teeType: 'tdx', quote, pubkey64: victim, refBlockNumber: head.number, refBlockHash: hexToBytes(head.hash), settingsDigest: digest })
      const data = encodeFunctionData({ abi, functionName: 'spam', args: [devnet.registry, bytesToHex(victim), head.number, BigInt(n)] })
      const sent = await sendBlobTransaction({ walletClient: wallet, publicClient: devnet.publicClient, to: spammer, data, blobs, gas: BigInt(200_000 + 90_000 * n) })
      if (sent.receipt.status !== 'success') throw new Error(`spam transaction ${sent.hash} reverted`)
      posted += n
      txs++
    }
    const postSeconds = (performance.now() - t) / 1000
    print(`${spam} requests from one key posted in ${txs} blob transactions in ${postSeconds.toFixed(1)} s`)

    // A real newcomer right behind the flood.
    t = performance.now()
    await waitUntilReady(await devnet.addNode({ auto: NEWCOMER }), 1_800_000)
    const floodedSeconds = (performance.now() - t) / 1000
    const newcomerAt = performance.now()
    // The rest of the window: the helper keeps watching the flood.
    await sleep(Math.max(0, SETTLE * 1000 - (performance.now() - newcomerAt)))
    const windowSeconds = (performance.now() - t) / 1000 + postSeconds
    const floodCpu = cpuSeconds(pid) - cpu
    const after = dbCounts(helper.dir)
    const afterDb = dbBytes(helper.dir)
    const decided = Object.fromEntries(after.decisions.map((d) => [`${d.decision}${d.reason ? `:${d.reason}` : ''}`, d.n]))

    print(`newcomer under the flood ready in ${floodedSeconds.toFixed(1)} s: ${(floodedSeconds / baselineSeconds).toFixed(2)} of the baseline newcomer (${baselineSeconds.toFixed(1)} s)`)
    print(
      `helper CPU over the flood window (${windowSeconds.toFixed(0)} s: posting, newcomer, ${SETTLE} s watching): ${floodCpu.toFixed(1)} s, ` +
        `${(floodCpu / windowSeconds).toFixed(3)} of a core; idle over ${SETTLE} s: ${idleCpu.toFixed(1)} s (${(idleCpu / SETTLE).toFixed(3)} of a core)`,
    )
    print(`helper archive: ${before.blobs} → ${after.blobs} blobs (${before.blobBytes} → ${after.blobBytes} bytes); database ${(beforeDb / 1024).toFixed(0)} → ${(afterDb / 1024).toFixed(0)} KiB; RSS ${rssMiB(pid).toFixed(0)} MiB`)
    print(`helper decisions: ${JSON.stringify(decided)}`)

    const caps = capsOf(helper.configPath)
    const dbBound = beforeDb + caps.maxOpenRequests * 1024 + WAL_BYTES
    print(
      `caps: archive ${after.blobBytes} of ${caps.archiveMaxBytes} bytes; unanswered requests stored ${after.open} of ${caps.maxOpenRequests}, ` +
        `at most ${after.openPerRequester} per requester of ${caps.maxOpenPerRequester}; database ${afterDb} of ${dbBound} bytes`,
    )
    const exceeded: string[] = []
    if (after.blobBytes > caps.archiveMaxBytes) exceeded.push(`archive holds ${after.blobBytes} bytes, over blobs.archiveMaxBytes ${caps.archiveMaxBytes}`)
    if (after.open > caps.maxOpenRequests) exceeded.push(`${after.open} unanswered requests stored, over watcher.maxOpenRequests ${caps.maxOpenRequests}`)
    if (after.openPerRequester > caps.maxOpenPerRequester) exceeded.push(`${after.openPerRequester} unanswered requests of one requester stored, over watcher.maxOpenPerRequester ${caps.maxOpenPerRequester}`)
    if (afterDb > dbBound) exceeded.push(`database is ${afterDb} bytes, over ${dbBound} (${beforeDb} before the flood + ${caps.maxOpenRequests} rows of 1 KiB + one WAL)`)
    return exceeded
  } finally {
    await devnet.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const exceeded = await benchSpam((line) => process.stdout.write(line + '\n')).catch((error: Error) => {
    process.stderr.write(`bench:spam: failed: ${error.message.split('\n')[0]}\n`)
    process.exit(1)
  })
  if (exceeded.length > 0) {
    process.stderr.write(`bench:spam: cap exceeded: ${exceeded.join('; ')}\n`)
    process.exitCode = 1
  } else {
    process.stdout.write('caps held\n')
  }
}
