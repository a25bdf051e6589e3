// What a node holds of the generations (docs/protocol.md#generations): every generation's master secret it received
// and has not purged, which one is current, the public facts of each (revoked, purged, retiresAt, as last proven), its
// node key (the key of its onboarding request, docs/protocol.md#members-and-node-keys) and a proposed secret waiting
// for its commit. Secrets at rest are sealed by the seal provider, each under a label naming what it is, so a sealed
// blob is only accepted where it was made for (a generation's secret never unseals as another's).
import type { Address, Hex } from 'viem'
import { bytesToHex, hexToBytes } from 'viem'
import type { Logger } from 'pino'
import type { SealProvider } from '../secret/seal.ts'
import { createMasterSecret, type MasterSecret } from '../secret/masterSecret.ts'
import type { MetaStore } from '../store/meta.ts'
import type { SealedSecretStore } from '../store/sealedSecrets.ts'

export const sealLabel = {
  master: (generation: number) => `keymanager.master.v1/${generation}`,
  pendingMaster: 'keymanager.master.pending.v1',
  /** A proposed generation's secret, before its commit (by the proposer and each acknowledging member). */
  proposed: (proposal: bigint) => `keymanager.master.proposed.v1/${proposal}`,
  ephemeral: (address: string) => `keymanager.registration.v1/${address.toLowerCase()}`,
}

/** Public facts of a generation, as the verified chain last showed them. */
export type GenerationFacts = { xPub: Address; revoked: boolean; purged: boolean; retiresAt: bigint }

export type NodeKey = { memberId: bigint; address: Address; secretKey: Uint8Array }

/** A proposed secret this node holds (it proposed or acknowledged it), sealed until the proposal commits or drops. */
export type ProposedSecret = { proposal: bigint; generation: number; secret: MasterSecret }

export function createKeyring(deps: { seal: SealProvider; sealedSecrets: SealedSecretStore; meta: MetaStore; logger: Logger; now(): number }) {
  const { seal, sealedSecrets, meta, logger } = deps
  const secrets = new Map<number, MasterSecret>()
  const facts = new Map<number, GenerationFacts>()
  let current = 0
  let nodeKey: NodeKey | undefined
  let proposed: ProposedSecret | undefined

  function persist(generation: number, secret: MasterSecret) {
    if (!seal.persistent) return
    const sealedBytes = secret.exportForSealing((bytes) => seal.seal(bytes, sealLabel.master(generation)))
    sealedSecrets.put({ generation, xPub: secret.address, sealed: sealedBytes, createdAt: deps.now() })
  }

  return {
    /** Adds a generation's secret (sealing it unless `sealed` says it already is); replaces nothing. */
    add(generation: number, secret: MasterSecret, options: { sealed?: boolean } = {}) {
      const held = secrets.get(generation)
      if (held) {
        if (held.address.toLowerCase() !== secret.address.toLowerCase())
          throw new Error(`generation ${generation} is already held with another key`)
        if (held !== secret) secret.expire()
        return
      }
      if (!options.sealed) persist(generation, secret)
      secrets.set(generation, secret)
    },
    /** Unseals every stored generation (start-up); the caller checks each against the verified chain. */
    loadSealed(): { generation: number; secret: MasterSecret }[] {
      return sealedSecrets.all().map((row) => {
        const bytes = seal.unseal(row.sealed, sealLabel.master(row.generation))
        const secret = createMasterSecret(bytes)
        bytes.fill(0)
        return { generation: row.generation, secret }
      })
    },
    get: (generation: number) => secrets.get(generation),
    held: (): number[] => [...secrets.keys()].sort((a, b) => a - b),
    get current() {
      return current
    },
    setCurrent(generation: number) {
      if (!secrets.has(generation)) throw new Error(`generation ${generation} is not held`)
      current = generation
    },
    facts: (generation: number) => facts.get(generation),
    setFacts(generation: number, f: GenerationFacts) {
      facts.set(generation, f)
    },
    /** Erases a purged generation: its secret, its sealed copy (docs/protocol.md#onboarding-across-generations). */
    purge(generation: number) {
      const secret = secrets.get(generation)
      if (!secret) return
      secret.expire()
      secrets.delete(generation)
      sealedSecrets.delete(generation)
      logger.info({ generation }, 'purged generation erased')
    },
    get nodeKey() {
      return nodeKey
    },
    setNodeKey(key: NodeKey) {
      nodeKey?.secretKey.fill(0)
      nodeKey = key
    },
    get proposed() {
      return proposed
    },
    /** Keeps (and seals) a proposed generation's secret until the proposal commits or is dropped. */
    setProposed(value: ProposedSecret) {
      if (proposed && proposed.secret !== value.secret) proposed.secret.expire()
      proposed = value
      if (!seal.persistent) return
      const sealedBytes = value.secret.exportForSealing((bytes) => seal.seal(bytes, sealLabel.proposed(value.proposal)))
      meta.put('proposed_secret', JSON.stringify({ proposal: value.proposal.toString(), generation: value.generation, sealed: bytesToHex(sealedBytes) }))
    },
    /** The sealed proposed secret after a restart. */
    loadProposed(): ProposedSecret | undefined {
      const stored = meta.get('proposed_secret')
      if (!stored) return undefined
      const { proposal, generation, sealed } = JSON.parse(stored) as { proposal: string; generation: number; sealed: Hex }
      const bytes = seal.unseal(hexToBytes(sealed), sealLabel.proposed(BigInt(proposal)))
      const secret = createMasterSecret(bytes)
      bytes.fill(0)
      proposed = { proposal: BigInt(proposal), generation, secret }
      return proposed
    },
    clearProposed() {
      if (proposed && ![...secrets.values()].includes(proposed.secret)) proposed.secret.expire()
      proposed = undefined
      meta.put('proposed_secret', '')
    },
    expireAll() {
      for (const secret of secrets.values()) secret.expire()
      secrets.clear()
      proposed?.secret.expire()
      nodeKey?.secretKey.fill(0)
    },
  }
}
export type Keyring = ReturnType<typeof createKeyring>
