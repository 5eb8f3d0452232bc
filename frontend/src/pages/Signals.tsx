import { useMemo, useState } from 'react'
import { useDecisions, useSignals } from '../api/hooks'
import type { Decision, Signal } from '../api/types'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { Badge, Card, inputBase, QueryView, StatusBadge } from '../components/ui'
import { fmtQty, fmtTime } from '../lib/format'

const STRENGTHS = ['WEAK', 'MODERATE', 'STRONG', 'VERY_STRONG'] as const
const strengthTone: Record<string, string> = { WEAK: 'gray', MODERATE: 'blue', STRONG: 'violet', VERY_STRONG: 'amber' }

function decisionTone(d?: Decision): string {
  if (!d) return 'gray'
  const v = d.decision.toLowerCase()
  return v.startsWith('accept') || v === 'traded' ? 'green' : v.startsWith('reject') || v.startsWith('block') ? 'red' : 'amber'
}

export function Signals() {
  const [symbol, setSymbol] = useState('')
  const [strategy, setStrategy] = useState('')
  const [minStrength, setMinStrength] = useState(0)
  const [side, setSide] = useState('')
  const signals = useSignals({ symbol: symbol.trim().toUpperCase() || undefined, strategy: strategy.trim() || undefined, limit: 200 })
  const decisions = useDecisions({ limit: 500 })
  const bySignal = useMemo(() => {
    const m = new Map<string, Decision>()
    for (const d of decisions.data ?? []) if (!m.has(d.signal_id)) m.set(d.signal_id, d)
    return m
  }, [decisions.data])
  const rows = (signals.data ?? []).filter((s) => STRENGTHS.indexOf(s.strength) >= minStrength && (!side || s.side === side))
  const strategies = [...new Set((signals.data ?? []).map((s) => s.strategy))]
  return (
    <div className="space-y-4" data-testid="page-signals">
      <PageTitle title="Signals" sub="Live strategy signals and the coordinator's decision on each: traded, or why not." />
      <Card title="Signal feed" actions={
        <div className="flex flex-wrap gap-2">
          <input aria-label="symbol" placeholder="Symbol" className={`${inputBase} w-28`} value={symbol} onChange={(e) => setSymbol(e.target.value)} />
          <input aria-label="strategy" list="strategy-names" placeholder="Strategy" className={`${inputBase} w-32`} value={strategy} onChange={(e) => setStrategy(e.target.value)} />
          <datalist id="strategy-names">{strategies.map((s) => <option key={s} value={s} />)}</datalist>
          <select aria-label="minimum strength" className={`${inputBase} w-auto`} value={minStrength} onChange={(e) => setMinStrength(Number(e.target.value))}>
            {STRENGTHS.map((s, i) => <option key={s} value={i}>{i === 0 ? 'Any strength' : `≥ ${s}`}</option>)}
          </select>
          <select aria-label="side" className={`${inputBase} w-auto`} value={side} onChange={(e) => setSide(e.target.value)}>
            <option value="">Both sides</option><option>BUY</option><option>SELL</option>
          </select>
        </div>}>
        <QueryView q={signals} what="Signals" isEmpty={() => rows.length === 0} empty="No signal matches these filters yet.">
          {() => <DataTable<Signal> testId="signals-table" rows={rows} rowKey={(s) => s.id} columns={[
            { key: 'time', header: 'Time', cell: (s) => <span className="text-slate-400">{fmtTime(s.time)}</span> },
            { key: 'sym', header: 'Symbol', cell: (s) => <span className="font-medium text-slate-100">{s.symbol}</span> },
            { key: 'strat', header: 'Strategy', cell: (s) => s.strategy },
            { key: 'side', header: 'Side', cell: (s) => <StatusBadge status={s.side} /> },
            { key: 'str', header: 'Strength', cell: (s) => <Badge tone={strengthTone[s.strength]}>{s.strength}</Badge> },
            { key: 'price', header: 'Price', cell: (s) => fmtQty(s.price, 4), className: 'text-right' },
            { key: 'tf', header: 'TF', cell: (s) => <span className="text-slate-500">{s.interval}{s.regime ? ` · ${s.regime}` : ''}</span>, hideOnMobile: true },
            { key: 'dec', header: 'Decision', cell: (s) => {
              const d = bySignal.get(s.id)
              return d ? <Badge tone={decisionTone(d)}>{d.decision}</Badge> : <span className="text-xs text-slate-600">{decisions.error ? 'n/a' : 'pending'}</span>
            } },
            { key: 'why', header: 'Why', cell: (s) => <span className="text-slate-400">{bySignal.get(s.id)?.reason ?? ''}</span> },
          ]} />}
        </QueryView>
      </Card>
    </div>
  )
}
