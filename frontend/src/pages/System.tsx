import { useState } from 'react'
import { useHealth, useLogs } from '../api/hooks'
import type { LogParams } from '../api/hooks'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { Badge, Button, Card, inputBase, QueryView, Stat, StatusBadge, statusTone } from '../components/ui'
import { fmtTime } from '../lib/format'

const detail = (c: Record<string, unknown>) =>
  Object.entries(c).filter(([k]) => k !== 'status').map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')

export function System() {
  const health = useHealth()
  const [form, setForm] = useState<LogParams>({ limit: 200 })
  const [params, setParams] = useState<LogParams>({ limit: 200 })
  const logs = useLogs(params)
  const bus = health.data?.components?.bus as Record<string, unknown> | undefined
  return (
    <div className="space-y-4" data-testid="page-system">
      <PageTitle title="System" sub="Service health, bus lag and the platform's logs." actions={<Button onClick={() => { health.refetch(); logs.refetch() }}>Refresh</Button>} />
      <div className="grid grid-cols-2 gap-3 md:grid-cols-4">
        <Stat label="Overall" value={health.data ? <Badge tone={statusTone(health.data.status)}>{health.data.status.toUpperCase()}</Badge> : '—'} sub={health.data ? `mode ${health.data.mode}` : undefined} />
        <Stat testId="bus-lag" label="Bus lag (backlog)" value={bus ? String(bus.backlog ?? '—') : '—'} sub={bus ? `${bus.backend} bus` : undefined} />
        <Stat label="Published / delivered" value={bus ? `${bus.published ?? '—'} / ${bus.delivered ?? '—'}` : '—'} />
        <Stat label="Dead-lettered" value={bus ? String(bus.dead_lettered ?? 0) : '—'} tone={bus && Number(bus.dead_lettered) > 0 ? 'text-rose-400' : ''} />
      </div>
      <p className="text-xs text-slate-400" data-testid="metrics-link">
        Prometheus metrics: <a className="text-sky-400 hover:underline" href="/metrics" target="_blank" rel="noreferrer">/metrics</a>
        {' '}(Grafana dashboard and alert rules in deploy/; see docs/operations.md).
      </p>
      <Card title="Components" testId="components">
        <QueryView q={health} what="Health" isEmpty={(h) => !h.components || Object.keys(h.components).length === 0}>
          {(h) => <DataTable rows={Object.entries(h.components)} rowKey={([n]) => n} columns={[
            { key: 'name', header: 'Component', cell: ([n]) => <span className="font-medium text-slate-100">{n}</span> },
            { key: 'status', header: 'Status', cell: ([, c]) => <StatusBadge status={c.status} /> },
            { key: 'details', header: 'Details', cell: ([, c]) => <span className="text-xs text-slate-400">{detail(c)}</span> },
          ]} />}
        </QueryView>
      </Card>
      <Card title="Logs (event_logs)" testId="logs">
        <form className="mb-3 flex flex-wrap gap-2" onSubmit={(e) => { e.preventDefault(); setParams({ ...form }) }}>
          <input aria-label="search logs" placeholder="Search text…" className={`${inputBase} w-48`} value={form.q ?? ''} onChange={(e) => setForm({ ...form, q: e.target.value || undefined })} />
          <select aria-label="level" className={`${inputBase} w-auto`} value={form.level ?? ''} onChange={(e) => setForm({ ...form, level: e.target.value || undefined })}>
            <option value="">All levels</option>{['debug', 'info', 'warning', 'error', 'critical'].map((l) => <option key={l}>{l}</option>)}
          </select>
          <input aria-label="service" placeholder="Service" className={`${inputBase} w-32`} value={form.service ?? ''} onChange={(e) => setForm({ ...form, service: e.target.value || undefined })} />
          <Button type="submit" variant="primary">Search</Button>
        </form>
        <QueryView q={logs} what="Logs" empty="No log entry matches.">
          {(rows) => <DataTable rows={rows} rowKey={(l) => String(l.id)} columns={[
            { key: 'time', header: 'Time', cell: (l) => <span className="text-slate-500">{l.time ? fmtTime(l.time) : '—'}</span> },
            { key: 'level', header: 'Level', cell: (l) => <Badge tone={l.level === 'error' || l.level === 'critical' ? 'red' : l.level === 'warning' ? 'amber' : 'gray'}>{l.level}</Badge> },
            { key: 'svc', header: 'Service', cell: (l) => l.service },
            { key: 'event', header: 'Event', cell: (l) => <span className="text-slate-100">{l.event}</span> },
            { key: 'ctx', header: 'Context', cell: (l) => <span className="block max-w-xl truncate text-xs text-slate-500" title={JSON.stringify(l.context)}>{l.context ? JSON.stringify(l.context) : ''}</span>, hideOnMobile: true },
          ]} />}
        </QueryView>
      </Card>
    </div>
  )
}
