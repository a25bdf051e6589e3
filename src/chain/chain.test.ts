import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createPublicClient, LimitExceededRpcError } from 'viem'
import { startAnvil, type Anvil } from '../devnet/anvil.ts'
import { startStrictRpc, type StrictRpc } from '../devnet/liveLike.ts'
import { chainFor, rpcTransport } from './chain.ts'

describe('rpcTransport: a provider\'s rate limit (-32005)', () => {
  let anvil: Anvil
  before(async () => {
    anvil = await startAnvil({ chainId: 31337 })
  })
  after(async () => {
    await anvil?.stop()
  })

  // One call a second; the proxy's clock moves only when the test says, so each case is exact.
  async function limited(clock: () => number): Promise<StrictRpc> {
    return startStrictRpc({ upstream: anvil.rpcUrl, requestsPerSecond: 1, now: clock })
  }
  const client = (url: string) => createPublicClient({ chain: chainFor(31337, url), transport: rpcTransport(url, 10_000) })

  test('default: a call refused with -32005 is retried and answered once the limit allows it', async () => {
    let proxy: StrictRpc | undefined
    // The clock moves a second past each refusal: the retry finds a token.
    proxy = await limited(() => (proxy?.refused.rateLimited ?? 0) * 1000)
    try {
      const rpc = client(proxy.url)
      assert.equal(await rpc.getChainId(), 31337)
      assert.equal(await rpc.getBlockNumber({ cacheTime: 0 }), 0n)
      assert.equal(proxy.refused.rateLimited, 1, 'the second call was refused once, then retried')
    } finally {
      await proxy.close()
    }
  })

  test('error: a limit that never lifts fails the call with LimitExceededRpcError after two retries, for its caller to back off', async () => {
    const proxy = await limited(() => 0)
    try {
      const rpc = client(proxy.url)
      assert.equal(await rpc.getChainId(), 31337)
      await assert.rejects(rpc.getBlockNumber({ cacheTime: 0 }), (error: Error) => {
        assert.ok(error instanceof LimitExceededRpcError || (error as { cause?: unknown }).cause instanceof LimitExceededRpcError, String(error))
        return true
      })
      assert.equal(proxy.refused.rateLimited, 3, 'the call and its two retries')
    } finally {
      await proxy.close()
    }
  })
})
