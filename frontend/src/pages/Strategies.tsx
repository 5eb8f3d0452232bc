import { useState } from 'react'
import { api } from '../api/client'
import { useAction, useStrategies } from '../api/hooks'
import type { StrategyInfo } from '../api/types'
import { PageTitle } from '../components/Layout'
import { ActionMessage, Badge, Button, Card, inputCls, QueryView } from '../components/ui'

type Update = { name: string; body: { enabled?: boolean; params?: Record<string, unknown>; symbol?: string } }

function rangeHint(r: unknown): string {
  if (Array.isArray(r)) return r.join(' – ')
  if (r && typeof r === 'object') {
    const o = r as Record<string, unknown>
    return [o.min ?? o.low, o.max ?? o.high].filter((x) => x !== undefined).join(' – ')
  }
  return r === undefined ? '' : String(r)
}

/** Values typed in the form come back as text; keep numbers and booleans typed for the API. */
function coerce(text: string, original: unknown): unknown {
  if (typeof original === 'number') { const n = Number(text); return Number.isFinite(n) ? n : text }
  if (typeof original === 'boolean') return text === 'true'
  return text
}

function StrategyCard({ s, update, pending }: { s: StrategyInfo; update: (u: Update) => void; pending: boolean }) {
  const [symbol, setSymbol] = useState('')
  const [draft, setDraft] = useState<Record<string, string>>({})
  const params = Object.entries(s.params ?? {})
  const dirty = Object.keys(draft).length > 0
  const save = () => {
    const p = Object.fromEntries(Object.entries(draft).map(([k, v]) => [k, coerce(v, s.params[k])]))
    update({ name: s.name, body: { params: p, ...(symbol ? { symbol } : {}) } })
    setDraft({})
  }
  return (
    <Card testId={`strategy-${s.name}`} title={<span className="normal-case tracking-normal text-slate-200">{s.name}</span>} actions={<>
      <Badge tone={s.enabled ? 'green' : 'gray'}>{s.enabled ? 'ENABLED' : 'DISABLED'}</Badge>
      <Button className="px-2 py-0.5 text-xs" variant={s.enabled ? 'default' : 'success'} disabled={pending}
        onClick={() => update({ name: s.name, body: { enabled: !s.enabled, ...(symbol ? { symbol } : {}) } })}>{s.enabled ? 'Disable' : 'Enable'}</Button>
    </>}>
      <div className="mb-3 flex items-center gap-2 text-xs text-slate-400">
        <span>Apply to</span>
        <select aria-label={`${s.name} symbol`} className={`${inputCls} w-auto py-1 text-xs`} value={symbol} onChange={(e) => setSymbol(e.target.value)}>
          <option value="">all symbols</option>
          {(s.symbols ?? []).map((x) => <option key={x}>{x}</option>)}
        </select>
      </div>
      {params.length === 0 ? <p className="text-sm text-slate-500">No parameter.</p> : (
        <div className="grid grid-cols-2 gap-2 sm:grid-cols-3">
          {params.map(([k, v]) => (
            <label key={k} className="block text-xs">
              <span className="mb-0.5 block text-slate-400">{k}</span>
              <input className={`${inputCls} py-1 text-xs`} value={draft[k] ?? String(v)} onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} />
              {s.param_ranges?.[k] !== undefined && <span className="text-[10px] text-slate-600">{rangeHint(s.param_ranges[k])}</span>}
            </label>
          ))}
        </div>
      )}
      {dirty && <div className="mt-3 flex gap-2"><Button variant="primary" onClick={save} disabled={pending}>Save parameters</Button><Button variant="ghost" onClick={() => setDraft({})}>Reset</Button></div>}
    </Card>
  )
}

export function Strategies() {
  const q = useStrategies()
  const upd = useAction((u: Update) => api(`/api/analyzer/strategies/${encodeURIComponent(u.name)}`, { method: 'PUT', json: u.body }), [['strategies']])
  return (
    <div className="space-y-4" data-testid="page-strategies">
      <PageTitle title="Strategies" sub="Enable or disable each strategy and tune its parameters, for all symbols or one." />
      <ActionMessage error={upd.error} success={upd.isSuccess && 'Saved.'} />
      <QueryView q={q} what="The strategy list" empty="No strategy loaded.">
        {(list) => <div className="grid gap-4 lg:grid-cols-2 2xl:grid-cols-3">{list.map((s) => <StrategyCard key={s.name} s={s} update={upd.mutate} pending={upd.isPending} />)}</div>}
      </QueryView>
    </div>
  )
}
