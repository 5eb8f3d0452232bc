/**
 * Binance symbol filters, parsed from /api/market/symbols whatever its exact shape (a Binance-style
 * `filters` array, or flat snake_case fields), and the checks a manual order must pass before we send it.
 */
import type { SymbolInfo } from '../api/types'

export interface SymbolFilters {
  symbol: string
  minQty?: number; maxQty?: number; stepSize?: number
  minPrice?: number; maxPrice?: number; tickSize?: number
  minNotional?: number
}

const n = (v: unknown): number | undefined => {
  const x = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN
  return Number.isFinite(x) && x > 0 ? x : undefined
}

export function parseFilters(info: SymbolInfo): SymbolFilters {
  const f: SymbolFilters = { symbol: info.symbol }
  const src: Record<string, unknown> = { ...info, ...(info.filters && !Array.isArray(info.filters) ? info.filters as object : {}) }
  f.minQty = n(src.min_qty ?? src.minQty); f.maxQty = n(src.max_qty ?? src.maxQty); f.stepSize = n(src.step_size ?? src.stepSize)
  f.minPrice = n(src.min_price ?? src.minPrice); f.maxPrice = n(src.max_price ?? src.maxPrice); f.tickSize = n(src.tick_size ?? src.tickSize)
  f.minNotional = n(src.min_notional ?? src.minNotional)
  if (Array.isArray(info.filters)) {
    for (const raw of info.filters as Record<string, unknown>[]) {
      switch (raw.filterType) {
        case 'LOT_SIZE': f.minQty = n(raw.minQty); f.maxQty = n(raw.maxQty); f.stepSize = n(raw.stepSize); break
        case 'PRICE_FILTER': f.minPrice = n(raw.minPrice); f.maxPrice = n(raw.maxPrice); f.tickSize = n(raw.tickSize); break
        case 'MIN_NOTIONAL': case 'NOTIONAL': f.minNotional = n(raw.minNotional); break
      }
    }
  }
  return f
}

/** Is `value` a multiple of `step` from `base`? Done in integer units to dodge float error. */
export function onStep(value: number, step: number, base = 0): boolean {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 2)
  const scale = 10 ** Math.min(decimals, 12)
  const units = Math.round((value - base) * scale)
  const stepUnits = Math.round(step * scale)
  return stepUnits === 0 || units % stepUnits === 0
}

export interface OrderDraft {
  symbol: string
  side: 'BUY' | 'SELL'
  type: 'MARKET' | 'LIMIT'
  quantity: string
  quote_quantity: string
  price: string
}

/** Field -> message for everything wrong with the draft; empty when it may be sent. */
export function validateOrder(d: OrderDraft, filters?: SymbolFilters, refPrice?: number): Record<string, string> {
  const errs: Record<string, string> = {}
  if (!d.symbol) errs.symbol = 'Choose a symbol'
  const qty = d.quantity.trim() ? Number(d.quantity) : undefined
  const quote = d.quote_quantity.trim() ? Number(d.quote_quantity) : undefined
  const price = d.price.trim() ? Number(d.price) : undefined
  if (qty === undefined && quote === undefined) errs.quantity = 'Enter a quantity or a quote amount'
  if (qty !== undefined && quote !== undefined) errs.quote_quantity = 'Give a quantity or a quote amount, not both'
  if (quote !== undefined && d.type === 'LIMIT') errs.quote_quantity = 'A LIMIT order needs a base quantity'
  if (qty !== undefined && !(qty > 0)) errs.quantity = 'Quantity must be a positive number'
  if (quote !== undefined && !(quote > 0)) errs.quote_quantity = 'Quote amount must be a positive number'
  if (d.type === 'LIMIT') {
    if (price === undefined) errs.price = 'A LIMIT order needs a price'
    else if (!(price > 0)) errs.price = 'Price must be a positive number'
  }
  if (!filters) return errs
  if (qty !== undefined && qty > 0 && !errs.quantity) {
    if (filters.minQty && qty < filters.minQty) errs.quantity = `Below the minimum quantity ${filters.minQty}`
    else if (filters.maxQty && qty > filters.maxQty) errs.quantity = `Above the maximum quantity ${filters.maxQty}`
    else if (filters.stepSize && !onStep(qty, filters.stepSize, filters.minQty ?? 0) && !onStep(qty, filters.stepSize))
      errs.quantity = `Quantity must be a multiple of the step size ${filters.stepSize}`
  }
  if (d.type === 'LIMIT' && price !== undefined && price > 0 && !errs.price) {
    if (filters.minPrice && price < filters.minPrice) errs.price = `Below the minimum price ${filters.minPrice}`
    else if (filters.maxPrice && price > filters.maxPrice) errs.price = `Above the maximum price ${filters.maxPrice}`
    else if (filters.tickSize && !onStep(price, filters.tickSize))
      errs.price = `Price must be a multiple of the tick size ${filters.tickSize}`
  }
  if (filters.minNotional) {
    const p = d.type === 'LIMIT' ? price : refPrice
    const notional = quote ?? (qty !== undefined && p ? qty * p : undefined)
    if (notional !== undefined && notional > 0 && notional < filters.minNotional && !errs.quantity && !errs.quote_quantity)
      errs[quote !== undefined ? 'quote_quantity' : 'quantity'] =
        `Order value ${notional.toFixed(2)} is below the minimum notional ${filters.minNotional}`
  }
  return errs
}
