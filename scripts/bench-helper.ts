// How many newcomers a helper can judge and answer per second on one core: the DCAP verification of the newcomer's
// quote (collateral in memory, as a helper's cache serves it) and the ECIES encryption of M to its key, per newcomer.
// The blob's KZG commitment is shared by a batch (up to 50 per blob) and is measured in the KZG table.
// `scripts/bench.ts` calls `benchHelperRate`; run alone: node --import tsx scripts/bench-helper.ts
import { randomBytes } from '@noble/hashes/utils.js'
import { concatBytes } from 'viem'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { onboardAad } from '../src/keys/ecies.ts'
import { publicKey64 } from '../src/keys/signature.ts'
import { generateMasterSecret } from '../src/secret/masterSecret.ts'
import { createDcapVerifier } from '../src/tee/dcap.ts'

export async function benchHelperRate(print: (line: string) => void, { seconds = 3 }: { seconds?: number } = {}): Promise<number> {
  const pki = createDevnetPki()
  const collateral = pki.collateral()
  const verifier = createDcapVerifier({ collateral: { get: async () => collateral }, trustedRootCaDer: [pki.rootCaDer] })
  const provider = simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement('bench-helper') })
  const quotes = await Promise.all(Array.from({ length: 16 }, (_, i) => provider.getQuote(new Uint8Array(64).fill(i + 1))))
  const keys = quotes.map(() => concatBytes([new Uint8Array([4]), publicKey64(randomBytes(32))]))
  const master = generateMasterSecret()
  const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
  const one = async (i: number) => {
    await verifier.verify(quotes[i % quotes.length]!)
    master.encryptTo(keys[i % keys.length]!, onboardAad({ chainId: 31337, registry, requestId: BigInt(i + 1), generation: 1n }))
  }
  for (let i = 0; i < 20; i++) await one(i) // warm-up (JIT)
  let n = 0
  const start = performance.now()
  while (performance.now() - start < seconds * 1000) await one(n++)
  const perSecond = n / ((performance.now() - start) / 1000)
  master.expire()
  print('')
  print('| helper, one core | rate | target |')
  print('|---|---|---|')
  print(`| DCAP verify + ECIES encrypt of M, per newcomer | ${Math.round(perSecond)} newcomers/s | ≥ 100 |`)
  return perSecond
}

if (import.meta.url === `file://${process.argv[1]}`) await benchHelperRate((line) => process.stdout.write(line + '\n'))
