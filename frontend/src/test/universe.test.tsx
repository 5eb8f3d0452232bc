import { screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Universe } from '../api/types'
import { staleKeysFor } from '../live/frames'
import { UniversePage } from '../pages/Universe'
import { jsonResponse, renderWithClient } from './utils'

const AT = Date.UTC(2024, 0, 1, 12, 0)
const universe: Universe = {
  dynamic: true,
  time: AT,
  next_refresh: AT + 3_600_000,
  members: ['BTCUSDT', 'SOLUSDT'],
  streamed: ['BTCUSDT', 'SOLUSDT', 'XRPUSDT'],
  open_cycles: { XRPUSDT: 1 },
  last_error: null,
  errors: [],
  pairs: [
    { symbol: 'BTCUSDT', selected: true, reason: 'forced', rank: 2, scores: { volume: 1, total: 0.75 }, stats: { last_price: 40000, quote_volume: 1e9, volatility: 0.031, momentum: 0.012, spread_pct: 0.01, age_days: 900 } },
    { symbol: 'SOLUSDT', selected: true, reason: 'rank 1 <= size 1', rank: 1, scores: { volume: 0.5, total: 0.9 }, stats: { last_price: 100, quote_volume: 5e8, volatility: 0.05, momentum: 0.04, spread_pct: null, age_days: 500 } },
    { symbol: 'XRPUSDT', selected: false, reason: 'rank 4 > keep_rank 3', rank: 4, scores: { total: 0.2 }, stats: null },
    { symbol: 'DOGEUSDT', selected: false, reason: 'blacklisted (DOGE*)' },
  ],
}

describe('Universe page', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows every pair with why it is in or out, and filters in/out', async () => {
    const fetchMock = vi.fn(async (url: string) => {
      if (url === '/api/universe') return jsonResponse(universe)
      return jsonResponse({}, 404)
    })
    vi.stubGlobal('fetch', fetchMock)
    renderWithClient(<UniversePage />)
    const table = await screen.findByTestId('universe-table')
    const rows = within(table).getAllByRole('row')
    expect(rows).toHaveLength(5) // header + 4
    expect(rows[1]).toHaveTextContent('BTCUSDT')
    expect(rows[1]).toHaveTextContent('forced')
    expect(rows[1]).toHaveTextContent('0.750')
    expect(rows[1]).toHaveTextContent('3.10%')
    expect(rows[3]).toHaveTextContent('exit only') // out, but its open cycle is still managed
    expect(rows[3]).toHaveTextContent('rank 4 > keep_rank 3')
    expect(rows[4]).toHaveTextContent('blacklisted (DOGE*)')
    expect(screen.getByText('2 pairs (dynamic)')).toBeInTheDocument()
    expect(screen.getByTestId('universe-times')).toHaveTextContent('2024-01-01 12:00:00')
    expect(screen.getByTestId('universe-times')).toHaveTextContent('also streamed for open cycles: XRPUSDT')

    await userEvent.selectOptions(screen.getByLabelText('show'), 'out')
    await waitFor(() => expect(within(screen.getByTestId('universe-table')).getAllByRole('row')).toHaveLength(3))
    expect(fetchMock).toHaveBeenCalledWith('/api/universe', expect.anything())
  })

  it('says when the last refresh failed', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ ...universe, last_error: 'RestMarketError: timeout' })))
    renderWithClient(<UniversePage />)
    expect(await screen.findByTestId('universe-error')).toHaveTextContent('RestMarketError: timeout')
  })

  it('is refreshed by a universe.changed event', () => {
    expect(staleKeysFor('universe.changed')).toEqual([['universe']])
  })
})
