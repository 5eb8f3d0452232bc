import { NavLink, Outlet } from 'react-router-dom'
import { Suspense } from 'react'
import { useHealth, useTraderHealth } from '../api/hooks'
import { useStreamState } from '../live/LiveProvider'
import { AlertBell } from './AlertBell'
import { TokenField } from './TokenField'
import { Badge, Loading, statusTone } from './ui'

export const NAV = [
  { to: '/', label: 'Overview', icon: 'M3 12l9-9 9 9M5 10v10h14V10' },
  { to: '/market', label: 'Market', icon: 'M4 19V9m5 10V5m5 14v-7m5 7V8' },
  { to: '/signals', label: 'Signals', icon: 'M2 12h4l3-8 4 16 3-8h6' },
  { to: '/universe', label: 'Universe', icon: 'M12 3a9 9 0 100 18 9 9 0 000-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18' },
  { to: '/cycles', label: 'Cycles', icon: 'M4 4v6h6M20 20v-6h-6M5 15a8 8 0 0014 3M19 9A8 8 0 005 6' },
  { to: '/orders', label: 'Orders', icon: 'M4 6h16M4 12h16M4 18h10' },
  { to: '/strategies', label: 'Strategies', icon: 'M12 3v4m0 10v4M3 12h4m10 0h4M6 6l3 3m6 6l3 3M6 18l3-3m6-6l3-3' },
  { to: '/risk', label: 'Risk', icon: 'M12 3l8 4v5c0 5-3.5 8-8 9-4.5-1-8-4-8-9V7z' },
  { to: '/backtests', label: 'Backtests', icon: 'M3 3v18h18M7 15l4-4 3 3 5-6M16 8h3v3' },
  { to: '/optimise', label: 'Optimise', icon: 'M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6' },
  { to: '/system', label: 'System', icon: 'M4 5h16v10H4zM8 19h8M12 15v4' },
]

function Icon({ d }: { d: string }) {
  return <svg viewBox="0 0 24 24" className="h-4 w-4 shrink-0" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round"><path d={d} /></svg>
}

function StatusStrip() {
  const stream = useStreamState()
  const health = useHealth()
  const trader = useTraderHealth()
  const paused = trader.data?.paused ?? (health.data?.components?.trader?.paused as boolean | undefined)
  return (
    <div className="flex flex-wrap items-center gap-1.5" data-testid="status-strip">
      {health.data && <Badge tone="violet">{health.data.mode?.toUpperCase()}</Badge>}
      {health.data && <Badge tone={statusTone(health.data.status)}>API {health.data.status}</Badge>}
      {health.error && !health.data && <Badge tone="red">API unreachable</Badge>}
      <Badge tone={stream === 'open' ? 'green' : stream === 'connecting' ? 'amber' : 'red'} title="live WebSocket stream">
        <span className={`h-1.5 w-1.5 rounded-full ${stream === 'open' ? 'animate-pulse bg-emerald-400' : 'bg-current'}`} />
        {stream === 'open' ? 'LIVE' : stream === 'connecting' ? 'CONNECTING' : 'OFFLINE'}
      </Badge>
      {paused !== undefined && <Badge tone={paused ? 'amber' : 'green'}>{paused ? 'TRADING PAUSED' : 'TRADING'}</Badge>}
    </div>
  )
}

export function Layout() {
  const link = ({ isActive }: { isActive: boolean }) =>
    `flex items-center gap-2.5 whitespace-nowrap rounded-md px-3 py-2 text-sm font-medium transition ${isActive ? 'bg-sky-500/15 text-sky-300' : 'text-slate-400 hover:bg-slate-800/70 hover:text-slate-200'}`
  return (
    <div className="flex min-h-full flex-col md:flex-row">
      <aside className="hidden w-52 shrink-0 border-r border-line bg-panel2 md:block">
        <div className="flex h-14 items-center gap-2 border-b border-line px-4">
          <span className="grid h-7 w-7 place-items-center rounded-md bg-gradient-to-br from-emerald-400 to-sky-500 text-xs font-black text-slate-950">RT</span>
          <span className="font-semibold tracking-tight text-slate-100">RootTrading</span>
        </div>
        <nav className="flex flex-col gap-0.5 p-2" aria-label="Main">
          {NAV.map((n) => <NavLink key={n.to} to={n.to} end={n.to === '/'} className={link}><Icon d={n.icon} />{n.label}</NavLink>)}
        </nav>
      </aside>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-20 border-b border-line bg-bg/90 backdrop-blur">
          <div className="flex min-h-14 flex-wrap items-center justify-between gap-x-3 gap-y-2 px-4 py-2">
            <div className="flex items-center gap-2 md:hidden">
              <span className="grid h-7 w-7 place-items-center rounded-md bg-gradient-to-br from-emerald-400 to-sky-500 text-xs font-black text-slate-950">RT</span>
            </div>
            <div className="order-3 w-full sm:order-none sm:w-auto"><StatusStrip /></div>
            <div className="flex items-center gap-2"><AlertBell /><TokenField /></div>
          </div>
          <nav className="flex gap-1 overflow-x-auto border-t border-line px-2 py-1.5 md:hidden" aria-label="Main mobile">
            {NAV.map((n) => <NavLink key={n.to} to={n.to} end={n.to === '/'} className={link}>{n.label}</NavLink>)}
          </nav>
        </header>
        <main className="mx-auto w-full max-w-[1600px] flex-1 p-3 sm:p-5">
          <Suspense fallback={<Loading />}><Outlet /></Suspense>
        </main>
      </div>
    </div>
  )
}

export function PageTitle({ title, sub, actions }: { title: string; sub?: string; actions?: React.ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-end justify-between gap-3">
      <div>
        <h1 className="text-lg font-semibold tracking-tight text-slate-100">{title}</h1>
        {sub && <p className="text-sm text-slate-500">{sub}</p>}
      </div>
      {actions && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
    </div>
  )
}
