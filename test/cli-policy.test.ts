// `keymanager policy add|remove|list|tcb` against a real anvil and registry, in-process (runPolicy) and as a child
// process.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createPublicClient, createWalletClient, http, type Address, type Hex } from 'viem'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { createRegistryClient, type RegistryClient } from '../src/chain/registry.ts'
import { devAccount } from '../src/devnet/network.ts'
import { runPolicy } from '../src/cli/policy.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'

const BIN = fileURLToPath(new URL('../bin/keymanager.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'km-cli-policy-'))
const file = (name: string, content: string | Uint8Array) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}
const keyHex = (index: number) => `0x${Buffer.from(devAccount(index).getHdKey().privateKey!).toString('hex')}`
const ownerKeyFile = file('owner.key', keyHex(0) + '\n')
const strangerKeyFile = file('stranger.key', keyHex(1))
const sgxQuote = new Uint8Array(readFileSync(new URL('fixtures/dcap/sgx_quote', import.meta.url)))

let anvil: Anvil
let registry: Address
let pendingRegistry: Address
let client: RegistryClient
let quoteFile: string
let quoteMeasurement: ReturnType<typeof measurementOf>
const printed: string[] = []

async function policy(...argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runPolicy(argv, (l) => out.push(l), (l) => err.push(l))
  printed.push(...out, ...err)
  return { code, out, err }
}
const on = (address: Address = registry) => ['--rpc', anvil.rpcUrl, '--registry', address]

before(async () => {
  anvil = await startAnvil({ chainId: foundry.id })
  const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } }
  const publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50 })
  const walletClient = createWalletClient({ account: devAccount(0), chain, transport: http(anvil.rpcUrl) })
  registry = await deployKeyManager({ walletClient, publicClient, owner: walletClient.account.address, measurementDelay: 0n })
  pendingRegistry = await deployKeyManager({ walletClient, publicClient, owner: walletClient.account.address, measurementDelay: 3600n })
  client = createRegistryClient({ publicClient, address: registry })
  const quote = await simulatedQuoteProvider({ platform: createDevnetPki().mintPlatform(), measurement: simulatedMeasurement('policy-cli') }).getQuote(new Uint8Array(64))
  quoteFile = file('node.quote', quote)
  quoteMeasurement = measurementOf(quote)
})
after(async () => {
  await anvil?.stop()
})

describe('policy', () => {
  test('default: add from a quote file and from raw hex; list; remove', async () => {
    const added = await policy('add', quoteFile, ...on(), '--owner-key-file', ownerKeyFile)
    assert.equal(added.code, 0, added.err.join('\n'))
    assert.match(added.out[0]!, new RegExp(`^✓ measurement ${quoteMeasurement.measurementId} \\(TDX\\) added, allowed from \\d{4}-`))
    assert.match(added.out[1]!, /^ {2}tx 0x[0-9a-f]{64}$/)
    assert.deepEqual(added.err, [`addMeasurement: sent ${added.out[1]!.slice(5)}, waiting for its receipt …`]) // progress on stderr
    assert.equal(await client.isMeasurementAllowed(quoteMeasurement.measurementId), true)

    const sgx = measurementOf(sgxQuote)
    const raw = await policy('add', sgx.measurementRaw.slice(2), ...on(), '--owner-key-file', ownerKeyFile, '--json')
    assert.equal(raw.code, 0, raw.err.join('\n'))
    const json = JSON.parse(raw.out.join('\n'))
    assert.equal(json.action, 'added')
    assert.equal(json.id, sgx.measurementId)
    assert.equal(json.teeType, 'sgx')

    const list = await policy('list', ...on(), '--json')
    assert.equal(list.code, 0, list.err.join('\n'))
    const entries = JSON.parse(list.out.join('\n')) as { id: Hex; status: string; allowed: boolean; fields: Record<string, Hex> }[]
    assert.deepEqual(entries.map((e) => [e.id, e.status]), [
      [quoteMeasurement.measurementId, 'allowed'],
      [sgx.measurementId, 'allowed'],
    ])
    assert.deepEqual(entries[0]!.fields, quoteMeasurement.measurements)
    assert.deepEqual(entries[1]!.fields, sgx.measurements)

    const removed = await policy('remove', sgx.measurementId, ...on(), '--owner-key-file', ownerKeyFile)
    assert.equal(removed.code, 0, removed.err.join('\n'))
    assert.equal(removed.out[0], `✓ measurement ${sgx.measurementId} removed`)
    assert.equal(await client.isMeasurementAllowed(sgx.measurementId), false)
    const after = await policy('list', ...on())
    assert.deepEqual(
      after.out.map((l) => l.replace(/ since .*/, '')),
      [`${quoteMeasurement.measurementId}  tdx  allowed`, `${sgx.measurementId}  sgx  removed`],
    )
    // Removed by quote file, then added back.
    assert.equal((await policy('remove', quoteFile, ...on(), '--owner-key-file', ownerKeyFile)).code, 0)
    assert.equal(await client.isMeasurementAllowed(quoteMeasurement.measurementId), false)
    assert.equal((await policy('add', quoteFile, ...on(), '--owner-key-file', ownerKeyFile)).code, 0)
    assert.equal(await client.isMeasurementAllowed(quoteMeasurement.measurementId), true)
  })

  test('default: a measurement delay shows as pending', async () => {
    assert.equal((await policy('add', quoteFile, ...on(pendingRegistry), '--owner-key-file', ownerKeyFile)).code, 0)
    const list = await policy('list', ...on(pendingRegistry))
    assert.match(list.out[0]!, new RegExp(`^${quoteMeasurement.measurementId} {2}tdx {2}pending until \\d{4}-`))
  })

  test('default: tcb shows the policy, sets it, and sets FMSPCs', async () => {
    const shown = await policy('tcb', ...on())
    assert.equal(shown.code, 0, shown.err.join('\n'))
    assert.deepEqual(shown.out, ['accepted TCB statuses  UpToDate', 'max collateral age     30 days', 'FMSPC allow-list       off', 'min TCB evaluation     none'])

    const set = await policy(
      'tcb', ...on(), '--owner-key-file', ownerKeyFile,
      '--accept', 'UpToDate,SWHardeningNeeded', '--max-collateral-age', '86400', '--fmspc-allowlist', 'on', '--allow-fmspc', 'de7e00000001', '--allow-fmspc', '0xB0C06F000000',
      '--min-tcb-evaluation', '17',
    )
    assert.equal(set.code, 0, set.err.join('\n'))
    assert.match(set.out[0]!, /^✓ TCB policy updated \(4 tx: 0x[0-9a-f]{64}, /)
    assert.deepEqual(set.out.slice(1), [
      'accepted TCB statuses  UpToDate, SWHardeningNeeded',
      'max collateral age     1 day',
      'FMSPC allow-list       on (de7e00000001, b0c06f000000)',
      'min TCB evaluation     17',
    ])
    assert.deepEqual(await client.tcbPolicy(), { acceptedStatuses: 3, maxCollateralAge: 86400n, fmspcAllowlistOn: true, minTcbEvaluationDataNumber: 17 })
    assert.equal(await client.isFmspcAllowed('0xde7e00000001'), true)
    assert.equal(await client.isFmspcAllowed('0xde7e00000002'), false)

    // Only what is given changes.
    const partial = await policy('tcb', ...on(), '--owner-key-file', ownerKeyFile, '--disallow-fmspc', 'b0c06f000000', '--fmspc-allowlist', 'off', '--json')
    assert.equal(partial.code, 0, partial.err.join('\n'))
    const json = JSON.parse(partial.out.join('\n'))
    assert.deepEqual({ ...json, txHashes: json.txHashes.length }, {
      acceptedStatuses: ['UpToDate', 'SWHardeningNeeded'],
      acceptedStatusesMask: 3,
      maxCollateralAge: 86400,
      fmspcAllowlistOn: false,
      allowedFmspcs: ['0xde7e00000001'],
      minTcbEvaluationDataNumber: 17,
      txHashes: 2,
    })
    const reset = ['--accept', 'UpToDate', '--max-collateral-age', '2592000', '--min-tcb-evaluation', '0']
    assert.equal((await policy('tcb', ...on(), '--owner-key-file', ownerKeyFile, ...reset)).code, 0)
    assert.equal(await client.minTcbEvaluationDataNumber(), 0)
  })

  test('default: --unsigned prints a Safe Transaction Builder batch that, sent by the owner, does what policy would have done', async () => {
    const sgx = measurementOf(sgxQuote)
    const add = await policy('add', sgx.measurementRaw.slice(2), ...on(), '--unsigned')
    assert.equal(add.code, 0, add.err.join('\n'))
    const batch = JSON.parse(add.out.join('\n')) as { version: string; chainId: string; meta: { createdFromSafeAddress: Address }; transactions: { to: Address; value: string; data: Hex }[] }
    assert.deepEqual([batch.version, batch.chainId, batch.meta.createdFromSafeAddress], ['1.0', String(foundry.id), devAccount(0).address])
    assert.equal(batch.transactions.length, 1)
    assert.equal(await client.isMeasurementAllowed(sgx.measurementId), false, 'nothing was sent')
    // The Safe (here: the owner's key) sends it as printed.
    const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } }
    const owner = createWalletClient({ account: devAccount(0), chain, transport: http(anvil.rpcUrl) })
    const tx = batch.transactions[0]!
    const hash = await owner.sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value) })
    await createPublicClient({ chain, transport: http(anvil.rpcUrl) }).waitForTransactionReceipt({ hash })
    assert.equal(await client.isMeasurementAllowed(sgx.measurementId), true)

    const tcb = await policy('tcb', ...on(), '--allow-fmspc', '00906ED50000', '--disallow-fmspc', '00A06F000000', '--unsigned')
    assert.equal(tcb.code, 0, tcb.err.join('\n'))
    assert.equal((JSON.parse(tcb.out.join('\n')) as { transactions: unknown[] }).transactions.length, 2)
    // A call the owner could not make is named now, not in the Safe.
    const again = await policy('remove', '0x' + 'ab'.repeat(32), ...on(), '--unsigned')
    assert.equal(again.code, 1)
    assert.match(again.err.join('\n'), /^keymanager policy: removeMeasurement would revert for the owner 0x[0-9a-fA-F]{40}: /)
    assert.equal((await policy('add', quoteFile, ...on(), '--unsigned', '--owner-key-file', ownerKeyFile)).code, 2)
  })

  test('default: bootstrapper: a multisig owner names it with --unsigned (the printed batch, sent, names it); shown, removed with none', async () => {
    const host = devAccount(7).address
    const shown = await policy('bootstrapper', ...on())
    assert.deepEqual([shown.code, shown.out], [0, ['no bootstrapper: only the owner can send bootstrap']])
    const unsigned = await policy('bootstrapper', host, ...on(), '--unsigned')
    assert.equal(unsigned.code, 0, unsigned.err.join('\n'))
    const batch = JSON.parse(unsigned.out.join('\n')) as { meta: { createdFromSafeAddress: Address }; transactions: { to: Address; value: string; data: Hex }[] }
    assert.equal(batch.meta.createdFromSafeAddress, devAccount(0).address)
    assert.equal(batch.transactions.length, 1)
    assert.equal(await client.bootstrapper(), '0x0000000000000000000000000000000000000000', 'nothing was sent')
    const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } }
    const owner = createWalletClient({ account: devAccount(0), chain, transport: http(anvil.rpcUrl) })
    const tx = batch.transactions[0]!
    const hash = await owner.sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value) })
    await createPublicClient({ chain, transport: http(anvil.rpcUrl) }).waitForTransactionReceipt({ hash })
    assert.equal(await client.bootstrapper(), host)
    const json = await policy('bootstrapper', ...on(), '--json')
    assert.deepEqual(JSON.parse(json.out.join('\n')), { bootstrapper: host })

    const removed = await policy('bootstrapper', 'none', ...on(), '--owner-key-file', ownerKeyFile)
    assert.equal(removed.code, 0, removed.err.join('\n'))
    assert.equal(removed.out[0], '✓ bootstrapper removed: only the owner can send bootstrap')
    assert.equal(await client.bootstrapper(), '0x0000000000000000000000000000000000000000')
    // Only the owner names it; bad arguments are usage errors.
    const stranger = await policy('bootstrapper', host, ...on(), '--owner-key-file', strangerKeyFile)
    assert.deepEqual([stranger.code, stranger.err], [1, [`keymanager policy: setBootstrapper refused: KeyManagerUnauthorizedAccount(${devAccount(1).address})`]])
    assert.equal((await policy('bootstrapper', 'nobody', ...on(), '--owner-key-file', ownerKeyFile)).code, 2)
    assert.equal((await policy('bootstrapper', host, host, ...on(), '--owner-key-file', ownerKeyFile)).code, 2)
    assert.equal((await policy('bootstrapper', ...on(), '--unsigned')).code, 2)
  })

  test('default: owner and request-ttl: shown; set signed and with --unsigned (the printed batch, sent by the owner, does the same); ownership moves in two steps', async () => {
    const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } }
    const publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50 })
    const wallet = (index: number) => createWalletClient({ account: devAccount(index), chain, transport: http(anvil.rpcUrl) })
    // A registry of its own: its ownership moves here.
    const own = await deployKeyManager({ walletClient: wallet(0), publicClient, owner: devAccount(0).address, measurementDelay: 0n })
    const read = <T>(functionName: string) => publicClient.readContract({ address: own, abi: keyManagerAbi, functionName } as never) as Promise<T>
    async function sendBatch(result: { code: number; out: string[]; err: string[] }, from: number) {
      assert.equal(result.code, 0, result.err.join('\n'))
      const batch = JSON.parse(result.out.join('\n')) as { meta: { createdFromSafeAddress: Address }; transactions: { to: Address; value: string; data: Hex }[] }
      assert.deepEqual([batch.meta.createdFromSafeAddress, batch.transactions.length], [devAccount(from).address, 1])
      const tx = batch.transactions[0]!
      await publicClient.waitForTransactionReceipt({ hash: await wallet(from).sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value) }) })
    }

    // request-ttl: shown (the default), set signed, then with --unsigned.
    const ttl = await policy('request-ttl', ...on(own))
    assert.deepEqual([ttl.code, ttl.out], [0, ['request TTL 7200 blocks']])
    const set = await policy('request-ttl', '600', ...on(own), '--owner-key-file', ownerKeyFile)
    assert.equal(set.code, 0, set.err.join('\n'))
    assert.equal(set.out[0], '✓ request TTL 600 blocks')
    assert.equal(await read<bigint>('requestTtl'), 600n)
    const unsignedTtl = await policy('request-ttl', '1200', ...on(own), '--unsigned')
    assert.equal(await read<bigint>('requestTtl'), 600n, 'nothing was sent')
    await sendBatch(unsignedTtl, 0)
    assert.deepEqual(JSON.parse((await policy('request-ttl', ...on(own), '--json')).out.join('\n')), { requestTtl: 1200 })

    // owner: two steps. Signed: 0 names 2, 2 accepts with its key. --unsigned: 2 (a Safe) names 3, 3's Safe accepts.
    const shown = await policy('owner', ...on(own))
    assert.deepEqual(shown.out, [`owner ${devAccount(0).address}`, 'no ownership transfer pending'])
    const transfer = await policy('owner', devAccount(2).address, ...on(own), '--owner-key-file', ownerKeyFile)
    assert.equal(transfer.code, 0, transfer.err.join('\n'))
    assert.equal(await read<Address>('pendingOwner'), devAccount(2).address)
    assert.equal(await read<Address>('owner'), devAccount(0).address, 'not before it is accepted')
    assert.deepEqual(JSON.parse((await policy('owner', ...on(own), '--json')).out.join('\n')), { owner: devAccount(0).address, pendingOwner: devAccount(2).address })
    const stranger = await policy('owner', 'accept', ...on(own), '--owner-key-file', strangerKeyFile)
    assert.deepEqual([stranger.code, stranger.err], [1, [`keymanager policy: acceptOwnership refused: KeyManagerUnauthorizedAccount(${devAccount(1).address})`]])
    const accepted = await policy('owner', 'accept', ...on(own), '--owner-key-file', file('owner2.key', keyHex(2)))
    assert.equal(accepted.code, 0, accepted.err.join('\n'))
    assert.equal(await read<Address>('owner'), devAccount(2).address)
    assert.equal(await read<Address>('pendingOwner'), '0x0000000000000000000000000000000000000000')
    // --unsigned: the batch is simulated from (and named for) the current owner, 2; accept's from the pending owner, 3.
    await sendBatch(await policy('owner', devAccount(3).address, ...on(own), '--unsigned'), 2)
    assert.equal(await read<Address>('pendingOwner'), devAccount(3).address)
    await sendBatch(await policy('owner', 'accept', ...on(own), '--unsigned'), 3)
    assert.equal(await read<Address>('owner'), devAccount(3).address)
    // none cancels a pending transfer; accept with none pending is named.
    const noneToAccept = await policy('owner', 'accept', ...on(own), '--unsigned')
    assert.deepEqual([noneToAccept.code, noneToAccept.err], [1, ['keymanager policy: no ownership transfer is pending: the owner starts one with policy owner ADDR']])
    await sendBatch(await policy('owner', devAccount(4).address, ...on(own), '--unsigned'), 3)
    await sendBatch(await policy('owner', 'none', ...on(own), '--unsigned'), 3)
    assert.equal(await read<Address>('pendingOwner'), '0x0000000000000000000000000000000000000000')
    // The former owner can no longer act.
    const former = await policy('request-ttl', '100', ...on(own), '--owner-key-file', ownerKeyFile)
    assert.deepEqual([former.code, former.err], [1, [`keymanager policy: setRequestTtl refused: KeyManagerUnauthorizedAccount(${devAccount(0).address})`]])
  })

  test('error: the chain refuses: exit 1 with the revert named in one line', async () => {
    const again = await policy('add', quoteFile, ...on(), '--owner-key-file', ownerKeyFile)
    assert.equal(again.code, 1)
    assert.deepEqual(again.err, [`keymanager policy: addMeasurement refused: KeyManagerMeasurementAlreadyAdded(${quoteMeasurement.measurementId})`])
    const stranger = await policy('remove', quoteMeasurement.measurementId, ...on(), '--owner-key-file', strangerKeyFile)
    assert.equal(stranger.code, 1)
    assert.deepEqual(stranger.err, [`keymanager policy: removeMeasurement refused: KeyManagerUnauthorizedAccount(${devAccount(1).address})`])
    const unknown = await policy('remove', `0x${'ab'.repeat(32)}`, ...on(), '--owner-key-file', ownerKeyFile)
    assert.deepEqual(unknown.err, [`keymanager policy: removeMeasurement refused: KeyManagerUnknownMeasurement(0x${'ab'.repeat(32)})`])
    const noContract = await policy('list', '--rpc', anvil.rpcUrl, '--registry', `0x${'12'.repeat(20)}`)
    assert.equal(noContract.code, 1)
    assert.deepEqual(noContract.err, [`keymanager policy: no contract at 0x${'12'.repeat(20)} on chain 31337`])
    const down = await policy('list', '--rpc', 'http://127.0.0.1:1/secret-api-key', '--registry', registry)
    assert.equal(down.code, 1)
    assert.equal(down.err.length, 1)
    assert.match(down.err[0]!, /^keymanager policy: cannot reach the RPC: /)
    assert.doesNotMatch(down.err[0]!, /secret-api-key/)
  })

  test('error: bad flags and arguments exit 2 with one line', async () => {
    const cases: [string[], string | RegExp][] = [
      [[], /^keymanager policy: policy needs a command: /],
      [['show'], "keymanager policy: unknown policy command 'show' (add, remove, list, tcb, bootstrapper, owner or request-ttl)"],
      [['owner', 'someone', ...on(), '--owner-key-file', ownerKeyFile], "keymanager policy: policy owner takes a 0x address (transferOwnership), none (cancel a pending transfer) or accept, got 'someone'"],
      [['owner', devAccount(3).address, devAccount(4).address, ...on()], 'keymanager policy: policy owner takes at most one argument, got 2'],
      [['owner', devAccount(3).address, ...on()], "keymanager policy: this command sends a transaction: give --owner-key-file F (the registry owner's key)"],
      [['owner', ...on(), '--unsigned'], 'keymanager policy: policy owner without an argument only reads: --unsigned does not apply'],
      [['owner', 'accept', ...on(), '--unsigned', '--owner-key-file', ownerKeyFile], 'keymanager policy: --unsigned signs nothing: leave out --owner-key-file'],
      [['request-ttl', '0', ...on(), '--owner-key-file', ownerKeyFile], "keymanager policy: policy request-ttl takes a number of blocks from 1 to 4294967295, got '0'"],
      [['request-ttl', '4294967296', ...on(), '--unsigned'], "keymanager policy: policy request-ttl takes a number of blocks from 1 to 4294967295, got '4294967296'"],
      [['request-ttl', '1h', ...on(), '--unsigned'], "keymanager policy: policy request-ttl takes a number of blocks from 1 to 4294967295, got '1h'"],
      [['request-ttl', ...on(), '--unsigned'], 'keymanager policy: policy request-ttl without an argument only reads: --unsigned does not apply'],
      [['request-ttl', '100', ...on(), '--accept', 'UpToDate'], 'keymanager policy: --accept belongs to policy tcb'],
      [['list'], 'keymanager policy: give --rpc URL'],
      [['list', '--rpc', 'ws://x', '--registry', registry], 'keymanager policy: --rpc must be an http(s) URL'],
      [['list', ...on('0x1234' as Address)], "keymanager policy: --registry must be a 0x address, got '0x1234'"],
      [['list', 'extra', ...on()], 'keymanager policy: policy list takes no arguments, got 1'],
      [['add', ...on()], 'keymanager policy: policy add takes one argument, got 0'],
      [['add', quoteFile, ...on()], "keymanager policy: this command sends a transaction: give --owner-key-file F (the registry owner's key)"],
      [['add', quoteFile, ...on(), '--owner-key-file', join(dir, 'missing')], 'keymanager policy: --owner-key-file: cannot read it (ENOENT)'],
      [['add', quoteFile, ...on(), '--owner-key-file', quoteFile], 'keymanager policy: --owner-key-file must hold 0x followed by 64 hex digits'],
      [['add', quoteMeasurement.measurementId, ...on(), '--owner-key-file', ownerKeyFile], 'keymanager policy: add takes a quote file or a raw measurement, not a measurement id (the contract needs the raw fields)'],
      [['add', '01abcd', ...on(), '--owner-key-file', ownerKeyFile], 'keymanager policy: a raw measurement is 305 bytes starting 01 (TDX) or 69 bytes starting 02 (SGX), got 3 bytes'],
      [['add', join(dir, 'nope.quote'), ...on(), '--owner-key-file', ownerKeyFile], `keymanager policy: ${join(dir, 'nope.quote')}: ENOENT`],
      [['add', quoteFile, ...on(), '--accept', 'UpToDate'], 'keymanager policy: --accept belongs to policy tcb'],
      [['remove', 'abcd', ...on(), '--owner-key-file', ownerKeyFile], 'keymanager policy: remove takes a measurement id (32 bytes of hex) or a quote file, got 2 bytes of hex'],
      [['tcb', ...on(), '--accept', 'UpToDate,Revoked'], /^keymanager policy: --accept takes TCB statuses from UpToDate, .* \(Revoked is never accepted\), got 'Revoked'$/],
      [['tcb', ...on(), '--max-collateral-age', '0'], "keymanager policy: --max-collateral-age must be a positive number of seconds, got '0'"],
      [['tcb', ...on(), '--fmspc-allowlist', 'yes'], "keymanager policy: --fmspc-allowlist takes on or off, got 'yes'"],
      [['tcb', ...on(), '--min-tcb-evaluation', '1.5'], "keymanager policy: --min-tcb-evaluation must be a TCB evaluation data number (0 for none), got '1.5'"],
      [['tcb', ...on(), '--min-tcb-evaluation', '4294967296'], "keymanager policy: --min-tcb-evaluation must be a TCB evaluation data number (0 for none), got '4294967296'"],
      [['tcb', ...on(), '--allow-fmspc', 'b0c06f'], "keymanager policy: --allow-fmspc takes an FMSPC, 6 bytes of hex, got 'b0c06f'"],
      [['tcb', ...on(), '--allow-fmspc', 'b0c06f000000', '--disallow-fmspc', 'B0C06F000000'], 'keymanager policy: FMSPC b0c06f000000 is both allowed and disallowed'],
      [['tcb', ...on(), '--accept', 'UpToDate'], "keymanager policy: this command sends a transaction: give --owner-key-file F (the registry owner's key)"],
      [['list', ...on(), '--from-block', 'latest'], "keymanager policy: --from-block must be a block number, got 'latest'"],
      [['list', ...on(), '--nope'], /^keymanager policy: Unknown option '--nope'/],
    ]
    for (const [args, expected] of cases) {
      const { code, out, err } = await policy(...args)
      assert.equal(code, 2, `${args.join(' ')}: ${err.join('\n')}`)
      assert.deepEqual(out, [])
      assert.equal(err.length, 1, args.join(' '))
      if (typeof expected === 'string') assert.equal(err[0], expected)
      else assert.match(err[0]!, expected)
    }
  })

  test('security: no key is ever printed', () => {
    const all = printed.join('\n').toLowerCase()
    for (const key of [keyHex(0), keyHex(1)]) {
      assert.ok(!all.includes(key.slice(2).toLowerCase()), 'a private key was printed')
    }
  })

  test('default: as a child process', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'policy', 'list', ...on()])
    assert.equal(stderr, '')
    assert.match(stdout, new RegExp(`^${quoteMeasurement.measurementId} {2}tdx {2}allowed since `))
  })
})
