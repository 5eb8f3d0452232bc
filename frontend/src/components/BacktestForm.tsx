/** The Backtests page's form: what `roottrading backtest` asks, checked before it is sent. */
import { useState } from 'react'
import type { BacktestRequest, StrategyInfo } from '../api/types'
import { INTERVAL_MS } from '../lib/candles'
import { buildRequest, defaultForm, type BacktestForm as Form } from '../lib/backtest'
import { Button, Field, inputCls } from './ui'

export function BacktestForm({ strategies, symbols, onSubmit, pending }: {
  strategies: StrategyInfo[]
  symbols: string[]
  onSubmit: (req: BacktestRequest) => void
  pending?: boolean
}) {
  const [f, setF] = useState<Form>(() => defaultForm())
  const [errors, setErrors] = useState<Record<string, string>>({})
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((old) => ({ ...old, [k]: v }))
  const toggle = (name: string) =>
    set('strategies', f.strategies.includes(name) ? f.strategies.filter((s) => s !== name) : [...f.strategies, name])
  const submit = (e: React.FormEvent) => {
    e.preventDefault()
    const { request, errors: errs } = buildRequest(f)
    setErrors(errs)
    if (request) onSubmit(request)
  }
  return (
    <form onSubmit={submit} className="space-y-3" aria-label="new backtest" data-testid="backtest-form">
      <fieldset>
        <legend className="mb-1 text-xs font-medium text-slate-400">
          Strategies <span className="text-slate-600">({f.strategies.length ? `${f.strategies.length} chosen` : 'none chosen: all enabled'})</span>
        </legend>
        <div className="flex max-h-36 flex-wrap gap-1 overflow-y-auto">
          {strategies.map((s) => (
            <label key={s.name} className={`cursor-pointer rounded px-2 py-0.5 text-xs ring-1 ring-inset ${f.strategies.includes(s.name) ? 'bg-sky-500/20 text-sky-200 ring-sky-500/40' : 'text-slate-400 ring-slate-700 hover:bg-slate-800'}`}>
              <input type="checkbox" className="sr-only" checked={f.strategies.includes(s.name)} onChange={() => toggle(s.name)} aria-label={`strategy ${s.name}`} />
              {s.name}
            </label>
          ))}
          {strategies.length === 0 && <span className="text-xs text-slate-500">No strategy list from the analyzer; the run uses the enabled ones.</span>}
        </div>
      </fieldset>
      <div className="grid grid-cols-2 gap-3">
        <Field label="Symbols (comma separated; empty: SYMBOLS)" error={errors.symbols}>
          <input className={inputCls} value={f.symbols} onChange={(e) => set('symbols', e.target.value)} placeholder={symbols.slice(0, 2).join(', ')} aria-label="symbols" list="bt-symbols" />
          <datalist id="bt-symbols">{symbols.map((s) => <option key={s} value={s} />)}</datalist>
        </Field>
        <Field label="Interval">
          <select className={inputCls} value={f.interval} onChange={(e) => set('interval', e.target.value)} aria-label="interval">
            {Object.keys(INTERVAL_MS).map((i) => <option key={i}>{i}</option>)}
          </select>
        </Field>
      </div>
      <div className="flex gap-3 text-xs text-slate-400" role="radiogroup" aria-label="period">
        <label className="flex items-center gap-1"><input type="radio" checked={f.period === 'days'} onChange={() => set('period', 'days')} />last N days</label>
        <label className="flex items-center gap-1"><input type="radio" checked={f.period === 'range'} onChange={() => set('period', 'range')} />from – to (UTC)</label>
      </div>
      {f.period === 'days' ? (
        <Field label="Days up to now" error={errors.days}>
          <input className={inputCls} value={f.days} onChange={(e) => set('days', e.target.value)} inputMode="numeric" aria-label="days" />
        </Field>
      ) : (
        <div className="grid grid-cols-2 gap-3">
          <Field label="Start (inclusive)" error={errors.start}>
            <input className={inputCls} value={f.start} onChange={(e) => set('start', e.target.value)} placeholder="2024-01-01" aria-label="start" />
          </Field>
          <Field label="End (exclusive)" error={errors.end}>
            <input className={inputCls} value={f.end} onChange={(e) => set('end', e.target.value)} placeholder="2024-02-01" aria-label="end" />
          </Field>
        </div>
      )}
      <div className="grid grid-cols-2 gap-3">
        <Field label="Data" error={errors.data}>
          <input className={inputCls} value={f.data} onChange={(e) => set('data', e.target.value)} list="bt-data" aria-label="data" />
          <datalist id="bt-data"><option value="store" /><option value="bundled" /></datalist>
        </Field>
        <Field label="Engine">
          <select className={inputCls} value={f.engine} onChange={(e) => set('engine', e.target.value as Form['engine'])} aria-label="engine">
            <option value="fast">fast</option><option value="replay">replay (the services)</option>
          </select>
        </Field>
        <Field label="Balance (quote)" error={errors.balance}>
          <input className={inputCls} value={f.balance} onChange={(e) => set('balance', e.target.value)} inputMode="decimal" aria-label="balance" />
        </Field>
        <Field label="Stake per trade (empty: risk sizing)" error={errors.stake}>
          <input className={inputCls} value={f.stake} onChange={(e) => set('stake', e.target.value)} inputMode="decimal" aria-label="stake" />
        </Field>
      </div>
      <Button type="submit" variant="primary" disabled={pending}>{pending ? 'Starting…' : 'Run backtest'}</Button>
    </form>
  )
}
