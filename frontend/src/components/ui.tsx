/** Small building blocks shared by every page: panels, badges, buttons and the loading/empty/error states. */
import type { ReactNode } from 'react'
import { ApiError, describeError } from '../api/client'

export function Card({ title, actions, children, className = '', testId }: {
  title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string; testId?: string
}) {
  return (
    <section data-testid={testId} className={`min-w-0 rounded-lg border border-line bg-panel/80 shadow-sm ${className}`}>
      {(title || actions) && (
        <header className="flex items-center justify-between gap-2 border-b border-line px-4 py-2.5">
          <h2 className="text-xs font-semibold uppercase tracking-wider text-slate-400">{title}</h2>
          <div className="flex items-center gap-2">{actions}</div>
        </header>
      )}
      <div className="p-4">{children}</div>
    </section>
  )
}

export function Stat({ label, value, sub, tone = '', testId }: {
  label: string; value: ReactNode; sub?: ReactNode; tone?: string; testId?: string
}) {
  return (
    <div data-testid={testId} className="rounded-lg border border-line bg-panel/80 px-4 py-3">
      <div className="text-[11px] font-medium uppercase tracking-wider text-slate-500">{label}</div>
      <div className={`num mt-1 text-xl font-semibold ${tone || 'text-slate-100'}`}>{value}</div>
      {sub && <div className="mt-0.5 text-xs text-slate-500">{sub}</div>}
    </div>
  )
}

const TONES: Record<string, string> = {
  green: 'bg-emerald-500/15 text-emerald-300 ring-emerald-500/30',
  red: 'bg-rose-500/15 text-rose-300 ring-rose-500/30',
  amber: 'bg-amber-500/15 text-amber-300 ring-amber-500/30',
  blue: 'bg-sky-500/15 text-sky-300 ring-sky-500/30',
  gray: 'bg-slate-500/15 text-slate-300 ring-slate-500/30',
  violet: 'bg-violet-500/15 text-violet-300 ring-violet-500/30',
}

export function Badge({ tone = 'gray', children, title }: { tone?: keyof typeof TONES | string; children: ReactNode; title?: string }) {
  return (
    <span title={title} className={`inline-flex items-center gap-1 whitespace-nowrap rounded px-1.5 py-0.5 text-[11px] font-medium ring-1 ring-inset ${TONES[tone] ?? TONES.gray}`}>
      {children}
    </span>
  )
}

/** Colour for any status word the platform uses. */
export function statusTone(s: string | undefined | null): string {
  const v = (s ?? '').toUpperCase()
  if (['OK', 'ACTIVE', 'FILLED', 'ACCEPTED', 'BUY', 'ENABLED', 'RUNNING', 'PASS', 'OPEN'].includes(v)) return 'green'
  if (['DOWN', 'FAILED', 'REJECTED', 'ERROR', 'SELL', 'BREACHED', 'BLOCK', 'TRIGGERED', 'CRITICAL'].includes(v)) return 'red'
  if (['DEGRADED', 'WARN', 'WARNING', 'PAUSED', 'WAITING_ENTRY', 'WAITING_EXIT', 'INITIATING', 'PARTIALLY_FILLED', 'NEW', 'PENDING_NEW', 'SKIPPED'].includes(v)) return 'amber'
  if (['COMPLETED', 'INFO'].includes(v)) return 'blue'
  return 'gray'
}

export const StatusBadge = ({ status }: { status: string | null | undefined }) =>
  <Badge tone={statusTone(status)}>{status ?? '—'}</Badge>

export function Button({ children, variant = 'default', className = '', ...rest }: React.ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: 'default' | 'primary' | 'danger' | 'ghost' | 'success'
}) {
  const v = {
    default: 'bg-slate-800 hover:bg-slate-700 text-slate-100 ring-1 ring-inset ring-slate-700',
    primary: 'bg-sky-600 hover:bg-sky-500 text-white',
    success: 'bg-emerald-600 hover:bg-emerald-500 text-white',
    danger: 'bg-rose-600 hover:bg-rose-500 text-white',
    ghost: 'hover:bg-slate-800 text-slate-300',
  }[variant]
  return (
    <button {...rest} className={`inline-flex items-center justify-center gap-1.5 rounded-md px-3 py-1.5 text-sm font-medium transition disabled:cursor-not-allowed disabled:opacity-50 ${v} ${className}`}>
      {children}
    </button>
  )
}

export function Spinner() {
  return <span className="inline-block h-4 w-4 animate-spin rounded-full border-2 border-slate-600 border-t-sky-400" aria-hidden />
}

export const Loading = ({ label = 'Loading…' }: { label?: string }) => (
  <div role="status" className="flex items-center gap-2 py-6 text-sm text-slate-400"><Spinner />{label}</div>
)

export const Empty = ({ children = 'Nothing yet.' }: { children?: ReactNode }) => (
  <div className="py-6 text-center text-sm text-slate-500" data-testid="empty">{children}</div>
)

export function ErrorState({ error, what }: { error: unknown; what?: string }) {
  const missing = error instanceof ApiError && error.missing
  return (
    <div role="alert" className={`rounded-md px-3 py-2 text-sm ring-1 ring-inset ${missing ? 'bg-slate-800/50 text-slate-400 ring-slate-700' : 'bg-rose-500/10 text-rose-300 ring-rose-500/30'}`}>
      {missing ? `${what ?? 'This data'} is not available on this server yet (${(error as ApiError).path}).` : describeError(error)}
    </div>
  )
}

/** Renders loading / error / empty / content for one query result. */
export function QueryView<T>({ q, what, empty, isEmpty, children }: {
  q: { data: T | undefined; isPending: boolean; error: unknown }
  what?: string
  empty?: ReactNode
  isEmpty?: (d: T) => boolean
  children: (d: T) => ReactNode
}) {
  if (q.isPending) return <Loading />
  if (q.error && q.data === undefined) return <ErrorState error={q.error} what={what} />
  const d = q.data as T
  const none = isEmpty ? isEmpty(d) : Array.isArray(d) && d.length === 0
  if (none) return <Empty>{empty}</Empty>
  return <>{children(d)}</>
}

export function ActionMessage({ error, success }: { error?: unknown; success?: ReactNode }) {
  if (error) return <ErrorState error={error} />
  if (success) return <div role="status" className="rounded-md bg-emerald-500/10 px-3 py-2 text-sm text-emerald-300 ring-1 ring-inset ring-emerald-500/30">{success}</div>
  return null
}

export const inputBase = 'rounded-md border border-line bg-panel2 px-2.5 py-1.5 text-sm text-slate-100 placeholder:text-slate-600 focus:border-sky-500 focus:outline-none'
export const inputCls = `${inputBase} w-full`

export function Field({ label, error, children, htmlFor }: { label: string; error?: string; children: ReactNode; htmlFor?: string }) {
  return (
    <label htmlFor={htmlFor} className="block">
      <span className="mb-1 block text-xs font-medium text-slate-400">{label}</span>
      {children}
      {error && <span role="alert" className="mt-1 block text-xs text-rose-400">{error}</span>}
    </label>
  )
}
