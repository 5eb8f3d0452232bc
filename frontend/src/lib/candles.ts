import type { Candle } from '../api/types'

export const INTERVAL_MS: Record<string, number> = {
  '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000,
}

/** Resample 1m candles into a larger interval (used when only the live 1m stream is available). */
export function resample(candles: Candle[], interval: string): Candle[] {
  const ms = INTERVAL_MS[interval]
  if (!ms || interval === '1m') return candles
  const out: Candle[] = []
  for (const c of candles) {
    const t = Math.floor(c.open_time / ms) * ms
    const last = out[out.length - 1]
    if (last && last.open_time === t) {
      last.high = Math.max(last.high, c.high)
      last.low = Math.min(last.low, c.low)
      last.close = c.close
      last.volume += c.volume
    } else {
      out.push({ ...c, open_time: t, interval })
    }
  }
  return out
}

/** Union of fetched history and live candles, by open time (live wins for the same bar). */
export function mergeSeries(history: Candle[], live: Candle[]): Candle[] {
  const m = new Map<number, Candle>()
  for (const c of history) m.set(c.open_time, c)
  for (const c of live) m.set(c.open_time, c)
  return [...m.values()].sort((a, b) => a.open_time - b.open_time)
}
