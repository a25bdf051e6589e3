// Runs @phala/dstack-sdk 0.5.8, unchanged, against the endpoint in DSTACK_SIMULATOR_ENDPOINT (a unix socket path or
// an http URL), as a dstack app would. argv[2] is a JSON list of calls; stdout gets one JSON list of results, each
// either the SDK's answer (bytes as hex) or {"error": message} when the SDK threw. Driven by test/dstack.test.ts.
// This package has its own node_modules: the SDK needs @noble/* 1.x, the project uses 2.x.
import { DstackClient } from '@phala/dstack-sdk'

const hex = (bytes) => Buffer.from(bytes).toString('hex')

async function call(client, request) {
  switch (request.op) {
    case 'getKey': {
      const result = await client.getKey(request.path, request.purpose, request.algorithm)
      return { key: hex(result.key), signature_chain: result.signature_chain.map(hex) }
    }
    case 'getQuote': {
      const result = await client.getQuote(Buffer.from(request.reportData, 'hex'))
      return { ...result, rtmrs: result.replayRtmrs() }
    }
    case 'info':
      return await client.info()
    case 'version':
      return await client.version()
    case 'isReachable':
      return { reachable: await client.isReachable() }
    default:
      throw new Error(`unknown op ${request.op}`)
  }
}

const requests = JSON.parse(process.argv[2] ?? '[]')
const client = new DstackClient()
const results = []
for (const request of requests) {
  try {
    results.push(await call(client, request))
  } catch (error) {
    results.push({ error: error instanceof Error ? error.message : String(error) })
  }
}
process.stdout.write(JSON.stringify(results))
