/**
 * Backtests: start a run (the same as `roottrading backtest`, in a worker process on the server), follow it
 * live (`backtest.progress` over the WebSocket), read its results (metrics beside buy-and-hold, equity,
 * drawdown, trades on the candles, the trade list) and put two runs side by side.
 */
import { lazy, Suspense, useMemo, useState } from 'react'
import { useSearchParams } from 'react-router-dom'
import {
  keys, startBacktest, stopBacktest, useAction, useBacktestCandles, useBacktestProgress, useBacktestRun,
  useBacktestRuns, useStrategies,
} from '../api/hooks'
import type { BacktestProgress, BacktestRun, BacktestTrade, StrategyInfo } from '../api/types'
import { BacktestForm } from '../components/BacktestForm'
import { DataTable, type Column } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { LineChart } from '../components/LineChart'
import { MultiLineChart } from '../components/MultiLineChart'
import { ActionMessage, Badge, Button, Card, ErrorState, inputBase, Loading, QueryView, statusTone } from '../components/ui'
import {
  compareMetrics, describeRun, drawdownPoints, equityPoints, etaMs, fmtMetric, isFinished, METRICS, progressPct,
  returnPoints, tradeMarkers,
} from '../lib/backtest'
import { fmtNum, fmtQty, fmtSigned, fmtTime, pnlClass, shortId } from '../lib/format'
import { useSymbolUniverse } from '../lib/symbols'

const CandleChart = lazy(() => import('../components/CandleChart'))
const NO_OVERLAYS: never[] = []

export default function Backtests() {
  const [params, setParams] = useSearchParams()
  const selected = params.get('run')
  const [compare, setCompare] = useState<string[]>([])
  const runs = useBacktestRuns()
  const strategies = useStrategies()
  const { symbols } = useSymbolUniverse()
  const progress = useBacktestProgress().data
  const start = useAction(startBacktest, [keys.backtestRuns])
  const stop = useAction(stopBacktest, [keys.backtestRuns])
  const select = (id: string) => setParams((p) => { p.set('run', id); return p })
  const toggleCompare = (id: string) =>
    setCompare((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c, id].slice(-2)))
  const list = Array.isArray(runs.data) ? runs.data : []
  const running = list.filter((r) => r.status === 'running' && !isFinished(progress[r.id]?.last.status))
  const strategyList: StrategyInfo[] = Array.isArray(strategies.data) ? strategies.data : []

  const columns: Column<BacktestRun>[] = [
    { key: 'cmp', header: 'Compare', cell: (r) => (
      <input type="checkbox" aria-label={`compare ${r.id}`} checked={compare.includes(r.id)}
        onClick={(e) => e.stopPropagation()} onChange={() => toggleCompare(r.id)} />
    ) },
    { key: 'id', header: 'Run', cell: (r) => <span className="font-mono text-xs" title={r.id}>{shortId(r.id, 12)}</span> },
    { key: 'status', header: 'Status', cell: (r) => <Badge tone={statusTone(r.status)}>{r.status}</Badge> },
    { key: 'what', header: 'What', cell: (r) => <span className="text-xs text-slate-300">{describeRun(r)}</span> },
    { key: 'engine', header: 'Engine', cell: (r) => <span title={r.fallback ?? undefined}>{r.engine}{r.fallback ? '*' : ''}</span>, hideOnMobile: true },
    { key: 'ret', header: 'Return', cell: (r) => <span className={pnlClass(r.metrics?.total_return)}>{fmtMetric(r.metrics?.total_return, 'pct')}</span> },
    { key: 'trades', header: 'Trades', cell: (r) => fmtMetric(r.metrics?.trades, 'int') },
    { key: 'created', header: 'Started', cell: (r) => fmtTime(r.created_at), hideOnMobile: true },
  ]

  return (
    <div className="space-y-4" data-testid="page-backtests">
      <PageTitle title="Backtests" sub="The platform's strategies and rules on history: the same run as `roottrading backtest`." />
      <div className="grid gap-4 xl:grid-cols-[420px_1fr]">
        <Card title="New backtest">
          <BacktestForm strategies={strategyList} symbols={symbols} pending={start.isPending}
            onSubmit={(req) => start.mutate(req, { onSuccess: (r) => select(r.id) })} />
          <div className="mt-3"><ActionMessage error={start.error} success={start.data && `Started ${start.data.id}`} /></div>
        </Card>
        <div className="space-y-4">
          {running.map((r) => (
            <RunProgress key={r.id} run={r} events={progress[r.id]} onStop={() => stop.mutate(r.id)} stopping={stop.isPending} />
          ))}
          {stop.error ? <ActionMessage error={stop.error} /> : null}
          <Card title="Runs" actions={compare.length === 2 ? <Badge tone="blue">2 runs compared below</Badge> : <span className="text-xs text-slate-500">tick two runs to compare</span>}>
            <QueryView q={runs} what="Backtest runs" empty="No backtest yet: start one with the form.">
              {() => <DataTable testId="backtest-runs" rows={list} columns={columns} rowKey={(r) => r.id} onRowClick={(r) => select(r.id)} selectedKey={selected} />}
            </QueryView>
          </Card>
        </div>
      </div>
      {compare.length === 2 && <CompareRuns a={compare[0]} b={compare[1]} />}
      {selected && <RunResult id={selected} events={progress[selected]} />}
    </div>
  )
}

export function RunProgress({ run, events, onStop, stopping }: {
  run: Pick<BacktestRun, 'id' | 'strategies' | 'symbols' | 'interval' | 'start_time' | 'end_time'>
  events?: { first: BacktestProgress; last: BacktestProgress }
  onStop?: () => void
  stopping?: boolean
}) {
  const pct = progressPct(events?.last)
  const eta = etaMs(events?.first, events?.last)
  return (
    <Card testId="backtest-progress" title={<>Running <span className="font-mono normal-case">{run.id}</span></>}
      actions={onStop && <Button variant="danger" className="px-2 py-0.5 text-xs" onClick={onStop} disabled={stopping}>Stop</Button>}>
      <p className="mb-2 text-xs text-slate-400">{describeRun(run)}</p>
      <div className="h-2 w-full overflow-hidden rounded bg-slate-800" role="progressbar" aria-label="backtest progress"
        aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct === null ? undefined : Math.round(pct)}>
        <div className={`h-full bg-sky-500 transition-all ${pct === null ? 'w-1/4 animate-pulse' : ''}`} style={pct === null ? undefined : { width: `${pct}%` }} />
      </div>
      <p className="num mt-1 text-xs text-slate-400" data-testid="backtest-progress-text">
        {events ? `${events.last.done.toLocaleString('en-US')} / ${events.last.total.toLocaleString('en-US')} candles` : 'loading data…'}
        {pct !== null && ` · ${pct.toFixed(0)}%`}
        {eta !== null && ` · about ${Math.ceil(eta / 1000)} s left`}
      </p>
    </Card>
  )
}

function MetricsTable({ metrics }: { metrics: Record<string, unknown> }) {
  const bh = (metrics.buy_and_hold ?? {}) as Record<string, unknown>
  return (
    <table className="w-full text-sm" data-testid="backtest-metrics">
      <thead><tr className="border-b border-line text-[11px] uppercase tracking-wider text-slate-500">
        <th className="py-1 text-left font-medium">Metric</th><th className="py-1 text-right font-medium">Run</th><th className="py-1 text-right font-medium">Buy &amp; hold</th>
      </tr></thead>
      <tbody>
        {METRICS.map((m) => (
          <tr key={m.key} className="border-b border-line/50 last:border-0" data-metric={m.key}>
            <td className="py-1 text-slate-400">{m.label}</td>
            <td className="num py-1 text-right text-slate-100">{fmtMetric(metrics[m.key], m.kind)}</td>
            <td className="num py-1 text-right text-slate-500">{m.bh ? fmtMetric(bh[m.bh], m.kind) : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

const TRADE_COLUMNS: Column<BacktestTrade & { i: number }>[] = [
  { key: 'symbol', header: 'Symbol', cell: (t) => t.symbol },
  { key: 'strategy', header: 'Strategy', cell: (t) => t.strategy },
  { key: 'in', header: 'Entry', cell: (t) => fmtTime(t.entry_time) },
  { key: 'inp', header: 'Entry price', cell: (t) => fmtQty(t.entry_price) },
  { key: 'out', header: 'Exit', cell: (t) => (t.exit_time === null ? 'open' : fmtTime(t.exit_time)) },
  { key: 'outp', header: 'Exit price', cell: (t) => fmtQty(t.exit_price) },
  { key: 'qty', header: 'Quantity', cell: (t) => fmtQty(t.quantity) },
  { key: 'fees', header: 'Fees', cell: (t) => fmtNum(t.fees, 4), hideOnMobile: true },
  { key: 'pnl', header: 'PnL', cell: (t) => <span className={pnlClass(t.pnl)}>{fmtSigned(t.pnl, 2)}</span> },
  { key: 'why', header: 'Exit reason', cell: (t) => t.exit_reason ?? '—', hideOnMobile: true },
]

function TradesOnCandles({ run }: { run: BacktestRun }) {
  const [symbol, setSymbol] = useState(run.symbols[0] ?? '')
  const candles = useBacktestCandles(run.id, symbol, run.status !== 'running')
  const bars = useMemo(() => (Array.isArray(candles.data) ? candles.data : []), [candles.data])
  const markers = useMemo(() => tradeMarkers(run.trades ?? [], symbol, bars), [run.trades, symbol, bars])
  return (
    <Card title={`Trades on ${symbol} · ${run.interval}`} testId="backtest-candles" actions={run.symbols.length > 1 && (
      <select aria-label="chart symbol" className={`${inputBase} w-auto py-0.5 text-xs`} value={symbol} onChange={(e) => setSymbol(e.target.value)}>
        {run.symbols.map((s) => <option key={s}>{s}</option>)}
      </select>
    )}>
      {candles.isPending ? <Loading label="Loading candles…" /> : candles.error ? <ErrorState error={candles.error} what="The run's candles" /> : (
        <>
          <p className="mb-1 text-xs text-slate-500" data-testid="backtest-markers">{markers.length} entries/exits on {bars.length} bars</p>
          <Suspense fallback={<Loading label="Loading chart…" />}><CandleChart candles={bars} overlays={NO_OVERLAYS} markers={markers} height={380} /></Suspense>
        </>
      )}
    </Card>
  )
}

export function RunResult({ id, events }: { id: string; events?: { first: BacktestProgress; last: BacktestProgress } }) {
  const run = useBacktestRun(id)
  return (
    <QueryView q={run} what="This backtest run">
      {(r) => {
        const trades = (r.trades ?? []).map((t, i) => ({ ...t, i }))
        const error = r.status === 'failed' ? (r.warnings[0] ?? events?.last.error ?? 'failed') : null
        return (
          <div className="space-y-4" data-testid="backtest-result">
            <Card title={<>Run <span className="font-mono normal-case">{r.id}</span></>} actions={<Badge tone={statusTone(r.status)}>{r.status}</Badge>}>
              <p className="text-sm text-slate-300">{describeRun(r)}</p>
              <p className="num mt-1 text-xs text-slate-500">
                engine {r.engine}{r.fallback ? ` (fallback: ${r.fallback})` : ''} · data {r.data} · balance {r.balance}
                {r.stake ? ` · stake ${r.stake}` : ''} · {r.candles.toLocaleString('en-US')} candles in {fmtNum(r.seconds, 2)} s
              </p>
              {error && <pre role="alert" className="mt-2 whitespace-pre-wrap rounded bg-rose-500/10 p-2 text-xs text-rose-300">{error}</pre>}
              {!error && r.warnings.length > 0 && <ul className="mt-2 list-disc pl-5 text-xs text-amber-300">{r.warnings.map((w) => <li key={w}>{w}</li>)}</ul>}
              {r.status === 'running' && <p className="mt-2 text-xs text-slate-400">Results appear when the run ends.</p>}
            </Card>
            {r.status !== 'running' && r.status !== 'failed' && (
              <>
                <div className="grid gap-4 lg:grid-cols-[360px_1fr]">
                  <Card title="Metrics"><MetricsTable metrics={r.metrics} /></Card>
                  <div className="space-y-4">
                    <Card title="Equity"><LineChart points={equityPoints(r)} testId="backtest-equity" /></Card>
                    <Card title="Drawdown (%)"><LineChart points={drawdownPoints(r.equity ?? [])} height={140} testId="backtest-drawdown" /></Card>
                  </div>
                </div>
                <TradesOnCandles key={r.id} run={r} />
                <Card title={`Trades (${trades.length})`}>
                  <DataTable testId="backtest-trades" rows={trades} columns={TRADE_COLUMNS} rowKey={(t) => String(t.i)} empty="No trade in this run." />
                </Card>
              </>
            )}
          </div>
        )
      }}
    </QueryView>
  )
}

export function CompareRuns({ a, b }: { a: string; b: string }) {
  const ra = useBacktestRun(a)
  const rb = useBacktestRun(b)
  if (ra.isPending || rb.isPending) return <Loading label="Loading the two runs…" />
  if (!ra.data || !rb.data) return <ErrorState error={ra.error ?? rb.error} what="A compared run" />
  const rows = compareMetrics(ra.data.metrics, rb.data.metrics)
  const win = (w: string | null, side: 'a' | 'b') => (w === side ? 'text-emerald-300 font-semibold' : 'text-slate-200')
  return (
    <Card title="Two runs side by side" testId="backtest-compare">
      <div className="grid gap-4 lg:grid-cols-2">
        <div>
          <table className="w-full text-sm">
            <thead><tr className="border-b border-line text-[11px] uppercase tracking-wider text-slate-500">
              <th className="py-1 text-left font-medium">Metric</th>
              <th className="py-1 text-right font-medium" title={describeRun(ra.data)}>A {shortId(a, 10)}</th>
              <th className="py-1 text-right font-medium" title={describeRun(rb.data)}>B {shortId(b, 10)}</th>
              <th className="py-1 text-right font-medium">B − A</th>
            </tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.key} data-metric={r.key} className="border-b border-line/50 last:border-0">
                  <td className="py-1 text-slate-400">{r.label}</td>
                  <td className={`num py-1 text-right ${win(r.winner, 'a')}`}>{r.a}</td>
                  <td className={`num py-1 text-right ${win(r.winner, 'b')}`}>{r.b}</td>
                  <td className="num py-1 text-right text-slate-500">{r.diff}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="mt-2 text-xs text-slate-500">A: {describeRun(ra.data)}<br />B: {describeRun(rb.data)}</p>
        </div>
        <div>
          <h3 className="mb-1 text-xs font-semibold uppercase tracking-wider text-slate-400">Return (%)</h3>
          <MultiLineChart testId="backtest-compare-equity" unit="%" series={[
            { id: 'a', label: `A ${shortId(a, 10)}`, color: '#38bdf8', points: returnPoints(ra.data.equity ?? []) },
            { id: 'b', label: `B ${shortId(b, 10)}`, color: '#f59e0b', points: returnPoints(rb.data.equity ?? []) },
          ]} />
        </div>
      </div>
    </Card>
  )
}
