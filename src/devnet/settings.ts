// Measured settings of the devnet entry (bin/keymanager-devnet.js, docs/protocol.md#measured-settings): the production
// schema plus what only a devnet may have. `devnet: true` is required, so a devnet node's settings digest can never
// equal a production node's. None of this exists in the production entry, which refuses each of these settings.
//   - quote.provider `simulated` (docs/protocol.md#tee-providers): DCAP-shaped quotes under the devnet's PKI;
//   - quote.trustedRootCaFiles: root CAs trusted instead of Intel's (the devnet's own root);
//   - seal `dev-file`: a sealing key in the data dir, readable by the host;
//   - the `x-keymanager-pod` header as pod identity (always on in the devnet entry, and said so in its log);
//   - chainView: a devnet light-client network (the devnet beacon server's committee), the optimistic option, or
//     `trusted-rpc` (the RPC believed as is; the node logs it as INSECURE at start).
// A devnet reads this file from a path the host names (`serve --measured FILE`): nothing about a devnet is secure.
import { dirname, isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import {
  chainViewSchema,
  describeZodError,
  freshnessSchema,
  hardwareQuoteOptions,
  hardwareSealOptions,
  maxReferenceAgeSchema,
  measuredChainSchema,
  MEASURED_SETTINGS_VERSION,
  podsSchema,
  readJsonFile,
  sealShorthand,
} from '../config.ts'

const filePath = z.string().min(1)
/** Root CA certificate files (PEM or DER). Absent: Intel's SGX Root CA only, as in production. */
const trustedRootCaFiles = z.array(filePath).min(1).optional()

export const devnetMeasuredSettingsSchema = z.strictObject({
  version: z.literal(MEASURED_SETTINGS_VERSION),
  devnet: z.literal(true),
  chain: measuredChainSchema.extend({
    /** `trusted-rpc` believes the RPC (INSECURE, said at start): for devnet tests that rewind the chain below finality. */
    verification: z.enum(['light-client', 'trusted-rpc']).default('light-client'),
  }),
  quote: z.discriminatedUnion('provider', [
    z.strictObject({
      provider: z.literal('simulated'),
      /** The devnet platform (src/devnet/pki.ts): PCK certificate chain, PEM, leaf first. */
      pckChainFile: filePath,
      /** The platform's PCK private key (PKCS#8 PEM): signs the simulated QE report. */
      pckKeyFile: filePath,
      /** Label of the simulated build; different labels give different measurements. */
      measurementLabel: z.string().min(1).max(64),
      trustedRootCaFiles,
    }),
    ...hardwareQuoteOptions.map((option) => option.extend({ trustedRootCaFiles })),
  ]),
  seal: z.preprocess(sealShorthand, z.discriminatedUnion('provider', [z.strictObject({ provider: z.literal('dev-file') }), ...hardwareSealOptions])),
  pods: podsSchema,
  maxReferenceAge: maxReferenceAgeSchema,
  chainView: z.union([
    chainViewSchema,
    z.strictObject({
      registryCodeHash: chainViewSchema.shape.registryCodeHash.optional(),
      freshness: freshnessSchema,
    }),
  ]),
}).superRefine((settings, ctx) => {
  if (settings.chain.verification === 'light-client' && !('lightClient' in settings.chainView)) {
    ctx.addIssue({ code: 'custom', path: ['chainView', 'lightClient'], message: 'required: chain.verification is light-client (the default)' })
  }
  if (settings.chain.verification === 'trusted-rpc' && 'lightClient' in settings.chainView) {
    ctx.addIssue({ code: 'custom', path: ['chainView', 'lightClient'], message: 'not used: chain.verification is trusted-rpc' })
  }
})
export type DevnetMeasuredSettings = z.infer<typeof devnetMeasuredSettingsSchema>
/** What a devnet harness writes (defaults may be left out). */
export type DevnetMeasuredInput = z.input<typeof devnetMeasuredSettingsSchema>

export function parseDevnetMeasuredSettings(raw: unknown, where: string): DevnetMeasuredSettings {
  const parsed = devnetMeasuredSettingsSchema.safeParse(raw)
  if (!parsed.success) throw new Error(`${where}: ${describeZodError(parsed.error)}`)
  return parsed.data
}

/** Reads a devnet measured settings file; relative file paths inside it are relative to the file. */
export function loadDevnetMeasuredSettings(path: string): DevnetMeasuredSettings {
  const settings = parseDevnetMeasuredSettings(readJsonFile(path, 'measured settings'), `measured settings ${path}`)
  const base = dirname(resolve(path))
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p))
  const q = settings.quote
  if (q.provider === 'simulated') {
    q.pckChainFile = abs(q.pckChainFile)
    q.pckKeyFile = abs(q.pckKeyFile)
  }
  if (q.trustedRootCaFiles) q.trustedRootCaFiles = q.trustedRootCaFiles.map(abs)
  return settings
}
