import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { setToken } from '../api/client'
import type { RiskLock, RiskState } from '../api/types'
import { LocksTable, Risk, timeLeft } from '../pages/Risk'
import { jsonResponse, renderWithClient } from './utils'

const NOW = Date.UTC(2024, 4, 6, 10, 0) // market time of the platform, not the browser's clock
const HOUR = 3_600_000
const streak: RiskLock = {
  strategy: 's1', rule: 'strategy_loss_streak', action: 'disable_strategy', reason: 'strategy s1 lost 5 cycles in a row (limit 5)',
  automatic: true, since: NOW - HOUR, until: NOW + 3 * HOUR,
}
const manual: RiskLock = { strategy: 's2', rule: 'manual', action: 'disable_strategy', reason: 'disabled by user', automatic: false, since: NOW, until: null }
const drawdown: RiskLock = {
  strategy: null, rule: 'max_drawdown', action: 'pause', reason: 'max drawdown reached', automatic: true, since: NOW, until: NOW + 12 * HOUR + 30 * 60_000,
}
const state = (locks: RiskLock[]): RiskState => ({
  now: NOW, equity: '9000', equity_peak: '10000', realised_pnl_today: '-100', drawdown_pct: '10', open_cycles: 0,
  orders_last_minute: 0, paused: locks.some((l) => l.strategy === null), pause_reason: '', killed: false,
  disabled_strategies: locks.flatMap((l) => (l.strategy ? [l.strategy] : [])), loss_streaks: { s1: 5 }, atr_pct: {}, locks,
})

describe('timeLeft', () => {
  it('counts what is left on the platform clock', () => {
    expect(timeLeft(NOW + 3 * HOUR, NOW)).toBe('in 3h 0m')
    expect(timeLeft(NOW + 90_000, NOW)).toBe('in 2m')
    expect(timeLeft(NOW + 26 * HOUR, NOW)).toBe('in 1d 2h')
    expect(timeLeft(NOW - 1, NOW)).toBe('in 0m')
  })
})

describe('LocksTable', () => {
  it('shows each lock with its rule and until, a manual one until enabled', () => {
    renderWithClient(<LocksTable locks={[streak, manual, drawdown]} now={NOW} />)
    const rows = within(screen.getByTestId('risk-locks-table')).getAllByRole('row')
    expect(rows).toHaveLength(4) // header + 3
    expect(rows[1]).toHaveTextContent('s1')
    expect(rows[1]).toHaveTextContent('strategy_loss_streak')
    expect(rows[1]).toHaveTextContent('2024-05-06 09:00:00')
    expect(rows[1]).toHaveTextContent('2024-05-06 13:00:00 (in 3h 0m)')
    expect(rows[2]).toHaveTextContent('manual')
    expect(rows[2]).toHaveTextContent('until enabled')
    expect(rows[3]).toHaveTextContent('all new entries')
    expect(rows[3]).toHaveTextContent('2024-05-06 22:30:00 (in 12h 30m)')
  })

  it('says so when nothing is locked', () => {
    renderWithClient(<LocksTable locks={[]} now={NOW} />)
    expect(screen.getByTestId('empty')).toHaveTextContent('Nothing is locked')
  })
})

describe('Risk page', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('loads the locks from /api/risk/state and enables a strategy with the token', async () => {
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === '/api/risk/state') return jsonResponse(state([streak, drawdown]))
      if (url === '/api/risk/rules') return jsonResponse([{ name: 'strategy_loss_streak', enabled: true, limit: '5', value: '5', state: 'breached', action: 'disable_strategy' }])
      if (url === '/api/trader/health') return jsonResponse({ status: 'ok', paused: false })
      if (url === '/api/risk/strategies/s1/enable' && init?.method === 'POST') return jsonResponse({ strategy: 's1', enabled: true })
      return jsonResponse({ detail: 'not found' }, 404)
    })
    vi.stubGlobal('fetch', fetchMock)
    setToken('secret')
    renderWithClient(<Risk />)
    const table = await screen.findByTestId('risk-locks-table')
    expect(table).toHaveTextContent('2024-05-06 13:00:00 (in 3h 0m)')
    expect(table).toHaveTextContent('max_drawdown')
    await userEvent.setup().click(screen.getByRole('button', { name: 'Enable s1' }))
    await waitFor(() => expect(fetchMock.mock.calls.some(([u]) => u === '/api/risk/strategies/s1/enable')).toBe(true))
    const [, init] = fetchMock.mock.calls.find(([u]) => u === '/api/risk/strategies/s1/enable') as [string, RequestInit]
    expect(init.method).toBe('POST')
    expect(new Headers(init.headers).get('Authorization')).toBe('Bearer secret')
  })
})

describe('LocksTable buttons', () => {
  it('lifts a pause or the kill switch without a "Resume" name (the trader control owns that name)', async () => {
    const onResume = vi.fn()
    renderWithClient(<LocksTable locks={[drawdown]} now={NOW} onResume={onResume} />)
    expect(screen.queryByRole('button', { name: /resume/i })).toBeNull()
    await userEvent.setup().click(screen.getByRole('button', { name: 'Lift pause' }))
    expect(onResume).toHaveBeenCalledTimes(1)
  })
})
