import { useState } from 'react'
import { api } from '../api/client'
import { useAction } from '../api/hooks'
import type { Order } from '../api/types'
import { validateOrder, type OrderDraft, type SymbolFilters } from '../lib/filters'
import { ActionMessage, Button, Field, inputCls } from './ui'

/** The manual order ticket. Checks the draft against the symbol's exchange filters before sending. */
export function OrderForm({ symbols, filters, refPrice }: { symbols: string[]; filters: Record<string, SymbolFilters>; refPrice?: (s: string) => number | undefined }) {
  const [d, setD] = useState<OrderDraft>({ symbol: symbols[0] ?? '', side: 'BUY', type: 'MARKET', quantity: '', quote_quantity: '', price: '' })
  const [touched, setTouched] = useState(false)
  const symbol = d.symbol || symbols[0] || ''
  const raw = filters[symbol]
  const f = raw && [raw.minQty, raw.stepSize, raw.tickSize, raw.minNotional, raw.minPrice].some((x) => x !== undefined) ? raw : undefined
  const errors = validateOrder({ ...d, symbol }, f, refPrice?.(symbol))
  const place = useAction((body: Record<string, string>) => api<Order>('/api/trader/order', { method: 'POST', json: body }), [['orders'], ['cycles'], ['trades']])
  const set = (k: keyof OrderDraft) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setD({ ...d, [k]: e.target.value })
  const submit = (e: React.FormEvent) => {
    e.preventDefault()
    setTouched(true)
    if (Object.keys(errors).length) return
    const body: Record<string, string> = { symbol, side: d.side, type: d.type }
    if (d.quantity.trim()) body.quantity = d.quantity.trim()
    if (d.quote_quantity.trim()) body.quote_quantity = d.quote_quantity.trim()
    if (d.type === 'LIMIT') body.price = d.price.trim()
    place.mutate(body)
  }
  const err = (k: string) => (touched ? errors[k] : undefined)
  return (
    <form onSubmit={submit} noValidate className="space-y-3" aria-label="manual order">
      <div className="grid grid-cols-2 gap-3">
        <Field label="Symbol" error={err('symbol')}>
          <select aria-label="Symbol" className={inputCls} value={symbol} onChange={set('symbol')}>
            {symbols.map((s) => <option key={s}>{s}</option>)}
          </select>
        </Field>
        <Field label="Type">
          <select aria-label="Type" className={inputCls} value={d.type} onChange={set('type')}>
            <option>MARKET</option><option>LIMIT</option>
          </select>
        </Field>
      </div>
      <div className="grid grid-cols-2 gap-1 rounded-md bg-panel2 p-1 ring-1 ring-line">
        {(['BUY', 'SELL'] as const).map((s) => (
          <button key={s} type="button" aria-pressed={d.side === s} onClick={() => setD({ ...d, side: s })}
            className={`rounded py-1.5 text-sm font-semibold ${d.side === s ? (s === 'BUY' ? 'bg-emerald-600 text-white' : 'bg-rose-600 text-white') : 'text-slate-400 hover:text-slate-200'}`}>{s}</button>
        ))}
      </div>
      <div className="grid grid-cols-2 gap-3">
        <Field label="Quantity (base)" error={err('quantity')}>
          <input aria-label="Quantity" inputMode="decimal" className={inputCls} value={d.quantity} onChange={set('quantity')} placeholder={f?.stepSize ? `step ${f.stepSize}` : '0.001'} />
        </Field>
        <Field label="or amount (quote)" error={err('quote_quantity')}>
          <input aria-label="Quote amount" inputMode="decimal" className={inputCls} value={d.quote_quantity} onChange={set('quote_quantity')} placeholder={f?.minNotional ? `min ${f.minNotional}` : '100'} disabled={d.type === 'LIMIT'} />
        </Field>
      </div>
      {d.type === 'LIMIT' && (
        <Field label="Limit price" error={err('price')}>
          <input aria-label="Price" inputMode="decimal" className={inputCls} value={d.price} onChange={set('price')} placeholder={f?.tickSize ? `tick ${f.tickSize}` : ''} />
        </Field>
      )}
      <p className="text-xs text-slate-500" data-testid="filters-hint">
        {f ? `Filters: qty ${f.minQty ?? '—'}–${f.maxQty ?? '—'} step ${f.stepSize ?? '—'} · tick ${f.tickSize ?? '—'} · min notional ${f.minNotional ?? '—'}`
          : 'Exchange filters unavailable: the trader will check them.'}
      </p>
      <Button type="submit" variant={d.side === 'BUY' ? 'success' : 'danger'} className="w-full" disabled={place.isPending}>
        {place.isPending ? 'Sending…' : `${d.side === 'BUY' ? 'Buy' : 'Sell'} ${symbol}`}
      </Button>
      <ActionMessage error={place.error} success={place.data && `Order ${place.data.client_order_id ?? ''} ${place.data.status ?? 'sent'}.`} />
    </form>
  )
}
