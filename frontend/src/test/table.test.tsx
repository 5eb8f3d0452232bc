import { screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import type { Cycle } from '../api/types'
import { CycleTable } from '../pages/Cycles'
import { renderWithClient } from './utils'

const cycle = (id: string, pl: string | null, status = 'COMPLETED'): Cycle => ({
  id, symbol: 'BTCUSDT', strategy: 'sma_cross', side: 'BUY', status, created_at: 1_670_000_000_000, updated_at: 1_670_000_060_000,
  entry_order_id: 'e', exit_order_id: 'x', entry_price: '17000.5', exit_price: '17100', quantity: '0.01', fees: '0.1',
  profit_loss: pl, profit_loss_percent: pl ? '0.58' : null, close_reason: 'signal',
})

describe('CycleTable', () => {
  it('renders one row per cycle with signed, coloured PnL', () => {
    renderWithClient(<CycleTable rows={[cycle('a', '0.8950'), cycle('b', '-1.5', 'COMPLETED'), cycle('c', null, 'ACTIVE')]} />)
    expect(screen.getAllByRole('row')).toHaveLength(4) // header + 3
    const win = screen.getByText('+0.8950')
    expect(win).toHaveClass('text-emerald-400')
    expect(screen.getByText('-1.5000')).toHaveClass('text-rose-400')
    expect(screen.getByText('ACTIVE')).toBeInTheDocument()
  })

  it('shows the empty state when there is no row', () => {
    renderWithClient(<CycleTable rows={[]} />)
    expect(screen.queryByRole('table')).toBeNull()
    expect(screen.getByTestId('empty')).toHaveTextContent('No cycle matches these filters.')
  })
})

describe('CycleTable tags', () => {
  it("shows the strategy's entry and exit tags", () => {
    renderWithClient(<CycleTable rows={[{ ...cycle('t', '1'), entry_tag: 'breakout', exit_tag: 'rsi_exit' }, cycle('u', '1')]} />)
    expect(screen.getByText('breakout → rsi_exit')).toBeInTheDocument()
  })
})
