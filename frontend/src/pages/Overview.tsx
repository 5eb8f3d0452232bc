import { Link } from 'react-router-dom'
import { useBalances, useCycles, useHealth, usePerformance, usePockets, useSummary } from '../api/hooks'
import type { Cycle, EquityPoint } from '../api/types'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { LineChart, type Point } from '../components/LineChart'
import { Badge, Card, QueryView, Stat, StatusBadge, statusTone } from '../components/ui'
import { fmtNum, fmtQty, fmtSigned, fmtTime, num, pnlClass } from '../lib/format'

export const OPEN_STATUSES = 'INITIATING,WAITING_ENTRY,ACTIVE,WAITING_EXIT'
const DAY = 86_400_000

/** PnL from closed cycles, used while the portfolio service does not answer. `now` is the platform's clock. */
export function cyclePnl(cycles: Cycle[], now: number): { total: number; today: number; wins: number; closed: number; curve: Point[] } {
  const closed = cycles.filter((c) => c.profit_loss !== null && c.profit_loss !== undefined)
    .sort((a, b) => a.updated_at - b.updated_at)
  const dayStart = Math.floor(now / DAY) * DAY
  let total = 0, today = 0, wins = 0
  const curve: Point[] = []
  for (const c of closed) {
    const p = num(c.profit_loss)
    total += p
    if (c.updated_at >= dayStart) today += p
    if (p > 0) wins++
    curve.push({ time: c.updated_at, value: total })
  }
  if (curve.length) curve.unshift({ time: closed[0].created_at, value: 0 })
  return { total, today, wins, closed: closed.length, curve }
}

function equityPoints(perf: unknown): Point[] {
  const p = perf as { equity_curve?: EquityPoint[]; equity?: EquityPoint[] } | undefined
  const raw = p?.equity_curve ?? p?.equity ?? (Array.isArray(perf) ? (perf as EquityPoint[]) : [])
  return raw.map((e) => ({ time: e.time, value: num(e.equity) })).filter((e) => Number.isFinite(e.value))
}

export function Overview() {
  const health = useHealth()
  const summary = useSummary()
  const perf = usePerformance('all')
  const closed = useCycles({ status: 'COMPLETED', limit: 500 })
  const open = useCycles({ status: OPEN_STATUSES, limit: 50 })
  const recent = useCycles({ limit: 8 })
  const balances = useBalances()
  const pockets = usePockets()

  const now = health.data?.time ?? Date.now()
  const fallback = cyclePnl(closed.data?.items ?? [], now)
  const s = summary.data
  const quote = s?.quote_asset ?? 'USDT'
  const pnlToday = s?.pnl_today ?? (closed.data ? fallback.today : undefined)
  const pnlTotal = s?.pnl_total ?? (closed.data ? fallback.total : undefined)
  const perfCurve = equityPoints(perf.data)
  const curve = perfCurve.length > 1 ? perfCurve : fallback.curve
  const curveLabel = perfCurve.length > 1 ? `Equity (${quote})` : `Cumulative realised PnL (${quote})`

  return (
    <div className="space-y-4" data-testid="page-overview">
      <PageTitle title="Overview" sub={health.data ? `Platform clock ${fmtTime(now)} UTC` : undefined} />
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-5">
        <Stat testId="stat-value" label="Portfolio value" value={s?.total_value ? `${fmtNum(s.total_value)} ${quote}` : '—'}
          sub={summary.error ? 'portfolio service unavailable' : undefined} />
        <Stat testId="stat-pnl-today" label="PnL today" value={fmtSigned(pnlToday)} tone={pnlClass(pnlToday)} sub={quote} />
        <Stat testId="stat-pnl-total" label="PnL total" value={fmtSigned(pnlTotal)} tone={pnlClass(pnlTotal)} sub={quote} />
        <Stat testId="stat-open" label="Open cycles" value={open.data?.total ?? '—'} />
        <Stat testId="stat-winrate" label="Win rate" value={fallback.closed ? `${fmtNum((fallback.wins / fallback.closed) * 100, 1)}%` : '—'}
          sub={closed.data ? `${closed.data.total} closed cycles` : undefined} />
      </div>

      <div className="grid gap-4 xl:grid-cols-3">
        <Card title={curveLabel} className="xl:col-span-2" testId="equity-card">
          <QueryView q={closed} what="Cycles" isEmpty={() => curve.length < 2} empty="No closed trades yet: the curve appears after the first exit.">
            {() => <LineChart points={curve} testId="equity-curve" />}
          </QueryView>
        </Card>
        <Card title="Health" testId="health-card">
          <QueryView q={health} what="Health" isEmpty={(h) => !h.components}>
            {(h) => (
              <div className="flex flex-wrap gap-2">
                {Object.entries(h.components).map(([name, c]) => (
                  <Badge key={name} tone={statusTone(c.status)}><span className="font-semibold">{name}</span> {c.status}</Badge>
                ))}
              </div>
            )}
          </QueryView>
        </Card>
      </div>

      <div className="grid gap-4 xl:grid-cols-2">
        <Card title="Open cycles" testId="open-cycles" actions={<Link className="text-xs text-sky-400 hover:underline" to="/cycles">All cycles →</Link>}>
          <QueryView q={open} what="Cycles" isEmpty={(p) => p.items.length === 0} empty="No open position.">
            {(p) => <CycleMini rows={p.items} />}
          </QueryView>
        </Card>
        <Card title="Latest cycles" testId="recent-cycles">
          <QueryView q={recent} what="Cycles" isEmpty={(p) => p.items.length === 0} empty="No trade yet.">
            {(p) => <CycleMini rows={p.items} />}
          </QueryView>
        </Card>
      </div>

      <div className="grid gap-4 xl:grid-cols-2">
        <Card title="Pockets" testId="pockets">
          <QueryView q={pockets} what="Pockets" empty="No pocket configured.">
            {(rows) => (
              <div className="space-y-3">
                {rows.map((p) => {
                  const used = num(p.current_value) ? (num(p.used_value) / num(p.current_value)) * 100 : 0
                  return (
                    <div key={p.pocket_type}>
                      <div className="mb-1 flex justify-between text-sm">
                        <span className="capitalize text-slate-200">{p.pocket_type} <span className="text-slate-500">· {fmtNum(p.allocation_percent, 0)}%</span></span>
                        <span className="num text-slate-400">{fmtNum(p.used_value)} / {fmtNum(p.current_value)} · free {fmtNum(p.available_value)}</span>
                      </div>
                      <div className="h-1.5 overflow-hidden rounded bg-slate-800"><div className="h-full bg-sky-500" style={{ width: `${Math.min(100, used)}%` }} /></div>
                    </div>
                  )
                })}
              </div>
            )}
          </QueryView>
        </Card>
        <Card title="Balances" testId="balances">
          <QueryView q={balances} what="Balances" empty="No balance.">
            {(rows) => (
              <DataTable rows={rows} rowKey={(b) => b.asset} columns={[
                { key: 'asset', header: 'Asset', cell: (b) => <span className="font-medium text-slate-100">{b.asset}</span> },
                { key: 'free', header: 'Free', cell: (b) => fmtQty(b.free), className: 'text-right' },
                { key: 'locked', header: 'Locked', cell: (b) => fmtQty(b.locked), className: 'text-right' },
                { key: 'value', header: `Value (${quote})`, cell: (b) => fmtNum(b.value_quote), className: 'text-right' },
              ]} />
            )}
          </QueryView>
        </Card>
      </div>
    </div>
  )
}

function CycleMini({ rows }: { rows: Cycle[] }) {
  return (
    <DataTable rows={rows} rowKey={(c) => c.id} columns={[
      { key: 'sym', header: 'Symbol', cell: (c) => <Link to={`/cycles/${c.id}`} className="font-medium text-slate-100 hover:text-sky-300">{c.symbol}</Link> },
      { key: 'strat', header: 'Strategy', cell: (c) => <span className="text-slate-400">{c.strategy}</span>, hideOnMobile: true },
      { key: 'status', header: 'Status', cell: (c) => <StatusBadge status={c.status} /> },
      { key: 'entry', header: 'Entry', cell: (c) => fmtQty(c.entry_price, 4), className: 'text-right' },
      { key: 'pnl', header: 'PnL', cell: (c) => <span className={pnlClass(c.profit_loss)}>{fmtSigned(c.profit_loss, 2)}</span>, className: 'text-right' },
      { key: 'time', header: 'Updated', cell: (c) => <span className="text-slate-500">{fmtTime(c.updated_at).slice(11)}</span>, hideOnMobile: true },
    ]} />
  )
}
