// Honest ratios for `npm run bench`: a figure and its baseline are measured in alternating rounds (ABBA order, so
// neither always runs first), in the same kind of process and on the same cores, and the ratio is the median of the
// per-round ratios. A subject that does its baseline's work and more cannot beat it: a rate ratio above 1.0 (or a
// time ratio below 1.0) means the two ran under different conditions, and is printed as a measurement error,
// never as a result.

export type Paired = { baseline: number; subject: number; ratio: number; rounds: { baseline: number; subject: number }[] }

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** `rounds` pairs of measurements (each returns a rate or a time), alternating which goes first. */
export async function alternate(rounds: number, baseline: () => Promise<number> | number, subject: () => Promise<number> | number): Promise<Paired> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError('rounds must be a positive integer')
  const pairs: { baseline: number; subject: number }[] = []
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      const b = await baseline()
      pairs.push({ baseline: b, subject: await subject() })
    } else {
      const s = await subject()
      pairs.push({ baseline: await baseline(), subject: s })
    }
  }
  return {
    baseline: median(pairs.map((p) => p.baseline)),
    subject: median(pairs.map((p) => p.subject)),
    ratio: median(pairs.map((p) => p.subject / p.baseline)),
    rounds: pairs,
  }
}

/** The ratio cell of a rate whose subject does the baseline's work and more: above 1.0 it is a measurement error. */
export function rateRatioCell(ratio: number, of: string, target?: string): string {
  if (!(ratio <= 1)) return `MEASUREMENT ERROR: ${ratio.toFixed(2)} > 1.00 of ${of} (baseline and subject did not share conditions; not a result)`
  return `${ratio.toFixed(2)} of ${of}${target === undefined ? '' : ` (target ${target})`}`
}

/** The ratio cell of a time whose subject includes the baseline's work: below 1.0 it is a measurement error. */
export function timeRatioCell(ratio: number, note = ''): string {
  if (!(ratio >= 1)) return `MEASUREMENT ERROR: ${ratio.toFixed(2)} < 1.00 of its baseline (baseline and subject did not share conditions; not a result)`
  return `${ratio.toFixed(2)}${note === '' ? '' : ` ${note}`}`
}
