import { describe, expect, it } from 'vitest'
import { resample } from '../lib/candles'
import { ema, sma } from '../lib/indicators'
import { cyclePnl } from '../pages/Overview'

describe('indicators', () => {
  it('SMA and EMA match hand-computed values', () => {
    expect(sma([1, 2, 3, 4, 5], 3).slice(2)).toEqual([2, 3, 4])
    expect(Number.isNaN(sma([1, 2], 3)[1])).toBe(true)
    const e = ema([1, 2, 3, 4, 5], 3) // seed 2, k = 0.5
    expect(e.slice(2)).toEqual([2, 3, 4])
  })
})

describe('resample', () => {
  it('aggregates 1m bars into 5m OHLCV', () => {
    const bars = [0, 1, 2, 3, 4, 5].map((i) => ({ open_time: i * 60_000, open: i, high: i + 1, low: i - 1, close: i + 0.5, volume: 1 }))
    const out = resample(bars, '5m')
    expect(out).toHaveLength(2)
    expect(out[0]).toMatchObject({ open_time: 0, open: 0, high: 5, low: -1, close: 4.5, volume: 5 })
    expect(out[1]).toMatchObject({ open_time: 300_000, open: 5, volume: 1 })
  })
})

describe('cyclePnl', () => {
  it('sums closed cycles, splits today by the platform clock and builds a cumulative curve', () => {
    const day = 86_400_000
    const c = (t: number, pl: string | null) => ({ id: String(t), symbol: 'X', strategy: 's', side: 'BUY' as const, status: 'COMPLETED',
      created_at: t - 10, updated_at: t, entry_order_id: null, exit_order_id: null, entry_price: '1', exit_price: '1', quantity: '1', fees: '0',
      profit_loss: pl, profit_loss_percent: null })
    const r = cyclePnl([c(day + 5, '-1'), c(day - 5, '3'), c(day + 9, null)], day + 100)
    expect(r.total).toBe(2)
    expect(r.today).toBe(-1)
    expect(r.wins).toBe(1)
    expect(r.curve.map((p) => p.value)).toEqual([0, 3, 2])
  })
})
