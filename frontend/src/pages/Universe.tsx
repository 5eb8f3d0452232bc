import { useState } from 'react'
import { useUniverse } from '../api/hooks'
import type { UniversePair } from '../api/types'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { Badge, Card, inputBase, QueryView } from '../components/ui'
import { fmtNum, fmtTime } from '../lib/format'

const pct = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`)

/** Every pair judged at the last refresh: in or out, why, its rank, scores and statistics. */
export function PairsTable({ pairs, openCycles }: { pairs: UniversePair[]; openCycles: Record<string, number> }) {
  return <DataTable<UniversePair> testId="universe-table" rows={pairs} rowKey={(p) => p.symbol}
    empty="No pair was judged yet." columns={[
      { key: 'sym', header: 'Pair', cell: (p) => <span className="font-medium text-slate-100">{p.symbol}</span> },
      { key: 'in', header: 'In', cell: (p) => p.selected
        ? <Badge tone="green">in</Badge>
        : openCycles[p.symbol] ? <Badge tone="amber" title="out of the universe, its open cycle is still managed">exit only</Badge> : <Badge tone="gray">out</Badge> },
      { key: 'why', header: 'Why', cell: (p) => <span className="text-slate-400">{p.reason}</span> },
      { key: 'rank', header: 'Rank', cell: (p) => p.rank ?? '—', className: 'text-right' },
      { key: 'score', header: 'Score', cell: (p) => (p.scores?.total !== undefined ? fmtNum(p.scores.total, 3) : '—'), className: 'text-right' },
      { key: 'vol', header: 'Quote volume', cell: (p) => (p.stats ? fmtNum(p.stats.quote_volume, 0) : '—'), className: 'text-right', hideOnMobile: true },
      { key: 'volat', header: 'Volatility', cell: (p) => pct(p.stats?.volatility), className: 'text-right', hideOnMobile: true },
      { key: 'mom', header: 'Momentum', cell: (p) => pct(p.stats?.momentum), className: 'text-right', hideOnMobile: true },
      { key: 'spread', header: 'Spread', cell: (p) => (p.stats?.spread_pct == null ? '—' : `${p.stats.spread_pct.toFixed(3)}%`), className: 'text-right', hideOnMobile: true },
    ]} />
}

export function UniversePage() {
  const q = useUniverse()
  const [show, setShow] = useState<'all' | 'in' | 'out'>('all')
  const u = q.data
  const pairs = (u?.pairs ?? []).filter((p) => show === 'all' || (show === 'in') === p.selected)
  return (
    <div className="space-y-4" data-testid="page-universe">
      <PageTitle title="Universe" sub="The pairs traded, and why each pair is in or out. Refreshed on the platform clock." />
      <Card title={u ? `${u.members.length} pairs ${u.dynamic ? '(dynamic)' : '(SYMBOLS)'}` : 'Pairs'} actions={
        <select aria-label="show" className={`${inputBase} w-auto`} value={show} onChange={(e) => setShow(e.target.value as 'all' | 'in' | 'out')}>
          <option value="all">All pairs</option><option value="in">In</option><option value="out">Out</option>
        </select>}>
        <QueryView q={q} what="Universe">
          {() => <div className="space-y-3">
            <p className="text-sm text-slate-400" data-testid="universe-times">
              {u?.time ? `Refreshed ${fmtTime(u.time)} UTC` : 'Not refreshed yet'}
              {u?.next_refresh ? ` · next ${fmtTime(u.next_refresh)} UTC` : ''}
              {u && u.streamed.length > u.members.length ? ` · also streamed for open cycles: ${u.streamed.filter((s) => !u.members.includes(s)).join(', ')}` : ''}
            </p>
            {u?.last_error ? <p className="text-sm text-red-400" data-testid="universe-error">Last refresh failed: {u.last_error}</p> : null}
            <PairsTable pairs={pairs} openCycles={u?.open_cycles ?? {}} />
          </div>}
        </QueryView>
      </Card>
    </div>
  )
}
