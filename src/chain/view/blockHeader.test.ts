// Block hashes reproduce from the RPC's header fields on every fork anvil runs (cancun, prague, osaka), for the
// genesis block, empty blocks and blocks with blob transactions; and any header field a lying RPC changes is caught.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { fromRlp, keccak256, toRlp, type Hex } from 'viem'
import { startAnvil, type Anvil } from '../../devnet/anvil.ts'
import { clientsFor, deployRegistryFixture, fundedAccount } from '../../../test/registryFixture.ts'
import { encodeBlockHeader, verifyBlockHeader, type RpcBlockHeader } from './blockHeader.ts'
import { ChainViewError } from './errors.ts'

const started: Anvil[] = []
after(async () => {
  await Promise.all(started.map((a) => a.stop()))
})

async function blocksOf(hardfork: 'cancun' | 'prague' | 'osaka') {
  const anvil = await startAnvil({ hardfork })
  started.push(anvil)
  const { publicClient } = clientsFor(anvil.rpcUrl)
  const fixture = await deployRegistryFixture(anvil.rpcUrl) // a deployment and a blob transaction
  await fixture.requestOnboard(await fundedAccount(anvil.rpcUrl))
  await publicClient.request({ method: 'evm_mine' } as never)
  const head = await publicClient.getBlockNumber({ cacheTime: 0 })
  const blocks: RpcBlockHeader[] = []
  for (let n = 0n; n <= head; n++) {
    const { hash } = await publicClient.getBlock({ blockNumber: n })
    blocks.push((await publicClient.request({ method: 'eth_getBlockByHash', params: [hash, false] } as never)) as RpcBlockHeader)
  }
  return blocks
}

function refused(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (error: unknown) => error instanceof ChainViewError && error.reason === 'invalid_block' && pattern.test(error.message))
}

describe('block header hash', () => {
  for (const hardfork of ['cancun', 'prague', 'osaka'] as const) {
    test(`default: every block hash reproduces on ${hardfork}`, async () => {
      const blocks = await blocksOf(hardfork)
      assert.ok(blocks.some((b) => BigInt(b.blobGasUsed as Hex) > 0n), 'a block with blob gas')
      assert.ok(blocks.some((b) => (b.transactions as unknown[]).length === 0 && b.number !== '0x0'), 'an empty block')
      if (hardfork !== 'cancun') assert.ok(blocks.every((b) => typeof b.requestsHash === 'string'), 'prague headers carry requestsHash')
      for (const block of blocks) {
        assert.equal(keccak256(encodeBlockHeader(block)), block.hash, `${hardfork} block ${block.number}`)
        const verified = verifyBlockHeader(block, block.hash as Hex)
        assert.deepEqual(verified, {
          hash: block.hash,
          number: BigInt(block.number as Hex),
          stateRoot: block.stateRoot,
          timestamp: BigInt(block.timestamp as Hex),
        })
      }
    })
  }

  test('error: a changed field, a dropped fork field, an unknown field, another block', async () => {
    const blocks = await blocksOf('prague')
    const block = blocks.find((b) => BigInt(b.blobGasUsed as Hex) > 0n)!
    const hash = block.hash as Hex
    for (const [field, value] of [
      ['stateRoot', keccak256('0x01')],
      ['timestamp', '0x1'],
      ['number', '0x99'],
      ['blobGasUsed', '0x0'],
      ['extraData', '0x01'],
    ] as const) {
      refused(() => verifyBlockHeader({ ...block, [field]: value }, hash), /hashes to/)
    }
    // A header missing a field an earlier fork added, or with a field of a fork this code does not know.
    refused(() => verifyBlockHeader({ ...block, withdrawalsRoot: undefined }, hash), /but not withdrawalsRoot/)
    refused(() => verifyBlockHeader({ ...block, requestsHash: undefined }, hash), /hashes to/)
    // A later fork's header (one more field, e.g. EIP-7928's block access list hash): this code does not know the
    // field, so it cannot reproduce the hash, and refuses rather than guess.
    const future = keccak256(toRlp([...(fromRlp(encodeBlockHeader(block), 'hex') as Hex[]), keccak256('0x42')]))
    refused(() => verifyBlockHeader({ ...block, blockAccessListHash: keccak256('0x42') }, future), /hashes to/)
    // The light client vouches for one hash; a different (real) block is refused.
    refused(() => verifyBlockHeader(blocks[1]!, hash), /hashes to/)
    refused(() => verifyBlockHeader(null, hash), /has no block/)
    refused(() => verifyBlockHeader({ ...block, stateRoot: '0x1234' }, hash), /not 32 bytes/)
    refused(() => verifyBlockHeader({ ...block, gasUsed: 12 }, hash), /not hex/)
  })
})
