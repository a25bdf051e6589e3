import type { Logger } from 'pino'
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from 'viem'
import type { BlobSource } from '../chain/beacon.ts'
import type { GenerationsClient } from '../chain/generations.ts'
import type { ChainView, ViewHeader } from '../chain/view/chainView.ts'
import type { Keyring } from './keyring.ts'
import type { Freshness } from '../chain/view/freshness.ts'
import type { Outbox } from '../chain/outbox.ts'
import type { RegistryClient } from '../chain/registry.ts'
import type { SealProvider } from '../secret/seal.ts'
import type { KeptCollateralStore } from '../store/keptCollateral.ts'
import type { BlobArchive } from '../store/blobArchive.ts'
import type { CursorStore } from '../store/cursor.ts'
import type { Db } from '../store/database.ts'
import type { MetaStore } from '../store/meta.ts'
import type { RegistrationStore } from '../store/registrations.ts'
import type { RequestStore } from '../store/requests.ts'
import type { SealedSecretStore } from '../store/sealedSecrets.ts'
import type { QuoteProvider, QuoteVerifier } from '../tee/types.ts'
import type { KillHook } from './killPoints.ts'

/** Everything a node's flows depend on, injected (ponder's `createServer({ deps })`). */
export type NodeContext = {
  chainId: number
  registryAddress: Address
  /** keccak256 of this node's canonical measured settings (docs/protocol.md#measured-settings). */
  settingsDigest: Hex
  publicClient: PublicClient
  /** The host-provided gas key; without one the node returns unsigned transactions for the host to send. */
  walletClient: WalletClient<Transport, Chain, Account> | undefined
  /** Crash-safe sending with the gas key (docs/protocol.md#node-state); every tx the node sends itself goes through it. */
  outbox?: Outbox | undefined
  /** Events (hints) and calldata; never believed for a decision. */
  registry: RegistryClient
  /**
   * The chain as the enclave verified it (docs/protocol.md#verified-chain-view): every fact a decision to release or
   * accept `M` rests on is read through it.
   */
  chainView: ChainView
  /** The freshness rule: a decision to encrypt `M` waits for a verified view that holds its own mark. */
  freshness: Freshness
  /** How long a newcomer or a bootstrapping node waits for its verified view to reach a block it was told of (ms). */
  viewWaitMs: number
  /** Poll interval of those waits (ms). */
  viewPollMs: number
  blobSource: BlobSource
  /** Peers' blob archives, tried after `blobSource` (beacon nodes prune blobs after ~18 days). */
  peerBlobSources?: BlobSource[]
  /** Told the outcome of each blob source tried, by index in `[blobSource, ...peerBlobSources]` (metrics). */
  observeBlobFetch?: (index: number, error?: unknown) => void
  quoteProvider: QuoteProvider
  quoteVerifier: QuoteVerifier
  seal: SealProvider
  db: Db
  stores: {
    meta: MetaStore
    sealedSecrets: SealedSecretStore
    registrations: RegistrationStore
    requests: RequestStore
    blobs: BlobArchive
    /** Collateral kept with the decisions acted on (docs/protocol.md#node-state); made from `db` when absent. */
    keptCollateral?: KeptCollateralStore
    /** The chain watcher's store: requests and answers are looked up here, never by scanning logs (docs/protocol.md#limits). */
    cursor: CursorStore
  }
  /** Waits until the chain watcher has processed the current head (a request the host names may be a block ahead of it). */
  syncChain?: () => Promise<void>
  logger: Logger
  /** Host clock, unix seconds: bookkeeping only (stored timestamps); decisions use verified chain time. */
  now(): number
  /** Blocks a request's reference block may trail its inclusion block before a helper calls it stale. */
  maxReferenceAge: bigint
  /**
   * Where event hints outside the watcher's store are read from (the registry's deployment block, a host setting) and
   * the widest `eth_getLogs` range (docs/protocol.md#limits). Default: block 0, 1,000 blocks.
   */
  logScan?: { fromBlock: bigint; maxRange: number }
  /** Test-only kill points of the crash tests (src/node/killPoints.ts); absent outside the devnet entry. */
  killPoint?: KillHook | undefined
}

/** A transaction the node either sent itself or hands to the host to sign and send. */
export type TxOutcome =
  | { sent: true; txHash: Hex; blockNumber: string }
  | { sent: false; tx: { to: Address; data: Hex; blobs?: Hex[]; chainId: number } }

/**
 * What a member's generation flows (rotation, escrow, recovery; src/node/rotation.ts, src/node/escrow.ts) read and
 * send through: the verified view, the generation hints, the node's keys and its transactions.
 */
export type MemberFlowDeps = {
  chainId: number
  registryAddress: Address
  view: ChainView
  generations: GenerationsClient
  keyring: Keyring
  logger: Logger
  /** A verified view proven to include a freshness mark made for this decision (docs/protocol.md#verified-chain-view). */
  fresh(): Promise<ViewHeader>
  /** The verified view once it reached `block` (an RPC hint), or its newest header. */
  viewAt(block?: bigint): Promise<ViewHeader>
  submit(label: string, data: Hex, blobs?: Hex[]): Promise<TxOutcome>
}
