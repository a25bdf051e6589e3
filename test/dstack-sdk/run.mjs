// Runs @phala/dstack-sdk 0.5.8, unchanged, against the endpoint in DSTACK_SIMULATOR_ENDPOINT (a unix socket path or
// an http URL), as a dstack app would: every method of DstackClient that reaches the agent (getKey, getTlsKey,
// getQuote with replayRtmrs, the deprecated tdxQuote, attest, emitEvent, sign, verify, info, version, isReachable;
// the deprecated deriveKey throws inside the SDK without a call). argv[2] is a JSON list of calls; stdout gets one JSON list of results, each
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
    case 'getTlsKey': {
      const result = await client.getTlsKey(request.options)
      // asUint8Array() is the SDK's DER decoding of the PEM key: checked against it by the test.
      return { key: result.key, certificate_chain: result.certificate_chain, keyDer: hex(result.asUint8Array()), name: result.__name__ }
    }
    case 'getQuote': {
      // reportText: the SDK's string form (UTF-8 bytes); reportData: hex, passed as bytes.
      const result = await client.getQuote(request.reportText ?? Buffer.from(request.reportData, 'hex'))
      return { ...result, rtmrs: result.replayRtmrs() }
    }
    case 'tdxQuote': {
      // Deprecated in the SDK, still public: GetQuote with raw report data.
      const result = await client.tdxQuote(Buffer.from(request.reportData, 'hex'), 'raw')
      return { ...result, rtmrs: result.replayRtmrs() }
    }
    case 'attest': {
      const result = await client.attest(Buffer.from(request.reportData, 'hex'))
      return { ...result }
    }
    case 'emitEvent': {
      // The SDK resolves to nothing and ignores an {error} answer: the test reads the effect in the next quote.
      return { result: (await client.emitEvent(request.event, Buffer.from(request.payload, 'hex'))) ?? null }
    }
    case 'sign': {
      const result = await client.sign(request.algorithm, Buffer.from(request.data, 'hex'))
      return { signature: hex(result.signature), signature_chain: result.signature_chain.map(hex), public_key: hex(result.public_key), name: result.__name__ }
    }
    case 'verify': {
      const result = await client.verify(request.algorithm, Buffer.from(request.data, 'hex'), Buffer.from(request.signature, 'hex'), Buffer.from(request.publicKey, 'hex'))
      return { ...result }
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
