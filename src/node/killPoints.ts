// Kill points: a TEST-ONLY hook for the crash tests (docs/protocol.md#node-state "crash safety"). Each name is a
// durable step of bootstrap, register, help, complete or confirm: the moment right after something was written to
// SQLite (a sealed secret, a registration, a stored/sent/mined transaction in the outbox, a recorded decision). The
// crash tests start one node process with `KEYMANAGER_KILL_AT=<point>` (or `<point>#<n>`: the n-th time it is
// reached, default the first), the process kills itself with SIGKILL right after that step, and the test restarts it
// on its data dir and checks that every outcome happens exactly once on chain.
//
// Only the devnet entry (src/devnet/main.ts, absent from the production image) reads the variable; the production
// entry refuses to start with any KEYMANAGER_* variable set (src/main.ts), and no host or measured setting names a
// kill point. A node started without it calls a no-op.

/** Outbox labels of the onboarding flows whose stored, sent and mined steps are kill points. */
export const KILL_TX_LABELS = ['bootstrap', 'requestOnboard', 'markFresh', 'fulfillOnboard', 'confirmOnboard'] as const
/** Durable steps of an outbox tx: stored signed (before broadcast), marked sent (after broadcast), marked mined. */
export const KILL_TX_STEPS = ['stored', 'sent', 'mined'] as const

/** Durable steps of the node's flows (src/node/node.ts), in the order a flow reaches them. */
export const KILL_FLOW_POINTS = [
  // bootstrap (docs/protocol.md#bootstrap)
  'bootstrap.pending-sealed',
  'bootstrap.blob-archived',
  'bootstrap.generation-sealed',
  'bootstrap.pending-cleared',
  // register (docs/protocol.md#register)
  'register.blob-archived',
  'register.key-sealed',
  'register.requested',
  // help (docs/protocol.md#help)
  'help.response-archived',
  'help.recorded',
  // complete (docs/protocol.md#complete)
  'complete.secret-sealed',
  // confirm, and the end of a membership (docs/protocol.md#members-and-node-keys)
  'member.registration-completed',
] as const

export type KillPoint = (typeof KILL_FLOW_POINTS)[number] | `tx.${(typeof KILL_TX_LABELS)[number]}.${(typeof KILL_TX_STEPS)[number]}`

export const KILL_POINTS: readonly KillPoint[] = [
  ...KILL_FLOW_POINTS,
  ...KILL_TX_LABELS.flatMap((label) => KILL_TX_STEPS.map((step) => `tx.${label}.${step}` as const)),
]

/** Called right after a durable step; a no-op unless a kill point is armed. */
export type KillHook = (point: string, detail?: Record<string, unknown>) => void

export const noKill: KillHook = () => undefined

/**
 * The hook for `KEYMANAGER_KILL_AT` (`<point>` or `<point>#<n>`): `kill(point)` runs the n-th time `point` is reached.
 * An unknown point or count is an error (a typo must not make a crash test pass without crashing).
 */
export function killHookFromSpec(spec: string, kill: (point: string, detail?: Record<string, unknown>) => void): KillHook {
  const match = /^([a-zA-Z.-]+)(?:#([1-9][0-9]{0,3}))?$/.exec(spec)
  if (!match || !(KILL_POINTS as readonly string[]).includes(match[1]!))
    throw new Error(`KEYMANAGER_KILL_AT: '${spec}' is not a kill point (one of ${KILL_POINTS.join(', ')}, optionally followed by #n)`)
  const point = match[1]!
  let left = Number(match[2] ?? '1')
  return (reached, detail) => {
    if (reached !== point) return
    left--
    if (left === 0) kill(point, detail)
  }
}
