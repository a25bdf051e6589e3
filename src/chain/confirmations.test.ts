// Confirmations with progress (docs/protocol.md#command-line) on a real anvil: the wait ends only once the block is
// buried deep enough, and `keymanager deploy` says what it will do, then how the confirmations come in.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../devnet/anvil.ts'
import { runDeploy } from '../cli/deploy.ts'
import { clientsFor, fundedAccount } from '../../test/registryFixture.ts'
import { defaultConfirmations, waitForConfirmations } from './confirmations.ts'

let anvil: Anvil
before(async () => {
  anvil = await startAnvil({ chainId: foundry.id })
})
after(async () => {
  await anvil?.stop()
})

describe('confirmations', () => {
  test('default: resolves once the block has N confirmations, reporting each count it sees', async () => {
    const { publicClient, walletFor, testClient } = clientsFor(anvil.rpcUrl)
    const account = await fundedAccount(anvil.rpcUrl)
    const hash = await walletFor(account).sendTransaction({ to: account.address, value: 0n })
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    const lines: string[] = []
    let done = false
    const waiting = waitForConfirmations(publicClient, receipt, 3, (l) => lines.push(l), 20).then(() => (done = true))
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(done, false, 'one confirmation is not three')
    await testClient.mine({ blocks: 2 })
    await waiting
    assert.deepEqual(
      lines.map((l) => l.replace(/^ {2}0x[0-9a-f]{64}: in block \d+, /, '')),
      ['1/3 confirmations', '3/3 confirmations'],
    )
    assert.deepEqual([defaultConfirmations(31337), defaultConfirmations(1), defaultConfirmations(560048)], [1, 3, 3])
  })

  test('default: keymanager deploy --confirmations 2 prints what it will do, then the confirmations', async () => {
    const { testClient } = clientsFor(anvil.rpcUrl)
    const fresh = generatePrivateKey()
    const keyFile = join(mkdtempSync(join(tmpdir(), 'km-deploy-')), 'owner.key')
    writeFileSync(keyFile, fresh)
    await testClient.setBalance({ address: privateKeyToAccount(fresh).address, value: 10n ** 18n })
    const out: string[] = []
    const err: string[] = []
    const mining = setInterval(() => void testClient.mine({ blocks: 1 }).catch(() => {}), 300)
    try {
      assert.equal(await runDeploy(['--rpc', anvil.rpcUrl, '--owner-key-file', keyFile, '--confirmations', '2'], {}, (l) => out.push(l), (l) => err.push(l)), 0)
    } finally {
      clearInterval(mining)
    }
    assert.match(out[0]!, /^0x[0-9a-fA-F]{40}$/)
    assert.match(err[0]!, new RegExp(`^deploying KeyManager\\(owner ${privateKeyToAccount(fresh).address}, measurementDelay 0 s\\) on chain 31337 from 0x[0-9a-fA-F]{40}, then waiting for 2 confirmation\\(s\\)$`))
    assert.match(err[1]!, /^ {2}deployed at 0x[0-9a-fA-F]{40} in block \d+ \(tx 0x[0-9a-f]{64}\)$/)
    assert.match(err.at(-1)!, /2\/2 confirmations$/)
    await assert.rejects(runDeploy(['--rpc', anvil.rpcUrl, '--owner-key-file', keyFile, '--confirmations', '0'], {}, () => {}, () => {}), /--confirmations must be a number of blocks from 1 to 999/)
  })
})
