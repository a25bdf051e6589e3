// A host that sets the machine's clock: preloaded into a devnet node (`NODE_OPTIONS=--import`), it shifts Date by
// HOST_CLOCK_OFFSET_SECONDS. The node's monotonic clock (performance.now) is left alone, as a wrong wall clock does.
const offsetMs = Number(process.env.HOST_CLOCK_OFFSET_SECONDS ?? 0) * 1000
if (!Number.isFinite(offsetMs)) throw new Error('HOST_CLOCK_OFFSET_SECONDS must be a number')
const RealDate = Date
const realNow = RealDate.now.bind(RealDate)
class HostDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + offsetMs)
    else super(...args)
  }
  static now() {
    return realNow() + offsetMs
  }
}
globalThis.Date = HostDate
