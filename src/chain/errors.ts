// Typed errors of the blob transport (docs/protocol.md#wire-formats, docs/protocol.md#limits): the chain branch of the
// one error family (src/errors.ts), so the host API maps them to its closed list of codes; every message is public
// data (hashes, paths, lengths), never a secret.
import type { Hex, TransactionReceipt } from 'viem'
import { KeymanagerError, type ErrorCode, type KeymanagerErrorParameters } from '../errors.ts'

export type ChainErrorParameters = KeymanagerErrorParameters

/** Base of every error the chain modules throw on purpose. */
export class ChainError extends KeymanagerError {
  override name = 'ChainError'
  constructor(code: ErrorCode, shortMessage: string, parameters: ChainErrorParameters = {}) {
    super(code, shortMessage, parameters)
  }
}

/** Why an envelope was refused; stable strings, fit for a stored decision reason. */
export type EnvelopeErrorReason =
  | 'too_large'
  | 'malformed_rlp'
  | 'non_canonical_rlp'
  | 'not_a_list'
  | 'bad_magic'
  | 'unsupported_version'
  | 'unknown_kind'
  | 'field_count'
  | 'field_type'
  | 'field_length'
  | 'field_value'
  | 'non_canonical_integer'
  | 'duplicate_request'
  | 'bad_blobs'

/** A blob envelope that is not exactly what docs/protocol.md#wire-formats allows, on decode or on encode. */
export class EnvelopeError extends ChainError {
  override name = 'EnvelopeError'
  constructor(
    readonly reason: EnvelopeErrorReason,
    shortMessage: string,
    parameters: ChainErrorParameters = {},
  ) {
    super('unprocessable', shortMessage, parameters)
  }
}

/** A blob transaction that was mined and reverted, or refused by gas estimation before it was sent. */
export class BlobTransactionRevertedError extends ChainError {
  override name = 'BlobTransactionRevertedError'
  /** Undefined when the node refused the transaction before it was sent (gas estimation reverted). */
  readonly hash: Hex | undefined
  readonly receipt: TransactionReceipt | undefined
  /** Raw revert data, when the node returned it. */
  readonly revertData: Hex | undefined
  /** Decoded error name (`Error`, `Panic` or a custom error of the given ABI), when the data could be decoded. */
  readonly errorName: string | undefined
  readonly errorArgs: readonly unknown[] | undefined

  constructor(parameters: {
    hash?: Hex | undefined
    receipt?: TransactionReceipt | undefined
    revertData?: Hex | undefined
    errorName?: string | undefined
    errorArgs?: readonly unknown[] | undefined
    cause?: unknown
  }) {
    const { hash, receipt, revertData, errorName, errorArgs } = parameters
    const reason = describeRevert(errorName, errorArgs)
    const metaMessages = [
      hash ? `transaction: ${hash}` : 'transaction: not sent (gas estimation reverted)',
      ...(receipt ? [`block: ${receipt.blockNumber}`, `gas used: ${receipt.gasUsed}`] : []),
      `reason: ${reason ?? (revertData && revertData !== '0x' ? `undecoded revert data ${revertData}` : 'none given')}`,
    ]
    super('unprocessable', 'Blob transaction reverted.', { metaMessages, cause: parameters.cause })
    this.hash = hash
    this.receipt = receipt
    this.revertData = revertData
    this.errorName = errorName
    this.errorArgs = errorArgs
  }
}

export function describeRevert(errorName: string | undefined, errorArgs: readonly unknown[] | undefined): string | undefined {
  if (errorName === undefined) return undefined
  if (errorName === 'Error' && typeof errorArgs?.[0] === 'string') return errorArgs[0]
  const args = (errorArgs ?? []).map((arg) => (typeof arg === 'bigint' ? arg.toString() : JSON.stringify(arg)))
  return `${errorName}(${args.join(', ')})`
}

/**
 * A blob source failed at the transport level: network error, timeout, HTTP status, oversize or malformed
 * response. `path` is the API route only (e.g. `/eth/v1/beacon/blobs/123`): never the base URL, its
 * credentials or any query string, which may carry an API key.
 */
export class BlobSourceError extends ChainError {
  override name = 'BlobSourceError'
  constructor(
    readonly path: string,
    shortMessage: string,
    /** The upstream's HTTP status, when it answered (`status` is this error's own status in the host API). */
    readonly upstreamStatus?: number,
    parameters: ChainErrorParameters = {},
  ) {
    super('upstream_failed', shortMessage, {
      ...parameters,
      metaMessages: [
        `path: ${path}`,
        ...(upstreamStatus !== undefined ? [`upstream status: ${upstreamStatus}`] : []),
        ...(parameters.metaMessages ?? []),
      ],
    })
  }
}

/** No source had a blob with this versioned hash (pruned, wrong block, or never published). */
export class BlobNotFoundError extends ChainError {
  override name = 'BlobNotFoundError'
  constructor(
    readonly versionedHash: Hex,
    parameters: ChainErrorParameters = {},
  ) {
    super('not_found', 'Blob not found.', {
      ...parameters,
      metaMessages: [`versioned hash: ${versionedHash}`, ...(parameters.metaMessages ?? [])],
    })
  }
}

/** A source served data for a block, but no served blob commits to the expected versioned hash (docs/protocol.md#wire-formats). */
export class BlobHashMismatchError extends ChainError {
  override name = 'BlobHashMismatchError'
  constructor(
    readonly expected: Hex,
    /** Versioned hashes of what was served instead (`invalid` for a blob that is not a valid KZG blob). */
    readonly served: readonly string[],
  ) {
    super('upstream_failed', 'Served blob does not match its versioned hash.', {
      metaMessages: [`expected: ${expected}`, `served: ${served.length > 0 ? served.join(', ') : 'nothing usable'}`],
    })
  }
}

/**
 * The beacon node cannot rebuild blobs: since Fulu (PeerDAS) a node keeps only the data columns it custodies, and
 * only a supernode (all columns) or semi-supernode (half, enough to rebuild) serves `/eth/v1/beacon/blobs`.
 * Lighthouse answers 500 "Insufficient data columns", Prysm 404 "does not custody".
 */
export class BeaconNotSupernodeError extends BlobSourceError {
  override name = 'BeaconNotSupernodeError'
  constructor(path: string, upstreamStatus: number, slot: bigint) {
    super(path, 'The beacon node cannot serve blobs: it is not a supernode.', upstreamStatus, {
      metaMessages: [
        `slot: ${slot}`,
        'since Fulu only a node that custodies all data columns (supernode) or half of them (semi-supernode) can rebuild blobs',
        'point blobs.url at such a node (e.g. Lighthouse or Lodestar started with --supernode) or at a provider that serves blobs',
      ],
    })
  }
}

/** The block is older than the beacon node's blob retention window: its blobs are gone from every beacon node. */
export class BlobsPrunedError extends BlobSourceError {
  override name = 'BlobsPrunedError'
  constructor(path: string, upstreamStatus: number | undefined, facts: { slot: bigint; headSlot: bigint; retentionEpochs: bigint; slotsPerEpoch: bigint }) {
    super(path, 'The beacon node has pruned these blobs: the block is older than its retention window.', upstreamStatus, {
      metaMessages: [
        `slot: ${facts.slot} (head slot ${facts.headSlot}, blobs kept ${facts.retentionEpochs} epochs = ${facts.retentionEpochs * facts.slotsPerEpoch} slots)`,
        'read them from an archive instead: this node keeps the blobs it used, peers serve theirs (blobs.peers in the host settings), and `keymanager audit --archive DIR --peer URL` takes both',
      ],
    })
  }
}

/** The beacon node serves another chain than the one configured (its DEPOSIT_CHAIN_ID differs). */
export class BeaconChainMismatchError extends BlobSourceError {
  override name = 'BeaconChainMismatchError'
  constructor(expected: string, served: string) {
    super('/eth/v1/config/spec', 'The beacon node follows another chain.', undefined, {
      metaMessages: [`expected ${expected}`, `beacon node: ${served}`],
    })
  }
}
