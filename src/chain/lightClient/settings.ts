// The light client's measured settings (docs/protocol.md#verified-chain-view, docs/protocol.md#measured-settings), as a zod
// schema the node's settings embed: which beacon chain (and, for a devnet, its whole chain spec), the checkpoint root
// to bootstrap from, and the devnet-only optimistic option. The beacon node URL is a host setting and is not here.
// It does not import chains.ts (and so @lodestar/config, ~0.4 s to load): every verb parses settings, only `serve` and
// `guardian` run a light client; `chainOfSettings` in chains.ts turns a setting into a chain.
import { z } from 'zod'

const root = (what: string) =>
  z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/, `${what}: expected 0x and 64 hex digits`)
    .transform((value) => value.toLowerCase() as `0x${string}`)

const epoch = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const devnetChainSpecSchema = z.strictObject({
  genesisTime: z.number().int().min(0),
  genesisValidatorsRoot: root('devnet.genesisValidatorsRoot'),
  electraForkEpoch: epoch,
  fuluForkEpoch: epoch.nullable(),
})

export const lightClientSettingsSchema = z
  .strictObject({
    network: z.enum(['mainnet', 'sepolia', 'hoodi', 'devnet']),
    /** A beacon block root: the client trusts this block's sync committee and verifies everything after it. */
    checkpointRoot: root('checkpointRoot'),
    /** The devnet beacon chain (required with network "devnet", refused otherwise). */
    devnet: devnetChainSpecSchema.optional(),
    /** Devnet only: allow headers this many slots under the optimistic head instead of finalized ones. */
    optimisticConfirmations: z.number().int().min(0).max(1024).optional(),
  })
  .superRefine((value, ctx) => {
    if (value.network === 'devnet' && !value.devnet) ctx.addIssue({ code: 'custom', path: ['devnet'], message: 'network "devnet" needs its devnet chain spec' })
    if (value.network !== 'devnet' && value.devnet) ctx.addIssue({ code: 'custom', path: ['devnet'], message: `a devnet chain spec on network "${value.network}"` })
    if (value.network !== 'devnet' && value.optimisticConfirmations !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['optimisticConfirmations'], message: 'optimisticConfirmations is devnet-only: public networks act on finalized headers only' })
    }
  })
export type LightClientSettings = z.infer<typeof lightClientSettingsSchema>
