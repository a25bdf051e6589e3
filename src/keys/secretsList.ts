// The plaintext of an onboard ciphertext (docs/protocol.md#onboarding-across-generations): every unpurged generation's
// master secret, `rlp([[g, M_g], ...])` with g a minimal big-endian integer (RLP's convention) and M_g 32 bytes,
// ascending g, no duplicates. Decoding is strict and total: the input comes out of a ciphertext a helper made, and
// a helper is only trusted once each M_g matches the key the verified chain shows for g.
import { fromRlp, toRlp } from 'viem'
import { MAX_SECRETS_LIST_BYTES } from '../chain/envelope.ts'
import { assertSecretKey } from './signature.ts'

export type GenerationSecret = { generation: bigint; secret: Uint8Array }

export class SecretsListError extends Error {
  override name = 'SecretsListError'
}

const UINT64_MAX = (1n << 64n) - 1n

function encodeInteger(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0)
  const hex = value.toString(16)
  return Uint8Array.from(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'))
}

/** `rlp([[g, M_g], ...])`; `entries` ascending by generation, each secret a valid secp256k1 key. */
export function encodeSecretsList(entries: readonly GenerationSecret[]): Uint8Array {
  if (entries.length === 0) throw new SecretsListError('a secrets list holds at least one generation')
  let previous = 0n
  const items = entries.map(({ generation, secret }) => {
    if (typeof generation !== 'bigint' || generation <= previous || generation > UINT64_MAX)
      throw new SecretsListError('generations must be ascending, distinct and in 1..2^64-1')
    previous = generation
    assertSecretKey(secret, `secret of generation ${generation}`)
    return [encodeInteger(generation), secret]
  })
  const bytes = toRlp(items, 'bytes')
  if (bytes.length > MAX_SECRETS_LIST_BYTES) throw new SecretsListError(`secrets list over ${MAX_SECRETS_LIST_BYTES} bytes`)
  return bytes
}

/** Decodes a secrets list; anything but the canonical encoding of a valid list is a SecretsListError. */
export function decodeSecretsList(bytes: Uint8Array): GenerationSecret[] {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_SECRETS_LIST_BYTES)
    throw new SecretsListError('secrets list has a bad length')
  let root: unknown
  try {
    root = fromRlp(bytes, 'bytes')
  } catch {
    throw new SecretsListError('secrets list is not RLP')
  }
  if (!Array.isArray(root) || root.length === 0) throw new SecretsListError('secrets list is not a non-empty list')
  const entries = root.map((item: unknown): GenerationSecret => {
    if (!Array.isArray(item) || item.length !== 2 || !(item[0] instanceof Uint8Array) || !(item[1] instanceof Uint8Array))
      throw new SecretsListError('a secrets list entry is not [generation, secret]')
    const g = item[0] as Uint8Array
    if (g.length === 0 || g.length > 8 || g[0] === 0) throw new SecretsListError('a generation is not a canonical integer in 1..2^64-1')
    const secret = item[1] as Uint8Array
    try {
      assertSecretKey(secret, 'secret')
    } catch {
      throw new SecretsListError('a secret is not a valid secp256k1 key')
    }
    return { generation: BigInt(`0x${Buffer.from(g).toString('hex')}`), secret: secret.slice() }
  })
  for (let i = 1; i < entries.length; i++)
    if (entries[i]!.generation <= entries[i - 1]!.generation) throw new SecretsListError('generations are not ascending and distinct')
  // One list, one encoding (viem's fromRlp accepts non-minimal lengths).
  const again = encodeSecretsList(entries)
  if (again.length !== bytes.length || !again.every((b, i) => b === bytes[i])) throw new SecretsListError('secrets list RLP is not canonical')
  return entries
}
