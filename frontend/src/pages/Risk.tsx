import { useState } from 'react'
import { api } from '../api/client'
import { useAction, useRiskRules, useRiskState, useTraderHealth } from '../api/hooks'
import type { RiskLock, RiskRule } from '../api/types'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { ActionMessage, Badge, Button, Card, inputBase, QueryView, StatusBadge } from '../components/ui'
import { fmtTime } from '../lib/format'

const show = (v: unknown) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v))

/** "in 1h 20m": what is left of a lock, counted on the platform's clock (`now`, market time), not the browser's. */
export function timeLeft(until: number, now: number): string {
  const min = Math.max(0, Math.ceil((until - now) / 60_000))
  const d = Math.floor(min / 1440), h = Math.floor((min % 1440) / 60), m = min % 60
  return d > 0 ? `in ${d}d ${h}h` : h > 0 ? `in ${h}h ${m}m` : `in ${m}m`
}

/** What is locked, by which rule, since and until when; a strategy can be enabled, a pause resumed. */
export function LocksTable({ locks, now, onEnable, onResume, busy }: {
  locks: RiskLock[]
  now: number
  onEnable?: (strategy: string) => void
  onResume?: () => void
  busy?: boolean
}) {
  return <DataTable testId="risk-locks-table" rows={locks} rowKey={(l) => `${l.strategy ?? '*'}:${l.rule}`}
    empty="Nothing is locked: every strategy may open new positions." columns={[
      { key: 'what', header: 'Locked', cell: (l) => <span className="font-medium text-slate-100">{l.strategy ?? 'all new entries'}</span> },
      { key: 'rule', header: 'Rule', cell: (l) => l.rule === 'manual' ? <Badge tone="amber">manual</Badge> : l.rule },
      { key: 'action', header: 'Action', cell: (l) => <span className="text-slate-400">{l.action}</span> },
      { key: 'since', header: 'Since (UTC)', cell: (l) => fmtTime(l.since) },
      { key: 'until', header: 'Until (UTC)', cell: (l) => l.until !== null
        ? <span>{fmtTime(l.until)} <span className="text-slate-400">({timeLeft(l.until, now)})</span></span>
        : <span className="text-slate-400">{l.strategy ? 'until enabled' : 'until resumed'}</span> },
      { key: 'reason', header: 'Why', cell: (l) => <span className="text-slate-400">{l.reason}</span> },
      { key: 'do', header: '', cell: (l) => l.strategy
        ? <Button className="px-2 py-0.5 text-xs" variant="success" disabled={busy} onClick={() => onEnable?.(l.strategy as string)}>Enable {l.strategy}</Button>
        : <Button className="px-2 py-0.5 text-xs" variant="success" disabled={busy} onClick={() => onResume?.()}>{l.action === 'kill_switch' ? 'Lift kill switch' : 'Lift pause'}</Button> },
    ]} />
}

export function Risk() {
  const rules = useRiskRules()
  const trader = useTraderHealth()
  const pause = useAction(() => api('/api/trader/config/pause', { method: 'POST' }), [['trader', 'health'], ['health']])
  const resume = useAction(() => api('/api/trader/config/resume', { method: 'POST' }), [['trader', 'health'], ['health']])
  const kill = useAction(() => api('/api/risk/kill-switch', { method: 'POST' }), [['risk'], ['trader', 'health'], ['health']])
  const state = useRiskState()
  const enable = useAction((name: string) => api(`/api/risk/strategies/${encodeURIComponent(name)}/enable`, { method: 'POST' }), [['risk'], ['trader', 'health']])
  const riskResume = useAction(() => api('/api/risk/resume', { method: 'POST' }), [['risk'], ['trader', 'health'], ['health']])
  const [confirm, setConfirm] = useState(false)
  const [typed, setTyped] = useState('')
  const paused = trader.data?.paused
  const list: RiskRule[] | undefined = rules.data ? (Array.isArray(rules.data) ? rules.data : rules.data.rules) : undefined
  return (
    <div className="space-y-4" data-testid="page-risk">
      <PageTitle title="Risk" sub="Every rule from rules.yaml with its live state; trading controls." />
      <div className="grid gap-4 lg:grid-cols-3">
        <Card title="Trading" testId="trading-controls">
          <div className="mb-4 flex items-center gap-2 text-sm">
            <span className="text-slate-400">Trader state:</span>
            {trader.isPending ? '…' : trader.error ? <Badge tone="red">unknown</Badge> :
              <span data-testid="trader-state"><Badge tone={paused ? 'amber' : 'green'}>{paused ? 'PAUSED' : 'RUNNING'}</Badge></span>}
          </div>
          <div className="flex gap-2">
            <Button variant="default" disabled={pause.isPending || paused === true} onClick={() => pause.mutate()}>Pause new entries</Button>
            <Button variant="success" disabled={resume.isPending || paused === false} onClick={() => resume.mutate()}>Resume</Button>
          </div>
          <div className="mt-3"><ActionMessage error={pause.error ?? resume.error} /></div>
        </Card>
        <Card title="Kill switch" className="lg:col-span-2" testId="kill-switch">
          <p className="mb-3 text-sm text-slate-400">Stops all trading at once: cancels open orders, blocks new ones. Use in an emergency.</p>
          {!confirm ? <Button variant="danger" onClick={() => setConfirm(true)}>Activate kill switch…</Button> : (
            <div className="flex flex-wrap items-center gap-2 rounded-md bg-rose-500/10 p-3 ring-1 ring-rose-500/30" role="dialog" aria-label="confirm kill switch">
              <span className="text-sm text-rose-200">Type <b>KILL</b> to confirm:</span>
              <input aria-label="confirmation" className={`${inputBase} w-24`} value={typed} onChange={(e) => setTyped(e.target.value)} />
              <Button variant="danger" disabled={typed !== 'KILL' || kill.isPending} onClick={() => { kill.mutate(); setConfirm(false); setTyped('') }}>Confirm</Button>
              <Button variant="ghost" onClick={() => { setConfirm(false); setTyped('') }}>Cancel</Button>
            </div>
          )}
          <div className="mt-3"><ActionMessage error={kill.error} success={kill.isSuccess && 'Kill switch activated.'} /></div>
        </Card>
      </div>
      <Card title="Locks" testId="risk-locks">
        <p className="mb-3 text-sm text-slate-400">A rule&apos;s lock lasts its cooldown (rules.yaml, market time), then lifts itself. A manual disable and the kill switch stay until lifted here.</p>
        <QueryView q={state} what="Risk state">
          {(s) => <LocksTable locks={s.locks} now={s.now} busy={enable.isPending || riskResume.isPending}
            onEnable={(name) => enable.mutate(name)} onResume={() => riskResume.mutate()} />}
        </QueryView>
        <div className="mt-3"><ActionMessage error={enable.error ?? riskResume.error} /></div>
      </Card>
      <Card title="Rules" testId="risk-rules">
        <QueryView q={{ ...rules, data: list }} what="Risk rules" empty="No risk rule configured.">
          {(rows) => <DataTable rows={rows} rowKey={(r) => r.name} columns={[
            { key: 'name', header: 'Rule', cell: (r) => <span className="font-medium text-slate-100">{r.name}</span> },
            { key: 'value', header: 'Value', cell: (r) => show(r.value), className: 'text-right' },
            { key: 'limit', header: 'Limit', cell: (r) => show(r.limit), className: 'text-right' },
            { key: 'state', header: 'State', cell: (r) => <StatusBadge status={r.state} /> },
            { key: 'action', header: 'Action', cell: (r) => <span className="text-slate-400">{r.action}</span> },
          ]} />}
        </QueryView>
      </Card>
    </div>
  )
}
