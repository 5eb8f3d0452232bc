import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { api } from '../api/client'
import { useAction, useStrategies } from '../api/hooks'
import type { ParamSpec, StrategyInfo } from '../api/types'
import { PageTitle } from '../components/Layout'
import { ActionMessage, Badge, Button, Card, inputBase, inputCls, QueryView } from '../components/ui'
import { useSymbolUniverse } from '../lib/symbols'

type Update = { name: string; body: { enabled?: boolean; params?: Record<string, unknown>; symbol?: string } }

/** Normalise a parameter to {value, hint, numeric}, whichever shape the API sent. */
export function paramView(raw: unknown, range?: unknown): { value: unknown; hint: string; doc?: string } {
  if (raw && typeof raw === 'object' && !Array.isArray(raw) && ('value' in raw || 'default' in raw)) {
    const p = raw as ParamSpec
    const value = p.value ?? p.default
    const hint = p.choices?.length ? p.choices.join(' | ') : [p.low, p.high].some((x) => x !== null && x !== undefined)
      ? `${p.low ?? ''} – ${p.high ?? ''}${p.step ? ` (step ${p.step})` : ''}` : ''
    return { value, hint, doc: p.doc }
  }
  const hint = Array.isArray(range) ? range.join(' – ') : range && typeof range === 'object'
    ? [(range as Record<string, unknown>).min, (range as Record<string, unknown>).max].filter((x) => x !== undefined).join(' – ') : ''
  return { value: raw, hint }
}

/** Values typed in the form come back as text; keep numbers and booleans typed for the API. */
function coerce(text: string, original: unknown): unknown {
  if (typeof original === 'number') { const n = Number(text); return Number.isFinite(n) ? n : text }
  if (typeof original === 'boolean') return text === 'true'
  return text
}

function StrategyCard({ s, symbol, update, pending }: { s: StrategyInfo; symbol: string; update: (u: Update) => void; pending: boolean }) {
  const [draft, setDraft] = useState<Record<string, string>>({})
  const params = Object.entries(s.params ?? {}).map(([k, raw]) => [k, paramView(raw, s.param_ranges?.[k])] as const)
  const dirty = Object.keys(draft).length > 0
  const scope = symbol ? { symbol } : {}
  const save = () => {
    const values = Object.fromEntries(params.map(([k, p]) => [k, p.value]))
    const p = Object.fromEntries(Object.entries(draft).map(([k, v]) => [k, coerce(v, values[k])]))
    update({ name: s.name, body: { params: p, ...scope } })
    setDraft({})
  }
  return (
    <Card testId={`strategy-${s.name}`} title={<span className="normal-case tracking-normal text-slate-100">{s.name}</span>} actions={<>
      {s.style && <Badge tone="violet">{s.style}</Badge>}
      <Badge tone={s.enabled ? 'green' : 'gray'}>{s.enabled ? 'ENABLED' : 'DISABLED'}</Badge>
      <Button className="px-2 py-0.5 text-xs" variant={s.enabled ? 'default' : 'success'} disabled={pending}
        onClick={() => update({ name: s.name, body: { enabled: !s.enabled, ...scope } })}>{s.enabled ? 'Disable' : 'Enable'}</Button>
    </>}>
      {s.doc && <p className="mb-3 line-clamp-2 text-xs text-slate-500" title={s.doc}>{s.doc}</p>}
      {params.length === 0 ? <p className="text-sm text-slate-500">No parameter.</p> : (
        <div className="grid grid-cols-2 gap-2 sm:grid-cols-3">
          {params.map(([k, p]) => (
            <label key={k} className="block text-xs" title={p.doc}>
              <span className="mb-0.5 block truncate text-slate-400">{k}</span>
              <input className={`${inputCls} py-1 text-xs`} value={draft[k] ?? String(p.value ?? '')} onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} />
              {p.hint && <span className="text-[10px] text-slate-600">{p.hint}</span>}
            </label>
          ))}
        </div>
      )}
      {dirty && <div className="mt-3 flex gap-2"><Button variant="primary" onClick={save} disabled={pending}>Save{symbol ? ` for ${symbol}` : ''}</Button><Button variant="ghost" onClick={() => setDraft({})}>Reset</Button></div>}
    </Card>
  )
}

export function Strategies() {
  const { symbols } = useSymbolUniverse()
  const [symbol, setSymbol] = useState('')
  const [filter, setFilter] = useState('')
  const q = useStrategies(symbol || undefined)
  const upd = useAction((u: Update) => api(`/api/analyzer/strategies/${encodeURIComponent(u.name)}`, { method: 'PUT', json: u.body }), [['strategies']])
  const shown = (q.data ?? []).filter((s) => !filter || s.name.includes(filter.toLowerCase()))
  // the coordinator's strength filter: entries below it are rejected (see each signal's decision)
  const minStrength = useQuery({ queryKey: ['coordinator', 'config'], queryFn: () => api<{ min_strength?: string }>('/api/coordinator/config') }).data?.min_strength
  return (
    <div className="space-y-4" data-testid="page-strategies">
      <PageTitle title="Strategies" sub="Enable or disable each strategy and tune its parameters, for all symbols or one." actions={<>
        <input aria-label="find strategy" placeholder="Find…" className={`${inputBase} w-36`} value={filter} onChange={(e) => setFilter(e.target.value)} />
        <select aria-label="scope symbol" className={`${inputBase} w-auto`} value={symbol} onChange={(e) => setSymbol(e.target.value)}>
          <option value="">All symbols</option>{symbols.map((s) => <option key={s}>{s}</option>)}
        </select>
        {q.data && <Badge tone="blue">{q.data.filter((s) => s.enabled).length} / {q.data.length} enabled</Badge>}
        {minStrength && <Badge tone="violet">min strength {minStrength}</Badge>}
      </>} />
      {minStrength && <p className="text-xs text-slate-500" data-testid="min-strength-note">
        Entries weaker than {minStrength} (COORDINATOR_MIN_STRENGTH) are rejected by the coordinator's strength filter; a strategy that sets no strength emits MODERATE, and grade() gives WEAK below its first threshold.
      </p>}
      <ActionMessage error={upd.error} success={upd.isSuccess && 'Saved.'} />
      <QueryView q={{ ...q, data: q.data ? shown : undefined }} what="The strategy list" empty="No strategy loaded.">
        {(list) => <div className="grid gap-4 lg:grid-cols-2 2xl:grid-cols-3">{list.map((s) => <StrategyCard key={s.name} s={s} symbol={symbol} update={upd.mutate} pending={upd.isPending} />)}</div>}
      </QueryView>
    </div>
  )
}
