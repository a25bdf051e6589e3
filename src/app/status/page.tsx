// The status page of the host listener (`GET /`): server-rendered with hono's JSX, no client framework. A small inline
// script (CSP nonce) re-fetches the page every few seconds and swaps its content, and ticks the collateral countdown;
// without JavaScript a meta refresh does the same.
//
// Each value shown is one `Field`: a label and a function of the snapshot (src/monitor/monitor.ts). A value that is
// null or undefined shows as "—", so a field for something the node does not know yet is one line that starts
// showing when the snapshot carries it.
import type { Child } from 'hono/jsx'
import { formatEther } from 'viem'
import { formatDuration } from '../../monitor/alerts.ts'
import type { StatusSnapshot } from '../../monitor/monitor.ts'

export const REFRESH_SECONDS = 5
/** Request header of the page's own refresh: the answer is the content alone. */
export const FRAGMENT_HEADER = 'x-keymanager-fragment'

type Field = { label: string; value: (s: StatusSnapshot) => Child | null | undefined; hint?: string }

type Tone = 'good' | 'warn' | 'bad' | 'idle'

const STATE_TONE: Record<string, Tone> = { ready: 'good', registering: 'warn', bootstrapping: 'warn', uninitialized: 'idle' }
const TCB_TONE: Record<string, Tone> = {
  UpToDate: 'good',
  SWHardeningNeeded: 'warn',
  ConfigurationNeeded: 'warn',
  ConfigurationAndSWHardeningNeeded: 'warn',
  OutOfDate: 'bad',
  OutOfDateConfigurationNeeded: 'bad',
  Revoked: 'bad',
}
const DECISION_TONE: Record<string, Tone> = { fulfilled: 'good', pending: 'warn', refused: 'bad' }

const Badge = (props: { tone: Tone; children: Child; testid?: string; title?: string }) => (
  <span class={`badge ${props.tone}`} data-testid={props.testid} title={props.title}>
    {props.children}
  </span>
)

const Mono = (props: { children: Child }) => <code>{props.children}</code>

const isoTime = (unix: number) => new Date(unix * 1000).toISOString().replace('.000Z', 'Z').replace('T', ' ')

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = -1
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

const gwei = (wei: string | null) => (wei === null ? null : `${(Number(BigInt(wei)) / 1e9).toLocaleString('en-US', { maximumFractionDigits: 3 })} gwei`)

const platformReport = (s: StatusSnapshot) => (s.platform?.ok ? s.platform.report : undefined)

function Countdown(props: { until: number; now: number }) {
  const left = props.until - props.now
  return (
    <span data-expires-at={props.until} data-testid="collateral-countdown" title={`nextUpdate ${isoTime(props.until)}`}>
      {left > 0 ? `in ${formatDuration(left)}` : `expired ${formatDuration(-left)} ago`}
    </span>
  )
}

// ---- the fields: one line each ----------------------------------------------------------------------------------

const NODE_FIELDS: Field[] = [
  { label: 'State', value: (s) => <Badge tone={STATE_TONE[s.node.state] ?? 'idle'} testid="state">{s.node.state}</Badge> },
  { label: 'Generation', value: (s) => s.node.generation },
  { label: 'xPub', value: (s) => s.node.xPub && <Mono>{s.node.xPub}</Mono> },
  { label: 'Fingerprint', value: (s) => s.node.fingerprint && <Mono>{s.node.fingerprint}</Mono> },
  { label: 'Registry', value: (s) => <Mono>{s.node.registry}</Mono> },
  { label: 'Chain id', value: (s) => s.node.chainId },
  { label: 'Quote provider', value: (s) => s.node.quoteProvider },
  { label: 'Seal provider', value: (s) => s.node.sealProvider },
  {
    label: 'Own registration',
    value: (s) => s.node.registration && `${s.node.registration.status}${s.node.registration.requestId ? `, request ${s.node.registration.requestId}` : ''}`,
  },
]

const CHAIN_FIELDS: Field[] = [
  { label: 'Chain head', value: (s) => s.chain.head, hint: 'as the RPC reports it (unverified)' },
  { label: 'Verified head', value: (s) => s.chain.verifiedHead, hint: 'newest block this node verified itself (light client: finalized)' },
  {
    label: 'Finality lag',
    value: (s) =>
      s.chain.finalityLagBlocks !== null && (
        <span data-testid="finality-lag" title="chain head minus verified head; the age of the verified head by the host clock">
          {`${s.chain.finalityLagBlocks} blocks`}
          {s.chain.finalityLagSeconds !== null && `, ${formatDuration(s.chain.finalityLagSeconds)}`}
        </span>
      ),
    hint: 'chain head minus the newest header this node verified',
  },
  { label: 'Watcher cursor', value: (s) => s.chain.watcherCursor },
  { label: 'Watcher lag', value: (s) => s.chain.watcherLagBlocks !== null && `${s.chain.watcherLagBlocks} blocks` },
  { label: 'Peers', value: (s) => (s.peers.length === 0 ? 'none configured' : s.peers.map((p) => <div><Mono>{p.url}</Mono></div>)) },
]

const PLATFORM_FIELDS: Field[] = [
  {
    label: 'TCB status',
    value: (s) =>
      s.platform &&
      (s.platform.ok ? (
        <Badge tone={TCB_TONE[s.platform.report.status] ?? 'bad'} testid="tcb-status">{s.platform.report.status}</Badge>
      ) : (
        <Badge tone="bad" testid="tcb-status" title={s.platform.message}>check failed: {s.platform.reason}</Badge>
      )),
  },
  { label: 'Advisories', value: (s) => platformReport(s) && (platformReport(s)!.advisoryIds.join(', ') || 'none') },
  { label: 'Collateral expiry', value: (s) => platformReport(s)?.collateralExpiresAt != null && <Countdown until={platformReport(s)!.collateralExpiresAt!} now={s.takenAt} /> },
  { label: 'TCB evaluation number', value: (s) => platformReport(s)?.tcbEvaluationDataNumber },
  { label: 'FMSPC', value: (s) => platformReport(s) && <Mono>{platformReport(s)!.fmspc.slice(2)}</Mono> },
  { label: 'Measurement', value: (s) => platformReport(s) && <Mono>{platformReport(s)!.measurementId}</Mono> },
  { label: 'Checked', value: (s) => s.platform && isoTime(s.platform.ok ? s.platform.report.checkedAt : s.platform.checkedAt) },
]

const FUNDS_FIELDS: Field[] = [
  { label: 'Gas key', value: (s) => (s.gas ? <Mono>{s.gas.account}</Mono> : 'none (transactions are handed to the host)') },
  { label: 'Gas balance', value: (s) => s.gas?.balanceWei != null && <span data-testid="gas-balance">{formatEther(BigInt(s.gas.balanceWei))} ETH</span> },
  { label: 'Blob archive', value: (s) => `${s.blobArchive.blobs} blobs, ${bytes(s.blobArchive.bytes)}` },
  { label: 'Pending requests', value: (s) => s.pending.count },
]

// ---- layout -----------------------------------------------------------------------------------------------------

function FieldList(props: { title: string; fields: Field[]; snapshot: StatusSnapshot; id: string }) {
  return (
    <section class="card" id={props.id}>
      <h2>{props.title}</h2>
      <dl>
        {props.fields.map((field) => {
          const value = field.value(props.snapshot)
          const shown = value === null || value === undefined || value === false ? <span class="none">—</span> : value
          return (
            <>
              <dt title={field.hint}>{field.label}</dt>
              <dd>{shown}</dd>
            </>
          )
        })}
      </dl>
    </section>
  )
}

function Table(props: { id: string; title: string; empty: string; head: string[]; rows: Child[][] }) {
  return (
    <section class="card wide" id={props.id}>
      <h2>
        {props.title} <span class="count">{props.rows.length}</span>
      </h2>
      {props.rows.length === 0 ? (
        <p class="none">{props.empty}</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>{props.head.map((h) => <th>{h}</th>)}</tr>
            </thead>
            <tbody>
              {props.rows.map((row) => (
                <tr>{row.map((cell) => <td>{cell ?? <span class="none">—</span>}</td>)}</tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}

const short = (hex: string | null | undefined) => (hex ? <Mono><span title={hex}>{`${hex.slice(0, 10)}…${hex.slice(-6)}`}</span></Mono> : null)

/** The alert badges at the top of the page: one warning badge per active alert (src/monitor/alerts.ts), or "no alerts". */
export function AlertBadges(props: { alerts: StatusSnapshot['alerts'] }) {
  const { alerts } = props
  if (alerts.length === 0) return <Badge tone="good" testid="alerts-none">no alerts</Badge>
  return (
    <>
      {alerts.map((alert) => (
        <Badge tone="warn" testid={`alert-${alert.name}`} title={`since ${isoTime(alert.since)}`}>
          ⚠ {alert.message}
        </Badge>
      ))}
    </>
  )
}

export function StatusContent(props: { snapshot: StatusSnapshot }) {
  const s = props.snapshot
  const decisions = s.node.requests.map((r) => [
    r.requestId,
    short(r.requester),
    <Badge tone={DECISION_TONE[r.decision] ?? 'idle'}>{r.decision}</Badge>,
    r.reason && <Mono>{r.reason}</Mono>,
    r.message,
    short(r.fulfillTx),
  ])
  const pending = s.pending.listed.map((r) => [r.requestId, short(r.requester), r.blockNumber])
  const outbox = (s.outbox?.entries ?? []).map((e) => [
    e.nonce,
    e.label,
    e.stuck ? <Badge tone="bad">stuck</Badge> : <Badge tone="warn">{e.status}</Badge>,
    gwei(e.maxFeePerGas),
    gwei(e.maxPriorityFeePerGas),
    gwei(e.maxFeePerBlobGas),
    formatDuration(e.ageSeconds),
    short(e.txHash),
  ])
  return (
    <main id="content" data-taken-at={s.takenAt}>
      <div class="alerts" id="alerts">
        <AlertBadges alerts={s.alerts} />
      </div>
      <div class="grid">
        <FieldList id="node" title="Node" fields={NODE_FIELDS} snapshot={s} />
        <FieldList id="chain" title="Chain" fields={CHAIN_FIELDS} snapshot={s} />
        <FieldList id="platform" title="Platform" fields={PLATFORM_FIELDS} snapshot={s} />
        <FieldList id="funds" title="Gas and storage" fields={FUNDS_FIELDS} snapshot={s} />
        <Table
          id="decisions"
          title="Decisions"
          empty="No onboarding request judged yet."
          head={['request', 'requester', 'decision', 'reason', 'message', 'fulfil tx']}
          rows={decisions}
        />
        <Table id="pending" title="Pending requests" empty="No request waiting." head={['request', 'requester', 'block']} rows={pending} />
        <Table
          id="outbox"
          title="Outbox"
          empty={s.outbox ? 'Every transaction is mined.' : 'No gas key: this node sends no transactions.'}
          head={['nonce', 'label', 'status', 'max fee', 'priority fee', 'blob fee', 'age', 'tx']}
          rows={outbox}
        />
      </div>
      <p class="foot">
        Snapshot {isoTime(s.takenAt)} · <a href="/metrics">metrics</a> · <a href="/openapi.json">OpenAPI</a> · <a href="/status">JSON</a>
      </p>
    </main>
  )
}

const STYLE = `
:root { color-scheme: light dark; --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --mute:#6b7385; --line:#e3e6ec;
  --good:#1a7f37; --warn:#9a6700; --bad:#cf222e; --idle:#57606a; }
@media (prefers-color-scheme: dark) { :root { --bg:#0d1117; --card:#161b22; --ink:#e6edf3; --mute:#8d96a0; --line:#30363d;
  --good:#3fb950; --warn:#d29922; --bad:#f85149; --idle:#8d96a0; } }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:12px; padding:12px 20px; border-bottom:1px solid var(--line); background:var(--card); }
header h1 { font-size:16px; margin:0; } header .spacer { flex:1; } header form { margin:0; }
main { padding:16px 20px; max-width:1400px; margin:0 auto; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:0; }
.card.wide { grid-column:1 / -1; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--mute); margin:0 0 8px; }
h2 .count { background:var(--line); color:var(--ink); border-radius:9px; padding:0 7px; font-size:12px; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:5px 14px; margin:0; }
dt { color:var(--mute); } dd { margin:0; min-width:0; overflow-wrap:anywhere; }
code { font:12.5px ui-monospace, SFMono-Regular, Menlo, monospace; }
.none { color:var(--mute); }
.badge { display:inline-block; border-radius:999px; padding:1px 10px; font-weight:600; font-size:12.5px; color:#fff; margin:0 6px 4px 0; }
.badge.good { background:var(--good); } .badge.warn { background:var(--warn); } .badge.bad { background:var(--bad); } .badge.idle { background:var(--idle); }
.alerts { margin-bottom:12px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:5px 10px 5px 0; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--mute); font-weight:500; }
.foot { color:var(--mute); margin-top:14px; } a { color:inherit; }
button { font:inherit; padding:4px 12px; border-radius:6px; border:1px solid var(--line); background:var(--card); color:var(--ink); cursor:pointer; }
.login { max-width:380px; margin:12vh auto; background:var(--card); border:1px solid var(--line); border-radius:10px; padding:24px; }
.login input { width:100%; font:inherit; padding:7px 9px; border:1px solid var(--line); border-radius:6px; margin:6px 0 14px; background:var(--bg); color:var(--ink); }
.error { color:var(--bad); font-weight:600; }
`

// Constant text (no interpolated data), so inlining it raw is safe. Re-fetches the page's content only (a whole page
// would carry a <style> whose new nonce the CSP of this one refuses) and swaps <main>; an answer without #content
// means the session ended: reload to the sign-in form.
const SCRIPT = `
(() => {
  const fmt = (s) => { s = Math.max(0, Math.round(s)); const D = 86400;
    if (s >= D) return Math.floor(s / D) + ' d ' + Math.floor((s % D) / 3600) + ' h';
    if (s >= 3600) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    if (s >= 60) return Math.floor(s / 60) + ' min'; return s + ' s'; };
  const tick = () => { const now = Date.now() / 1000;
    for (const el of document.querySelectorAll('[data-expires-at]')) { const left = Number(el.dataset.expiresAt) - now;
      el.textContent = left > 0 ? 'in ' + fmt(left) : 'expired ' + fmt(-left) + ' ago'; } };
  const live = document.getElementById('live');
  const refresh = async () => {
    try {
      const res = await fetch(location.pathname, { credentials: 'same-origin', cache: 'no-store', headers: { '${FRAGMENT_HEADER}': '1' } });
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      const next = doc.getElementById('content');
      if (!next) { location.reload(); return; }
      document.getElementById('content').replaceWith(next);
      live.textContent = 'live'; live.className = 'badge good';
    } catch { live.textContent = 'unreachable, retrying'; live.className = 'badge bad'; }
    tick();
  };
  setInterval(refresh, ${REFRESH_SECONDS * 1000}); setInterval(tick, 1000); tick();
})();
`

function Layout(props: { title: string; nonce: string; children: Child; refresh?: boolean }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title}</title>
        {props.refresh && (
          <noscript>
            <meta http-equiv="refresh" content={String(REFRESH_SECONDS * 2)} />
          </noscript>
        )}
        <style nonce={props.nonce} dangerouslySetInnerHTML={{ __html: STYLE }} />
      </head>
      <body>{props.children}</body>
    </html>
  )
}

export function StatusPage(props: { snapshot: StatusSnapshot; nonce: string; csrf: string }) {
  const s = props.snapshot
  return (
    <Layout title={`keymanager · ${s.node.state}`} nonce={props.nonce} refresh>
      <header>
        <h1>keymanager</h1>
        <Badge tone={STATE_TONE[s.node.state] ?? 'idle'}>{s.node.state}</Badge>
        <span class="none">
          chain {s.node.chainId} · registry <Mono>{s.node.registry}</Mono>
        </span>
        <span class="spacer" />
        <span id="live" class="badge idle" data-testid="live">
          refreshes every {REFRESH_SECONDS} s
        </span>
        <form method="post" action="/logout">
          <input type="hidden" name="csrf" value={props.csrf} />
          <button type="submit" data-testid="logout">Sign out</button>
        </form>
      </header>
      <StatusContent snapshot={s} />
      <script nonce={props.nonce} dangerouslySetInnerHTML={{ __html: SCRIPT }} />
    </Layout>
  )
}

export function LoginPage(props: { nonce: string; error?: string }) {
  return (
    <Layout title="keymanager · sign in" nonce={props.nonce}>
      <form class="login" method="post" action="/login" data-testid="login-form">
        <h1>keymanager</h1>
        <p class="none">Sign in with this node's host token (the contents of its host token file).</p>
        {props.error && (
          <p class="error" role="alert" data-testid="login-error">
            {props.error}
          </p>
        )}
        <label for="token">Host token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  )
}
