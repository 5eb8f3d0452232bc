import { useMemo } from 'react'
import { useCycles, useSymbols } from '../api/hooks'
import type { SymbolInfo } from '../api/types'
import { parseFilters, type SymbolFilters } from './filters'

export const DEFAULT_SYMBOLS = ['BTCUSDT', 'ETHUSDT']

export function symbolList(data: SymbolInfo[] | { symbols: SymbolInfo[] } | undefined): SymbolInfo[] {
  if (!data) return []
  return Array.isArray(data) ? data : Array.isArray(data.symbols) ? data.symbols : []
}

/** Tradable symbols and their filters: from /api/market/symbols, else the symbols seen in cycles. */
export function useSymbolUniverse(): { symbols: string[]; filters: Record<string, SymbolFilters>; fromMarket: boolean } {
  const market = useSymbols()
  const cycles = useCycles({ limit: 100 })
  return useMemo(() => {
    const infos = symbolList(market.data)
    if (infos.length) {
      const filters = Object.fromEntries(infos.map((i) => [i.symbol, parseFilters(i)]))
      return { symbols: infos.map((i) => i.symbol), filters, fromMarket: true }
    }
    const seen = new Set(DEFAULT_SYMBOLS)
    cycles.data?.items.forEach((c) => seen.add(c.symbol))
    return { symbols: [...seen].sort(), filters: {}, fromMarket: false }
  }, [market.data, cycles.data])
}
