// Sidecar version discovery (docs/protocol.md#blob-transactions) against real anvils on osaka and cancun, and against
// an RPC that does not know eth_config (then the configured Osaka time decides, or the node says what to set).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createPublicClient, custom, http, type PublicClient } from 'viem'
import { foundry } from 'viem/chains'
import { startAnvil, type Anvil } from '../devnet/anvil.ts'
import { HardforkUnknownError, sidecarVersionSource } from './hardfork.ts'

describe('sidecarVersionSource', () => {
  let osaka: Anvil
  let cancun: Anvil
  before(async () => {
    ;[osaka, cancun] = await Promise.all([startAnvil({ hardfork: 'osaka' }), startAnvil({ hardfork: 'cancun' })])
  })
  after(async () => {
    await Promise.all([osaka?.stop(), cancun?.stop()])
  })

  const client = (anvil: Anvil) => createPublicClient({ chain: foundry, transport: http(anvil.rpcUrl) }) as PublicClient
  /** The same anvil behind an RPC that answers eth_config with "method not found", as many providers still do. */
  const withoutEthConfig = (anvil: Anvil) => {
    const forward = http(anvil.rpcUrl)({ chain: foundry, retryCount: 0 })
    return createPublicClient({
      chain: foundry,
      transport: custom({
        async request({ method, params }: { method: string; params: unknown }) {
          if (method === 'eth_config') throw Object.assign(new Error('the method eth_config does not exist/is not available'), { code: -32601 })
          return forward.request({ method, params } as never)
        },
      }, { retryCount: 0 }),
    }) as PublicClient
  }

  test('default: eth_config of an osaka node gives v1, of a cancun node v0', async () => {
    const onOsaka = sidecarVersionSource(client(osaka))
    assert.equal(await onOsaka.current(), 1)
    assert.equal(onOsaka.how, 'eth_config')
    assert.equal(await sidecarVersionSource(client(cancun)).current(), 0)
  })

  test('default: without eth_config, the Osaka time against the head block decides', async () => {
    const head = await client(osaka).getBlock()
    assert.equal(await sidecarVersionSource(withoutEthConfig(osaka), { osakaTime: head.timestamp }).current(), 1)
    const before = sidecarVersionSource(withoutEthConfig(osaka), { osakaTime: head.timestamp + 3600n })
    assert.equal(await before.current(), 0)
    assert.equal(before.how, 'osaka-time')
  })

  test('error: no eth_config and no Osaka time is a clear error, never a guess', async () => {
    await assert.rejects(sidecarVersionSource(withoutEthConfig(osaka)).current(), (error) => {
      assert.ok(error instanceof HardforkUnknownError)
      assert.match(error.message, /set chain\.osakaTime/)
      return true
    })
  })
})
