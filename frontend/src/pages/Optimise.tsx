/**
 * Optimise: the studies `roottrading optimize` recorded (locally or on a cluster), a running study's live
 * progress (trials done/total, best value, per walk-forward window), the walk-forward table and the
 * out-of-sample result, and Apply: the chosen parameters' diff against the running platform, confirmed,
 * then written per symbol through the analyzer's API.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { useSearchParams } from 'react-router-dom'
import { api } from '../api/client'
import { DataTable, type Column } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { ActionMessage, Badge, Button, Card, QueryView, statusTone } from '../components/ui'
import { fmtNum, fmtTime, pnlClass } from '../lib/format'
import {
  applyParams, type ParamChange, progressOf, studiesPath, studyDiff, type StudyDetail, type StudySummary, type StudyWindow,
} from '../lib/optimise'

const POLL_MS = 2000
const show = (v: unknown) => (v === null || v === undefined ? '–' : typeof v === 'number' ? fmtNum(v, 3) : String(v))
const raw = (v: unknown) => (v === null || v === undefined ? '–' : String(v)) // a parameter, as sent
const day = (ms: number) => fmtTime(ms).slice(0, 10)

export const useStudies = () =>
  useQuery({
    queryKey: ['optimize', 'studies'],
    queryFn: () => api<StudySummary[]>(studiesPath),
    refetchInterval: (q) => (Array.isArray(q.state.data) && q.state.data.some((s) => s.status === 'running') ? POLL_MS : false),
  })

export const useStudy = (name: string | null) =>
  useQuery({
    queryKey: ['optimize', 'study', name],
    queryFn: () => api<StudyDetail>(`${studiesPath}/${encodeURIComponent(name ?? '')}`),
    enabled: !!name,
    refetchInterval: (q) => (q.state.data?.status === 'running' ? POLL_MS : false),
  })

function Progress({ s }: { s: { trials_done: number; trials_total: number; status: string } }) {
  const pct = progressOf(s)
  return (
    <div className="min-w-32" data-testid="study-progress">
      <div className="text-xs text-slate-300">{s.trials_done} / {s.trials_total} trials</div>
      <div className="mt-1 h-1.5 rounded bg-slate-800" role="progressbar" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100}>
        <div className={`h-1.5 rounded ${s.status === 'running' ? 'bg-sky-500' : 'bg-emerald-500'}`} style={{ width: `${pct}%` }} />
      </div>
    </div>
  )
}

function ApplyPanel({ study }: { study: StudyDetail }) {
  const chosen = study.result?.chosen_params
  const qc = useQueryClient()
  const [diff, setDiff] = useState<ParamChange[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [done, setDone] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  if (!chosen) return null
  const run = async (fn: () => Promise<void>) => {
    setBusy(true); setError(null)
    try { await fn() } catch (e) { setError(e) } finally { setBusy(false) }
  }
  const review = () => run(async () => { setDone(null); setDiff(await studyDiff(study.strategy, study.symbols, chosen)) })
  const confirm = () => run(async () => {
    const n = await applyParams(study.strategy, study.symbols, chosen)
    setDiff(null)
    setDone(`Applied to ${study.strategy} on ${n} symbol(s); the platform keeps them across restarts.`)
    qc.invalidateQueries({ queryKey: ['strategies'] })
  })
  return (
    <Card title="Apply to the running platform" testId="apply-panel">
      <p className="mb-2 text-sm text-slate-300">
        Chosen parameters ({study.walk_forward ? 'the last window’s, trained on the most recent data' : 'in-sample best'}):{' '}
        <span className="font-mono text-xs">{JSON.stringify(chosen)}</span>
      </p>
      {diff === null && <Button onClick={review} disabled={busy}>Apply…</Button>}
      {diff !== null && (
        <div data-testid="apply-diff" className="space-y-2">
          {diff.length === 0
            ? <p className="text-sm text-slate-400">No change: the platform already runs these parameters.</p>
            : (
              <ul className="font-mono text-xs text-slate-200">
                {diff.map((c) => <li key={`${c.symbol}-${c.param}`}>{study.strategy} {c.symbol} {c.param}: {raw(c.old)} → {raw(c.new)}</li>)}
              </ul>
            )}
          <div className="flex gap-2">
            {diff.length > 0 && <Button variant="primary" onClick={confirm} disabled={busy}>Confirm apply</Button>}
            <Button onClick={() => setDiff(null)} disabled={busy}>Cancel</Button>
          </div>
        </div>
      )}
      <div className="mt-2"><ActionMessage error={error} success={done} /></div>
    </Card>
  )
}

function StudyView({ name }: { name: string }) {
  const q = useStudy(name)
  return (
    <QueryView q={q} what="study">
      {(s) => {
        const cols: Column<StudyWindow>[] = [
          { key: 'w', header: 'Window', cell: (w) => w.index },
          { key: 'train', header: 'Train', cell: (w) => `${day(w.train_start)} – ${day(w.train_end)}` },
          { key: 'test', header: 'Test', cell: (w) => (s.walk_forward ? `${day(w.test_start)} – ${day(w.test_end)}` : '–') },
          { key: 'done', header: 'Trials', cell: (w) => `${w.done}${w.running ? ` (+${w.running} running)` : ''} / ${s.n_trials}` },
          { key: 'best', header: 'Best value', cell: (w) => show(w.best_value) },
          { key: 'params', header: 'Best params', cell: (w) => <span className="font-mono text-xs">{w.best_params ? JSON.stringify(w.best_params) : (w.note ?? '–')}</span> },
          { key: 'is', header: 'In-sample Sharpe', cell: (w) => show(w.in_sample?.sharpe) },
          { key: 'oos', header: 'OOS Sharpe', cell: (w) => show(w.out_of_sample?.sharpe) },
          { key: 'pnl', header: 'OOS PnL', cell: (w) => <span className={pnlClass(w.out_of_sample?.net_pnl)}>{show(w.out_of_sample?.net_pnl)}</span> },
          { key: 'dsr', header: 'Deflated Sharpe', cell: (w) => show(w.deflated_sharpe) },
          { key: 'parity', header: 'Replay parity', cell: (w) => (w.parity ? (w.parity.match ? 'match' : 'DIFFER') : '–') },
        ]
        const oos = s.result?.out_of_sample
        return (
          <div className="space-y-4" data-testid="study-detail">
            <Card title={`${s.strategy} on ${s.symbols.join(', ')} ${s.interval}`}
              actions={<Badge tone={statusTone(s.status === 'running' ? 'running' : 'completed')}>{s.status}</Badge>}>
              <div className="flex flex-wrap items-center gap-6 text-sm">
                <Progress s={s} />
                <div>best {s.objective}: <span data-testid="study-best">{show(s.best_value)}</span></div>
                <div className="text-slate-400">study <span className="font-mono text-xs">{s.study}</span></div>
              </div>
              {oos && (
                <p className="mt-3 text-sm text-slate-300" data-testid="study-result">
                  Out-of-sample (stitched test windows): Sharpe {show(oos.sharpe)}, PnL {show(oos.net_pnl)}, trades {raw(oos.trades)},
                  max drawdown {show(oos.max_drawdown)}; walk-forward efficiency {show(s.result?.walk_forward_efficiency)};
                  deflated Sharpe {show(s.result?.deflated_sharpe_mean)}
                </p>
              )}
            </Card>
            <Card title={s.walk_forward ? 'Walk-forward windows' : 'Study (in-sample only)'}>
              <DataTable rows={s.windows} columns={cols} rowKey={(w) => String(w.index)} testId="walk-forward-table" />
            </Card>
            {s.status === 'finished' && <ApplyPanel study={s} />}
          </div>
        )
      }}
    </QueryView>
  )
}

export default function Optimise() {
  const [params, setParams] = useSearchParams()
  const selected = params.get('study')
  const studies = useStudies()
  const columns: Column<StudySummary>[] = [
    { key: 'study', header: 'Study', cell: (s) => <span className="font-mono text-xs">{s.study}</span> },
    { key: 'status', header: 'Status', cell: (s) => <Badge tone={statusTone(s.status === 'running' ? 'running' : 'completed')}>{s.status}</Badge> },
    { key: 'what', header: 'What', cell: (s) => `${s.strategy} ${s.symbols.join(',')} ${s.interval}` },
    { key: 'progress', header: 'Progress', cell: (s) => <Progress s={s} /> },
    { key: 'best', header: 'Best', cell: (s) => show(s.best_value) },
    { key: 'started', header: 'Started', cell: (s) => fmtTime(s.started_at), hideOnMobile: true },
  ]
  return (
    <div data-testid="page-optimise">
      <PageTitle title="Optimise" sub="Walk-forward parameter studies run by `roottrading optimize`; apply the chosen parameters." />
      <div className="space-y-4">
        <Card title="Studies">
          <QueryView q={studies} what="studies" empty="No study yet: run `roottrading optimize --walk-forward …`.">
            {(rows) => (
              <DataTable rows={rows} columns={columns} rowKey={(s) => s.study} testId="studies-table" selectedKey={selected ?? undefined}
                onRowClick={(s) => setParams((p) => { p.set('study', s.study); return p })} />
            )}
          </QueryView>
        </Card>
        {selected && <StudyView name={selected} />}
      </div>
    </div>
  )
}
