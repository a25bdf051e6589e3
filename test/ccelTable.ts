// A CCEL ACPI table as TDX firmware writes it (TCG PC Client crypto-agile event log), for tests of the parsers and
// of the `tdx` provider: the SHA-1-format spec-id header, TCG_PCR_EVENT2 entries, then 0xFF filler.
export type CcelEntry = { index: number; type: number; digest: Uint8Array; payload: Uint8Array; alg?: number; count?: number }

export function ccelTable(entries: readonly CcelEntry[], filler = 16): Uint8Array {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n)
    return b
  }
  const u16 = (n: number) => {
    const b = Buffer.alloc(2)
    b.writeUInt16LE(n)
    return b
  }
  const specId = Buffer.concat([Buffer.from('Spec ID Event03\0'), u32(0), Buffer.from([0, 2, 0, 2]), u32(1), u16(0xc), u16(48), Buffer.from([0])])
  const parts: Uint8Array[] = [u32(0), u32(3), new Uint8Array(20), u32(specId.length), specId]
  for (const e of entries) parts.push(u32(e.index), u32(e.type), u32(e.count ?? 1), u16(e.alg ?? 0xc), e.digest, u32(e.payload.length), e.payload)
  parts.push(new Uint8Array(filler).fill(0xff))
  return new Uint8Array(Buffer.concat(parts))
}
