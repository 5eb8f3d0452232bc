import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { api } from '../api/client'
import { fmtTime } from '../lib/format'

/** One alert of the notify service (GET /api/notify/events): the same events NOTIFY_URLS receive. */
export interface AlertEvent {
  event: string
  key: string
  title: string
  body: string
  level: 'info' | 'warning' | 'critical' | string
  time: number
}

const LEVEL: Record<string, string> = { critical: 'bg-rose-500', warning: 'bg-amber-400', info: 'bg-sky-400' }

/** Unseen = newer than the newest alert shown when the user last opened the list (kept for the session). */
export function unseenCount(alerts: AlertEvent[], seenUpTo: number): number {
  return alerts.filter((a) => a.time > seenUpTo).length
}

export function AlertBell() {
  const q = useQuery({
    queryKey: ['notify-events'],
    queryFn: () => api<AlertEvent[]>('/api/notify/events?limit=20'),
    refetchInterval: 10_000,
    retry: false,
  })
  const [open, setOpen] = useState(false)
  const [seenUpTo, setSeenUpTo] = useState(0)
  if (q.isError) return null // no notify service in this process: no bell
  const alerts = q.data ?? []
  const unseen = unseenCount(alerts, seenUpTo)
  const toggle = () => {
    if (!open && alerts.length) setSeenUpTo(Math.max(...alerts.map((a) => a.time)))
    setOpen(!open)
  }
  return (
    <div className="relative" data-testid="alert-bell">
      <button type="button" onClick={toggle} aria-label={`alerts (${unseen} new)`} className="relative rounded-md p-1.5 text-slate-300 hover:bg-slate-800">
        <svg viewBox="0 0 24 24" className="h-5 w-5" fill="none" stroke="currentColor" strokeWidth={1.8}><path d="M6 8a6 6 0 1112 0c0 7 3 9 3 9H3s3-2 3-9M10 21h4" /></svg>
        {unseen > 0 && <span className="absolute -right-0.5 -top-0.5 rounded-full bg-rose-500 px-1 text-[10px] font-bold text-white">{unseen}</span>}
      </button>
      {open && (
        <div role="dialog" aria-label="recent alerts" className="absolute right-0 z-30 mt-2 max-h-96 w-80 overflow-y-auto rounded-md border border-line bg-panel2 p-2 shadow-xl">
          {alerts.length === 0 && <p className="p-2 text-sm text-slate-400">No alerts yet.</p>}
          <ul>
            {alerts.map((a) => (
              <li key={`${a.key}-${a.time}`} className="flex gap-2 border-b border-line/60 p-2 last:border-0">
                <span className={`mt-1.5 h-2 w-2 shrink-0 rounded-full ${LEVEL[a.level] ?? 'bg-slate-400'}`} title={a.level} />
                <div className="min-w-0">
                  <p className="text-sm font-medium text-slate-100">{a.title}</p>
                  <p className="break-words text-xs text-slate-400">{a.body}</p>
                  <p className="text-[11px] text-slate-500">{fmtTime(a.time)}</p>
                </div>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  )
}
