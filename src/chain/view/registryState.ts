// Typed reads of the registry's state at one block (docs/protocol.md#verified-chain-view): a query names what a
// decision needs, `querySlots` turns it into storage slots (one `eth_getProof` for all of them), and
// `registryState` decodes the proven slot values into fields. Derived answers (`isMeasurementAllowed`,
// `isFmspcAllowed`) are computed here the way the contract computes them, with the verified block's timestamp as
// "now": the node never asks the RPC to evaluate a view function.
import { numberToHex, type Address, type Hex } from 'viem'
import { REQUEST_STATUS, type RequestStatus } from '../registry.ts'
import {
  KEY_MANAGER_LAYOUT as L,
  REQUEST_MEMBERS as R,
  asAddress,
  asBytes32,
  fmspcSlot,
  freshnessSlot,
  measurementSlot,
  member,
  requestSlot,
} from './layout.ts'

export type RegistryQuery = {
  /** xPub, generation and master public key. */
  master?: boolean
  /** Request counter, request lifetime and the TCB policy (one packed slot). */
  policy?: boolean
  requests?: readonly bigint[]
  measurements?: readonly Hex[]
  /** FMSPC allow-list entries (6 bytes each). */
  fmspcs?: readonly Hex[]
  /** Freshness marks (freshness.ts). */
  marks?: readonly Hex[]
}

/** The block a read was made at: its number and timestamp are verified along with its state root. */
export type StateBlock = { blockNumber: bigint; timestamp: bigint }

export type ProvenRequest = { key: Address; expiresAt: bigint; status: RequestStatus; commitment: Hex }

const lower = (hex: Hex) => hex.toLowerCase() as Hex

/** The storage slots a query reads, without duplicates. */
export function querySlots(query: RegistryQuery): bigint[] {
  const slots = new Set<bigint>()
  if (query.master) [L.xPub.slot, L.masterPubkeyX.slot].forEach((s) => slots.add(s))
  if (query.policy) slots.add(L.requestTtl.slot)
  for (const id of query.requests ?? []) {
    const base = requestSlot(id)
    slots.add(base)
    slots.add(base + 1n)
  }
  for (const id of query.measurements ?? []) slots.add(measurementSlot(id))
  for (const fmspc of query.fmspcs ?? []) slots.add(fmspcSlot(fmspc))
  for (const mark of query.marks ?? []) slots.add(freshnessSlot(mark))
  return [...slots]
}

/** Decodes proven slot values (`values` has every slot of `querySlots(query)`) into the registry's fields. */
export function registryState(block: StateBlock, query: RegistryQuery, values: ReadonlyMap<bigint, bigint>) {
  const value = (slot: bigint) => {
    const v = values.get(slot)
    if (v === undefined) throw new Error(`slot ${numberToHex(slot)} was not read (add it to the query)`)
    return v
  }
  const asked = (what: string, ok: boolean | undefined) => {
    if (!ok) throw new Error(`${what} was not part of the query`)
  }
  const inList = <T>(list: readonly T[] | undefined, item: T, eq: (a: T, b: T) => boolean) => (list ?? []).some((x) => eq(x, item))
  const sameHex = (a: Hex, b: Hex) => lower(a) === lower(b)

  function tcbPolicy() {
    asked('the TCB policy', query.policy)
    const slot = value(L.requestTtl.slot)
    return {
      acceptedStatuses: Number(member(slot, L.acceptedTcbStatuses)),
      maxCollateralAge: member(slot, L.maxCollateralAge),
      fmspcAllowlistOn: member(slot, L.fmspcAllowlistOn) !== 0n,
      minTcbEvaluationDataNumber: Number(member(slot, L.minTcbEvaluationDataNumber)),
    }
  }

  function measurementActivatesAt(id: Hex): bigint {
    asked(`measurement ${id}`, inList(query.measurements, id, sameHex))
    return member(value(measurementSlot(id)), { offset: 0, bytes: 8 })
  }

  function fmspcListed(fmspc: Hex): boolean {
    asked(`FMSPC ${fmspc}`, inList(query.fmspcs, fmspc, sameHex))
    return member(value(fmspcSlot(fmspc)), { offset: 0, bytes: 1 }) !== 0n
  }

  return {
    block,
    master() {
      asked('the master key', query.master)
      const packed = value(L.xPub.slot)
      const generation = member(packed, L.generation)
      const prefix = Number(member(packed, L.masterPubkeyPrefix))
      return {
        xPub: asAddress(member(packed, L.xPub)),
        generation,
        /** Compressed (33 bytes), or `0x` before bootstrap: what `masterPubkey()` returns. */
        masterPubkey: (generation === 0n ? '0x' : `${numberToHex(prefix, { size: 1 })}${asBytes32(value(L.masterPubkeyX.slot)).slice(2)}`) as Hex,
      }
    },
    requestCount(): bigint {
      asked('the request counter', query.policy)
      return member(value(L.requestCount.slot), L.requestCount)
    },
    requestTtl(): bigint {
      asked('the request lifetime', query.policy)
      return member(value(L.requestTtl.slot), L.requestTtl)
    },
    tcbPolicy,
    request(requestId: bigint): ProvenRequest {
      asked(`request ${requestId}`, inList(query.requests, requestId, (a, b) => a === b))
      const base = requestSlot(requestId)
      const packed = value(base)
      return {
        key: asAddress(member(packed, R.key)),
        expiresAt: member(packed, R.expiresAt),
        status: REQUEST_STATUS[Number(member(packed, R.status))] ?? 'none',
        commitment: asBytes32(value(base + 1n)),
      }
    },
    measurementActivatesAt,
    /** `isMeasurementAllowed`: added, and active at this block's timestamp (docs/protocol.md#measurements-and-tcb-policy). */
    isMeasurementAllowed(id: Hex): boolean {
      const activatesAt = measurementActivatesAt(id)
      return activatesAt !== 0n && block.timestamp >= activatesAt
    },
    /** `freshnessMarkedAt`: the block that first recorded `mark`, 0 when it was never sent. */
    markedAt(mark: Hex): bigint {
      asked(`mark ${mark}`, inList(query.marks, mark, sameHex))
      return member(value(freshnessSlot(mark)), { offset: 0, bytes: 8 })
    },
    /** `isFmspcAllowed`: true when the allow-list is off, else whether the FMSPC is on it. */
    isFmspcAllowed(fmspc: Hex): boolean {
      return !tcbPolicy().fmspcAllowlistOn || fmspcListed(fmspc)
    },
  }
}
export type RegistryState = ReturnType<typeof registryState>
