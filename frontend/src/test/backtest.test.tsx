import { QueryClient } from '@tanstack/react-query'
import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { keys, type ProgressMap } from '../api/hooks'
import type { BacktestRequest, BacktestRun, BacktestTrade } from '../api/types'
import { BacktestForm } from '../components/BacktestForm'
import { LineChart } from '../components/LineChart'
import {
  barOf, buildRequest, compareMetrics, defaultForm, drawdownPoints, etaMs, parseUtc, progressPct, returnPoints,
  tradeMarkers,
} from '../lib/backtest'
import { FrameApplier } from '../live/frames'
import Backtests, { RunProgress } from '../pages/Backtests'
import { jsonResponse, renderWithClient } from './utils'

// lightweight-charts needs a canvas jsdom lacks: the stand-in shows what the page hands it
vi.mock('../components/CandleChart', () => ({
  default: ({ candles, markers }: { candles: unknown[]; markers: { side: string; time: number }[] }) =>
    <div data-testid="candle-chart">{candles.length} bars, markers {markers.map((m) => `${m.side}@${m.time}`).join(' ')}</div>,
}))

const H = 3_600_000
const T0 = Date.UTC(2018, 4, 1)

describe('the backtest form -> POST body', () => {
  it('reads dates as UTC and sends symbols upper-cased, the stake only when given', () => {
    const { request, errors } = buildRequest({
      ...defaultForm(), period: 'range', start: '2018-05-01', end: '2018-05-06', symbols: 'btcusdt, ethusdt',
      strategies: ['ema_cross'], data: 'bundled', engine: 'replay', balance: '5000',
    })
    expect(errors).toEqual({})
    expect(request).toEqual({
      strategies: ['ema_cross'], symbols: ['BTCUSDT', 'ETHUSDT'], interval: '1h', start: T0, end: Date.UTC(2018, 4, 6),
      data: 'bundled', balance: '5000', stake: null, engine: 'replay',
    })
    expect(buildRequest({ ...defaultForm(), stake: '25.5' }).request?.stake).toBe('25.5')
    expect(parseUtc('2018-05-01 12:30')).toBe(T0 + 12.5 * H)
  })

  it('turns "last N days" into a period ending now', () => {
    const now = T0 + 10 * 24 * H
    const { request } = buildRequest({ ...defaultForm(), days: '3' }, now)
    expect(request).toMatchObject({ start: now - 3 * 24 * H, end: now, symbols: [], strategies: [] })
  })

  it('names each field the user must fix and sends nothing', () => {
    const bad = buildRequest({ ...defaultForm(), period: 'range', start: '1 May', end: '2018-05-01', balance: '-3', stake: 'abc', symbols: 'BTC/USDT' })
    expect(bad.request).toBeUndefined()
    expect(Object.keys(bad.errors).sort()).toEqual(['balance', 'stake', 'start', 'symbols'])
    const backwards = buildRequest({ ...defaultForm(), period: 'range', start: '2018-05-06', end: '2018-05-01' })
    expect(backwards.errors.end).toMatch(/after the start/)
    expect(buildRequest({ ...defaultForm(), days: '0' }).errors.days).toBeTruthy()
  })
})

describe('results', () => {
  it('drawdown is the fall from the running peak, in percent; returns start at 0', () => {
    const eq: [number, number][] = [[1, 100], [2, 120], [3, 90], [4, 130]]
    expect(drawdownPoints(eq).map((p) => p.value)).toEqual([0, 0, -25, 0])
    expect(returnPoints(eq).map((p) => Math.round(p.value))).toEqual([0, 20, -10, 30])
  })

  it('puts entries and exits on the merged bar that holds their time, only for the chosen symbol', () => {
    // three merged bars of 3 hourly candles each
    const bars = [0, 1, 2].map((i) => ({ open_time: T0 + i * 3 * H, close_time: T0 + (i + 1) * 3 * H - 1 }))
    expect(barOf(bars, T0 + 4 * H - 1)).toBe(T0 + 3 * H)
    expect(barOf(bars, T0 - 1)).toBeNull()
    expect(barOf(bars, T0 + 9 * H)).toBeNull()
    const trade = (symbol: string, entry: number, exit: number | null): BacktestTrade => ({
      symbol, strategy: 's', entry_time: entry, entry_price: '100', exit_time: exit, exit_price: exit ? '110' : null,
      quantity: '1', fees: '0.1', pnl: '9.9',
    })
    const ms = tradeMarkers([
      trade('BTCUSDT', T0 + H - 1, T0 + 7 * H - 1),
      trade('ETHUSDT', T0 + H - 1, T0 + 2 * H - 1),
      trade('BTCUSDT', T0 + 8 * H - 1, null), // still open at the end: an entry only
    ], 'BTCUSDT', bars)
    expect(ms.map((m) => [m.side, m.time])).toEqual([['BUY', T0], ['SELL', T0 + 6 * H], ['BUY', T0 + 6 * H]])
    expect(ms[1].text).toBe('out +9.90')
  })

  it('compares two runs: B minus A, the better one by each metric\'s direction', () => {
    const rows = compareMetrics(
      { total_return: 0.1, max_drawdown: 0.05, trades: 4, sharpe: 1 },
      { total_return: 0.05, max_drawdown: 0.02, trades: 6, sharpe: 1 },
    )
    const by = Object.fromEntries(rows.map((r) => [r.key, r]))
    expect(by.total_return).toMatchObject({ a: '10.00%', b: '5.00%', diff: '-5.00 pp', winner: 'a' })
    expect(by.max_drawdown.winner).toBe('b')
    expect(by.trades).toMatchObject({ diff: '+2', winner: null })
    expect(by.sharpe.winner).toBeNull()
    expect(by.calmar).toMatchObject({ a: '—', diff: '—' })
  })

  it('progress and ETA from the first and latest events', () => {
    const ev = (done: number, time: number) => ({ run_id: 'r', status: 'running', done, total: 1000, time })
    expect(progressPct(ev(250, 0))).toBe(25)
    expect(progressPct({ done: 0, total: 0 })).toBeNull()
    expect(etaMs(ev(100, 1000), ev(300, 2000))).toBe(3500) // 200 candles/s, 700 left
    expect(etaMs(ev(100, 1000), ev(100, 2000))).toBeNull()
  })
})

describe('backtest.progress frames', () => {
  it('keep each run\'s first and latest event, and refresh the runs when one ends', () => {
    vi.useFakeTimers()
    const qc = new QueryClient()
    qc.setQueryData(keys.backtestRuns, [])
    qc.setQueryData(keys.backtestRun('r1'), { id: 'r1' })
    const applier = new FrameApplier(qc, 50)
    const ev = (status: string, done: number) => ({ topic: 'backtest.progress', data: { run_id: 'r1', status, done, total: 10, time: done } })
    applier.apply(ev('running', 2))
    applier.apply(ev('running', 5))
    vi.advanceTimersByTime(100)
    expect(qc.getQueryData<ProgressMap>(keys.backtestProgress)!.r1).toMatchObject({ first: { done: 2 }, last: { done: 5 } })
    expect(qc.getQueryState(keys.backtestRuns)!.isInvalidated).toBe(false)
    applier.apply(ev('completed', 10))
    expect(qc.getQueryState(keys.backtestRun('r1'))!.isInvalidated).toBe(true)
    vi.advanceTimersByTime(100)
    expect(qc.getQueryState(keys.backtestRuns)!.isInvalidated).toBe(true)
    applier.refreshAll() // after a reconnect: a refetch of the pushed-only progress would empty it
    expect(qc.getQueryState(keys.backtestProgress)!.isInvalidated).toBe(false)
    expect(qc.getQueryData<ProgressMap>(keys.backtestProgress)!.r1.last.status).toBe('completed')
    vi.useRealTimers()
  })
})

describe('components', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('the form sends the chosen strategies and fields, and shows errors instead of sending', async () => {
    const sent: BacktestRequest[] = []
    renderWithClient(<BacktestForm strategies={[{ name: 'ema_cross', enabled: true, params: {} }, { name: 'rsi_cross', enabled: true, params: {} }]}
      symbols={['BTCUSDT']} onSubmit={(r) => sent.push(r)} />)
    const user = userEvent.setup()
    await user.click(screen.getByLabelText('from – to (UTC)'))
    await user.type(screen.getByLabelText('start'), '2018-05-06')
    await user.type(screen.getByLabelText('end'), '2018-05-01')
    await user.click(screen.getByRole('button', { name: 'Run backtest' }))
    expect(screen.getByRole('alert')).toHaveTextContent('after the start')
    expect(sent).toEqual([])
    await user.clear(screen.getByLabelText('start')); await user.type(screen.getByLabelText('start'), '2018-04-01')
    await user.click(screen.getByLabelText('strategy rsi_cross'))
    await user.type(screen.getByLabelText('symbols'), 'btcusdt')
    await user.selectOptions(screen.getByLabelText('engine'), 'replay')
    await user.clear(screen.getByLabelText('data')); await user.type(screen.getByLabelText('data'), 'bundled')
    await user.type(screen.getByLabelText('stake'), '100')
    await user.click(screen.getByRole('button', { name: 'Run backtest' }))
    expect(sent).toEqual([{ strategies: ['rsi_cross'], symbols: ['BTCUSDT'], interval: '1h', start: Date.UTC(2018, 3, 1), end: T0,
      data: 'bundled', balance: '10000', stake: '100', engine: 'replay' }])
  })

  it('a running run shows its progress bar and ETA', () => {
    renderWithClient(<RunProgress run={{ id: 'bt-1', strategies: ['ema_cross'], symbols: ['BTCUSDT'], interval: '1h', start_time: T0, end_time: T0 + 120 * H }}
      events={{ first: { run_id: 'bt-1', status: 'running', done: 10, total: 120, time: 0 }, last: { run_id: 'bt-1', status: 'running', done: 60, total: 120, time: 5000 } }} />)
    expect(screen.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '50')
    expect(screen.getByTestId('backtest-progress-text')).toHaveTextContent('60 / 120 candles · 50% · about 6 s left')
  })

  const run = (id: string, ret: number, equity: [number, number][]): BacktestRun => ({
    id, created_at: T0, status: 'completed', engine: 'replay', fallback: null, strategies: ['ema_cross'], symbols: ['BTCUSDT'],
    interval: '1h', start_time: T0, end_time: T0 + 3 * H, data: 'bundled', balance: '10000', stake: null, candles: 3, seconds: 0.5,
    metrics: { total_return: ret, trades: 1, max_drawdown: 0.01, buy_and_hold: { return: 0.2 } }, warnings: [],
    trades: [{ symbol: 'BTCUSDT', strategy: 'ema_cross', entry_time: T0 + H - 1, entry_price: '100', exit_time: T0 + 3 * H - 1, exit_price: '105', quantity: '1', fees: '0.2', pnl: '4.8', exit_reason: 'signal' }],
    equity,
  })

  it('the page lists runs, shows one\'s results with trades on its candles, and compares two', async () => {
    const a = run('bt-aaaa', 0.05, [[T0, 10000], [T0 + H, 9900], [T0 + 2 * H, 10500]])
    const b = run('bt-bbbb', 0.02, [[T0, 10000], [T0 + 2 * H, 10200]])
    const candles = [0, 1, 2].map((i) => ({ open_time: T0 + i * H, close_time: T0 + (i + 1) * H - 1, open: 1, high: 2, low: 0.5, close: 1.5, volume: 1 }))
    const fetchMock = vi.fn(async (url: string) => {
      if (url.startsWith('/api/backtest/runs?')) return jsonResponse([{ ...a, trades: undefined, equity: undefined }, { ...b, trades: undefined, equity: undefined }])
      if (url.startsWith('/api/backtest/runs/bt-aaaa/candles')) return jsonResponse(candles)
      if (url === '/api/backtest/runs/bt-aaaa') return jsonResponse(a)
      if (url === '/api/backtest/runs/bt-bbbb') return jsonResponse(b)
      if (url.startsWith('/api/analyzer/strategies')) return jsonResponse([{ name: 'ema_cross', enabled: true, params: {} }])
      return jsonResponse({ detail: 'not here' }, 404)
    })
    vi.stubGlobal('fetch', fetchMock)
    renderWithClient(<Backtests />)
    const user = userEvent.setup()
    const table = await screen.findByTestId('backtest-runs')
    await user.click(within(table).getByText('bt-aaaa'))
    const result = await screen.findByTestId('backtest-result')
    expect(within(result).getByTestId('backtest-metrics')).toHaveTextContent(/Total return\s*5\.00%\s*20\.00%/)
    expect(within(result).getByTestId('backtest-trades')).toHaveTextContent('+4.80')
    expect(within(result).getByTestId('backtest-drawdown')).toBeInTheDocument()
    expect(await within(result).findByTestId('candle-chart')).toHaveTextContent(`3 bars, markers BUY@${T0} SELL@${T0 + 2 * H}`)
    await user.click(screen.getByLabelText('compare bt-aaaa'))
    await user.click(screen.getByLabelText('compare bt-bbbb'))
    const cmp = await screen.findByTestId('backtest-compare')
    await waitFor(() => expect(cmp.querySelector('[data-metric="total_return"]')).toHaveTextContent(/5\.00%\s*2\.00%\s*-3\.00 pp/))
    expect(cmp.querySelectorAll('path[data-series]')).toHaveLength(2)
  })
})

describe('LineChart', () => {
  it('each chart fills with its own gradient (equity green and drawdown red on one page)', () => {
    const up = [{ time: 1, value: 1 }, { time: 2, value: 2 }]
    const down = [{ time: 1, value: 0 }, { time: 2, value: -5 }]
    const { container } = renderWithClient(<><LineChart points={up} testId="a" /><LineChart points={down} testId="b" /></>)
    const fills = [...container.querySelectorAll('path[fill^="url("]')].map((p) => p.getAttribute('fill')!.slice(5, -1))
    expect(new Set(fills).size).toBe(2)
    const stops = fills.map((id) => container.querySelector(`linearGradient[id="${id}"] stop`)!.getAttribute('stop-color'))
    expect(stops).toEqual(['#10b981', '#ef4444'])
  })
})
