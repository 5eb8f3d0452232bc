/**
 * The Backtests page's logic, kept out of the components so it is tested without a browser: the form ->
 * POST body (with the errors the user can fix before the server refuses), progress, drawdown, the trades as
 * chart markers on (possibly merged) bars, and the metric rows shown for one run or two side by side.
 */
import type { BacktestProgress, BacktestRequest, BacktestRun, BacktestTrade, Candle } from '../api/types'
import type { Marker } from '../components/CandleChart'
import { fmtNum, fmtSigned, fmtTime, num } from './format'

const DAY_MS = 86_400_000

export interface BacktestForm {
  strategies: string[]
  symbols: string
  interval: string
  /** 'range': start/end dates; 'days': the last `days` days up to now */
  period: 'range' | 'days'
  start: string
  end: string
  days: string
  data: string
  balance: string
  engine: 'fast' | 'replay'
  stake: string
}

export const defaultForm = (interval = '1h'): BacktestForm => ({
  strategies: [], symbols: '', interval, period: 'days', start: '', end: '', days: '30', data: 'store',
  balance: '10000', engine: 'fast', stake: '',
})

/** 'YYYY-MM-DD' (or with 'THH:MM') read as UTC, the backtest's time zone; NaN when not a date. */
export function parseUtc(s: string): number {
  const t = s.trim()
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?$/.test(t)) return NaN
  return Date.parse(`${t.replace(' ', 'T')}${t.length === 10 ? 'T00:00:00' : ''}Z`)
}

const POSITIVE = /^\d+(\.\d+)?$/

/** The POST /api/backtest/runs body, or the field errors that stop it being sent. */
export function buildRequest(f: BacktestForm, now = Date.now()): { request?: BacktestRequest; errors: Record<string, string> } {
  const errors: Record<string, string> = {}
  const symbols = f.symbols.split(/[\s,]+/).map((s) => s.trim().toUpperCase()).filter(Boolean)
  const badSym = symbols.find((s) => !/^[A-Z0-9]{2,20}$/.test(s))
  if (badSym) errors.symbols = `not a symbol: ${badSym}`
  let start = NaN, end = NaN
  if (f.period === 'days') {
    const d = Number(f.days)
    if (!Number.isInteger(d) || d < 1 || d > 3650) errors.days = 'a whole number of days, 1 to 3650'
    else { end = now; start = now - d * DAY_MS }
  } else {
    start = parseUtc(f.start)
    end = parseUtc(f.end)
    if (!Number.isFinite(start)) errors.start = 'a date: YYYY-MM-DD (UTC)'
    if (!Number.isFinite(end)) errors.end = 'a date: YYYY-MM-DD (UTC)'
    else if (Number.isFinite(start) && end <= start) errors.end = 'the end must be after the start'
  }
  if (!POSITIVE.test(f.balance.trim()) || Number(f.balance) <= 0) errors.balance = 'a positive amount'
  if (f.stake.trim() && (!POSITIVE.test(f.stake.trim()) || Number(f.stake) <= 0)) errors.stake = 'a positive amount, or empty for risk sizing'
  if (!f.data.trim()) errors.data = 'store, bundled, a folder or kline files'
  if (Object.keys(errors).length) return { errors }
  return {
    errors,
    request: {
      strategies: f.strategies, symbols, interval: f.interval, start, end, data: f.data.trim(),
      balance: f.balance.trim(), stake: f.stake.trim() || null, engine: f.engine,
    },
  }
}

/** 0..100 for a progress bar; null while the total is not known yet. */
export function progressPct(p: Pick<BacktestProgress, 'done' | 'total'> | undefined): number | null {
  if (!p || p.total <= 0) return null
  return Math.min(100, Math.max(0, (p.done / p.total) * 100))
}

/** Time left at the rate so far (ms), from the first and latest progress events; null when unknown. */
export function etaMs(first: BacktestProgress | undefined, last: BacktestProgress | undefined): number | null {
  if (!first || !last || last.total <= 0 || last.done <= first.done || last.time <= first.time) return null
  const rate = (last.done - first.done) / (last.time - first.time)
  return Math.max(0, (last.total - last.done) / rate)
}

export const isFinished = (status: string | undefined) => !!status && status !== 'running'

export function equityPoints(run: Pick<BacktestRun, 'equity'>): { time: number; value: number }[] {
  return (run.equity ?? []).map(([time, value]) => ({ time, value }))
}

/** Fall from the running peak, as a negative percentage (0 at a new high). */
export function drawdownPoints(equity: [number, number][]): { time: number; value: number }[] {
  let peak = -Infinity
  return equity.map(([time, v]) => {
    peak = Math.max(peak, v)
    return { time, value: peak > 0 ? ((v - peak) / peak) * 100 : 0 }
  })
}

/** Equity as % return from its first point: runs with different balances on one scale. */
export function returnPoints(equity: [number, number][]): { time: number; value: number }[] {
  const base = equity[0]?.[1]
  if (!base) return []
  return equity.map(([time, v]) => ({ time, value: (v / base - 1) * 100 }))
}

/** The open time of the bar holding `t` (bars sorted by open time); null outside them. */
export function barOf(bars: Pick<Candle, 'open_time' | 'close_time'>[], t: number): number | null {
  if (!bars.length || t < bars[0].open_time) return null
  let lo = 0, hi = bars.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (bars[mid].open_time <= t) lo = mid
    else hi = mid - 1
  }
  const b = bars[lo]
  const end = b.close_time ?? (bars[lo + 1]?.open_time ?? Infinity) - 1
  return t <= end ? b.open_time : null
}

/** Entries (BUY) and exits (SELL) of one symbol's trades, on the bars that hold their times. */
export function tradeMarkers(trades: BacktestTrade[], symbol: string, bars: Pick<Candle, 'open_time' | 'close_time'>[]): Marker[] {
  const out: Marker[] = []
  for (const t of trades) {
    if (t.symbol !== symbol) continue
    const inBar = barOf(bars, t.entry_time)
    if (inBar !== null) out.push({ time: inBar, side: 'BUY', text: `in ${fmtNum(t.entry_price, 2)}` })
    if (t.exit_time !== null) {
      const outBar = barOf(bars, t.exit_time)
      if (outBar !== null) out.push({ time: outBar, side: 'SELL', text: `out ${fmtSigned(t.pnl, 2)}` })
    }
  }
  return out
}

type Kind = 'pct' | 'ratio' | 'money' | 'int'
export interface MetricDef { key: string; label: string; kind: Kind; better: 'higher' | 'lower' | null; bh?: string }

/** The metrics shown, in order; `bh`: the buy-and-hold figure beside it. */
export const METRICS: MetricDef[] = [
  { key: 'total_return', label: 'Total return', kind: 'pct', better: 'higher', bh: 'return' },
  { key: 'final_equity', label: 'Final equity', kind: 'money', better: 'higher', bh: 'final_equity' },
  { key: 'net_pnl', label: 'Net PnL', kind: 'money', better: 'higher' },
  { key: 'cagr', label: 'CAGR', kind: 'pct', better: 'higher', bh: 'cagr' },
  { key: 'sharpe', label: 'Sharpe', kind: 'ratio', better: 'higher', bh: 'sharpe' },
  { key: 'sortino', label: 'Sortino', kind: 'ratio', better: 'higher', bh: 'sortino' },
  { key: 'max_drawdown', label: 'Max drawdown', kind: 'pct', better: 'lower', bh: 'max_drawdown' },
  { key: 'calmar', label: 'Calmar', kind: 'ratio', better: 'higher', bh: 'calmar' },
  { key: 'profit_factor', label: 'Profit factor', kind: 'ratio', better: 'higher' },
  { key: 'expectancy', label: 'Expectancy', kind: 'money', better: 'higher' },
  { key: 'win_rate', label: 'Win rate', kind: 'pct', better: 'higher' },
  { key: 'exposure', label: 'Exposure', kind: 'pct', better: null },
  { key: 'trades', label: 'Trades', kind: 'int', better: null },
  { key: 'wins', label: 'Wins', kind: 'int', better: null },
  { key: 'losses', label: 'Losses', kind: 'int', better: null },
  { key: 'open_at_end', label: 'Open at end', kind: 'int', better: null },
  { key: 'fees', label: 'Fees', kind: 'money', better: 'lower' },
]

export function fmtMetric(v: unknown, kind: Kind): string {
  if (v === undefined || v === null || v === '') return '—'
  const n = num(v)
  if (!Number.isFinite(n)) return String(v)
  if (kind === 'pct') return `${fmtNum(n * 100, 2)}%`
  if (kind === 'int') return String(Math.round(n))
  return fmtNum(n, 2)
}

export interface CompareRow { key: string; label: string; a: string; b: string; diff: string; winner: 'a' | 'b' | null }

/** Two runs' metrics side by side: B minus A, and which one is better where "better" has a direction. */
export function compareMetrics(a: Record<string, unknown>, b: Record<string, unknown>): CompareRow[] {
  return METRICS.map((m) => {
    const x = num(a[m.key]), y = num(b[m.key])
    let diff = '—'
    let winner: 'a' | 'b' | null = null
    if (Number.isFinite(x) && Number.isFinite(y)) {
      const d = y - x
      diff = m.kind === 'pct' ? fmtSigned(d * 100, 2, ' pp') : m.kind === 'int' ? fmtSigned(d, 0) : fmtSigned(d, 2)
      if (m.better && d !== 0) winner = (d > 0) === (m.better === 'higher') ? 'b' : 'a'
    }
    return { key: m.key, label: m.label, a: fmtMetric(a[m.key], m.kind), b: fmtMetric(b[m.key], m.kind), diff, winner }
  })
}

/** One line saying what a run was: strategies, symbols, interval and period. */
export function describeRun(r: Pick<BacktestRun, 'strategies' | 'symbols' | 'interval' | 'start_time' | 'end_time'>): string {
  const strat = r.strategies.length > 3 ? `${r.strategies.slice(0, 3).join(', ')} +${r.strategies.length - 3}` : r.strategies.join(', ')
  return `${strat} · ${r.symbols.join(', ')} · ${r.interval} · ${fmtTime(r.start_time).slice(0, 10)} → ${fmtTime(r.end_time).slice(0, 10)}`
}
