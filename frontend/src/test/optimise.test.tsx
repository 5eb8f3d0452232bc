import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { diffParams, progressOf } from '../lib/optimise'
import Optimise from '../pages/Optimise'
import { jsonResponse, renderWithClient } from './utils'

const DAY = 86_400_000
const window0 = {
  index: 0, train_start: 0, train_end: 12 * DAY, test_start: 12 * DAY, test_end: 18 * DAY, study: 's/w0',
  done: 20, running: 0, best_value: 1.4, best_params: { fast: 7, slow: 30 }, in_sample: { sharpe: 1.4 },
  out_of_sample: { sharpe: 0.8, net_pnl: '12.5' }, deflated_sharpe: 0.71, parity: { match: true },
}
const running = {
  study: 'run1', strategy: 'ema_cross', symbols: ['BTCUSDT'], interval: '1h', objective: 'sharpe', status: 'running',
  started_at: 2 * DAY, finished_at: null, trials_done: 23, trials_total: 40, best_value: 1.4, windows: 2,
  walk_forward: true, chosen_params: null as Record<string, number> | null,
}
const finished = { ...running, study: 'done1', status: 'finished', trials_done: 40, chosen_params: { fast: 9, slow: 30 } }

function detail(base: typeof running, extra: object) {
  return { ...base, n_trials: 20, windows: [window0, { ...window0, index: 1, done: 3, running: 2, best_value: 0.2, best_params: undefined, in_sample: undefined, out_of_sample: undefined, deflated_sharpe: undefined, parity: undefined }], ...extra }
}

function mockApi(routes: Record<string, unknown>, calls: { url: string; init?: RequestInit }[] = []) {
  vi.stubGlobal('fetch', vi.fn(async (url: string, init?: RequestInit) => {
    calls.push({ url, init })
    const hit = Object.keys(routes).find((k) => url === k || url.startsWith(`${k}?`))
    return hit ? jsonResponse(routes[hit]) : jsonResponse({ detail: 'no' }, 404)
  }))
  return calls
}

afterEach(() => { vi.unstubAllGlobals() })

describe('optimise helpers', () => {
  it('progress and the diff against the running parameters', () => {
    expect(progressOf({ trials_done: 10, trials_total: 40 })).toBe(25)
    const info = { name: 'ema_cross', enabled: true, params: { fast: { value: 12 }, slow: { value: 30 } } }
    expect(diffParams('BTCUSDT', info, { fast: 9, slow: 30 })).toEqual([{ symbol: 'BTCUSDT', param: 'fast', old: 12, new: 9 }])
  })
})

describe('the Optimise page', () => {
  it('lists studies and shows a running study\'s live progress and walk-forward table', async () => {
    mockApi({
      '/api/backtest/optimize/studies': [running, finished],
      '/api/backtest/optimize/studies/run1': detail(running, { result: null }),
    })
    renderWithClient(<Optimise />)
    const table = await screen.findByTestId('studies-table')
    expect(within(table).getByText('run1')).toBeTruthy()
    expect(within(table).getAllByText('23 / 40 trials').length).toBe(1)
    await userEvent.click(within(table).getByText('run1'))
    const wf = await screen.findByTestId('walk-forward-table')
    expect(within(wf).getByText('3 (+2 running) / 20')).toBeTruthy()
    expect(within(wf).getByText('{"fast":7,"slow":30}')).toBeTruthy()
    expect(within(wf).getByText('match')).toBeTruthy()
    expect(screen.getByTestId('study-best').textContent).toBe('1.400')
    expect(screen.queryByTestId('apply-panel')).toBeNull() // nothing to apply while it runs
  })

  it('Apply shows the diff, asks, then PUTs the chosen parameters per symbol', async () => {
    const calls = mockApi({
      '/api/backtest/optimize/studies': [finished],
      '/api/backtest/optimize/studies/done1': detail(finished, {
        symbols: ['BTCUSDT', 'ETHUSDT'],
        result: { chosen_params: { fast: 9, slow: 30 }, out_of_sample: { sharpe: 0.9, net_pnl: '40', trades: 12 }, in_sample: null, walk_forward_efficiency: 0.5, deflated_sharpe_mean: 0.7 },
      }),
      '/api/analyzer/strategies': [{ name: 'ema_cross', enabled: true, params: { fast: { value: 12 }, slow: { value: 30 } } }],
      '/api/analyzer/strategies/ema_cross': { name: 'ema_cross' },
    })
    renderWithClient(<Optimise />)
    await userEvent.click(within(await screen.findByTestId('studies-table')).getByText('done1'))
    expect((await screen.findByTestId('study-result')).textContent).toContain('Sharpe 0.900')
    await userEvent.click(screen.getByRole('button', { name: 'Apply…' }))
    const diff = await screen.findByTestId('apply-diff')
    expect(diff.textContent).toContain('ema_cross BTCUSDT fast: 12 → 9')
    expect(diff.textContent).toContain('ema_cross ETHUSDT fast: 12 → 9')
    expect(calls.filter((c) => c.init?.method === 'PUT')).toEqual([]) // nothing written before the confirmation
    await userEvent.click(screen.getByRole('button', { name: 'Confirm apply' }))
    await waitFor(() => expect(screen.getByRole('status').textContent).toContain('Applied to ema_cross on 2 symbol(s)'))
    const puts = calls.filter((c) => c.init?.method === 'PUT')
    expect(puts.map((c) => [c.url, JSON.parse(String(c.init?.body))])).toEqual([
      ['/api/analyzer/strategies/ema_cross', { symbol: 'BTCUSDT', params: { fast: 9, slow: 30 } }],
      ['/api/analyzer/strategies/ema_cross', { symbol: 'ETHUSDT', params: { fast: 9, slow: 30 } }],
    ])
  })
})
