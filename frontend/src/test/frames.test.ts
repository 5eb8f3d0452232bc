import { QueryClient } from '@tanstack/react-query'
import { describe, expect, it, vi } from 'vitest'
import { keys } from '../api/hooks'
import type { Candle, Cycle, Page, Signal } from '../api/types'
import { FrameApplier, mergeCandle } from '../live/frames'
import { backoffDelay, Stream } from '../live/stream'

const cyc = (id: string, status: string): Cycle => ({
  id, symbol: 'BTCUSDT', strategy: 's', side: 'BUY', status, created_at: 1, updated_at: 1, entry_order_id: null,
  exit_order_id: null, entry_price: '1', exit_price: null, quantity: '1', fees: '0', profit_loss: null, profit_loss_percent: null,
})

describe('FrameApplier', () => {
  it('patches a cycle in every cached page at once and invalidates the cycle lists after a batch', () => {
    vi.useFakeTimers()
    const qc = new QueryClient()
    const key = keys.cycles({ limit: 10 })
    qc.setQueryData<Page<Cycle>>(key, { total: 2, limit: 10, offset: 0, items: [cyc('a', 'ACTIVE'), cyc('b', 'ACTIVE')] })
    const applier = new FrameApplier(qc, 100)
    applier.apply({ topic: 'cycle.updates', data: { ...cyc('a', 'COMPLETED'), profit_loss: '2.5' } })
    const page = qc.getQueryData<Page<Cycle>>(key)!
    expect(page.items[0]).toMatchObject({ id: 'a', status: 'COMPLETED', profit_loss: '2.5' })
    expect(page.items[1].status).toBe('ACTIVE')
    expect(qc.getQueryState(key)!.isInvalidated).toBe(false)
    vi.advanceTimersByTime(150)
    expect(qc.getQueryState(key)!.isInvalidated).toBe(true)
    vi.useRealTimers()
  })

  it('prepends a new signal to the feed once and appends live candles', () => {
    const qc = new QueryClient()
    const sig: Signal = { id: 's1', time: 1, symbol: 'BTCUSDT', strategy: 'x', side: 'BUY', strength: 'STRONG', price: 1, interval: '1m' }
    qc.setQueryData(keys.signals({ limit: 200 }), [] as Signal[])
    const applier = new FrameApplier(qc, 10_000)
    applier.apply({ topic: 'signals', data: sig })
    applier.apply({ topic: 'signals', data: sig })
    expect(qc.getQueryData<Signal[]>(keys.signals({ limit: 200 }))).toEqual([sig])
    const c = (t: number, close: number): Candle => ({ symbol: 'BTCUSDT', open_time: t, open: 1, high: 2, low: 0.5, close, volume: 1 })
    applier.apply({ topic: 'market.candles.BTCUSDT', data: c(60_000, 1) })
    applier.apply({ topic: 'market.candles.BTCUSDT', data: c(120_000, 2) })
    applier.apply({ topic: 'market.candles.BTCUSDT', data: c(120_000, 3) }) // same bar updated
    expect(qc.getQueryData<Candle[]>(keys.liveCandles('BTCUSDT'))!.map((k) => k.close)).toEqual([1, 3])
    applier.dispose()
  })

  it('ignores an out-of-window old candle', () => {
    const c = (t: number) => ({ open_time: t, open: 1, high: 1, low: 1, close: 1, volume: 0 })
    const list = [c(100), c(200)]
    expect(mergeCandle(list, c(50))).toBe(list)
  })
})

class FakeSocket {
  static made: FakeSocket[] = []
  onopen: (() => void) | null = null
  onmessage: ((e: { data: string }) => void) | null = null
  onclose: (() => void) | null = null
  onerror: (() => void) | null = null
  constructor() { FakeSocket.made.push(this) }
  close() { this.onclose?.() }
}

describe('Stream', () => {
  it('backs off exponentially, with a cap', () => {
    const mid = () => 0.5
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 500, 15_000, mid))).toEqual([500, 1000, 2000, 4000, 15_000])
  })

  it('delivers frames and reconnects after a drop, reporting the reconnection', () => {
    vi.useFakeTimers()
    FakeSocket.made = []
    const frames: string[] = []
    const opens: boolean[] = []
    const s = new Stream({ url: 'ws://x', onFrame: (f) => frames.push(f.topic), onOpen: (r) => opens.push(r),
      makeSocket: () => new FakeSocket() as unknown as WebSocket, minDelayMs: 100 })
    s.start()
    FakeSocket.made[0].onopen!()
    FakeSocket.made[0].onmessage!({ data: JSON.stringify({ topic: 'signals', data: {} }) })
    FakeSocket.made[0].onmessage!({ data: 'not json' })
    expect(frames).toEqual(['signals'])
    FakeSocket.made[0].close()
    expect(s.state).toBe('closed')
    vi.advanceTimersByTime(200)
    expect(FakeSocket.made).toHaveLength(2)
    FakeSocket.made[1].onopen!()
    expect(opens).toEqual([false, true])
    s.stop()
    vi.advanceTimersByTime(10_000)
    expect(FakeSocket.made).toHaveLength(2)
    vi.useRealTimers()
  })
})
