import assert from 'node:assert/strict'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { registerReportData } from '../keys/reportData.ts'
import { POD_REPORT_DATA_REFUSED, podQuoteSource } from './podQuote.ts'

const provider = { getQuote: async (reportData: Uint8Array) => Uint8Array.from(reportData) }

test('default: 64-byte report data with a non-zero second half is quoted as given', async () => {
  const data = new Uint8Array(64).fill(7)
  assert.deepEqual(await podQuoteSource(provider)(data), data)
  const last = new Uint8Array(64)
  last[63] = 1
  assert.deepEqual(await podQuoteSource(provider)(last), last)
})

test('security: a pod cannot get a quote over register report data for its own key', async () => {
  const forged = registerReportData({
    chainId: 31337,
    registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    pubkey64: secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1),
    refBlockNumber: 10n,
    refBlockHash: new Uint8Array(32).fill(1),
  }).slice()
  await assert.rejects(podQuoteSource(provider)(forged), { code: 'forbidden', message: POD_REPORT_DATA_REFUSED })
  await assert.rejects(podQuoteSource(provider)(new Uint8Array(64)), { code: 'forbidden' })
})

test('error: report data that is not 64 bytes', async () => {
  await assert.rejects(podQuoteSource(provider)(new Uint8Array(32)), RangeError)
})
