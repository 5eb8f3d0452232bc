import { useState } from 'react'
import { useNavigate, useParams } from 'react-router-dom'
import { api } from '../api/client'
import { useAction, useCycles, useOrders, useTrades } from '../api/hooks'
import type { Cycle } from '../api/types'
import { DataTable, Pager } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { ActionMessage, Button, Card, inputBase, QueryView, StatusBadge } from '../components/ui'
import { fmtNum, fmtQty, fmtSigned, fmtTime, pnlClass, shortId } from '../lib/format'

const STATUSES = ['', 'INITIATING,WAITING_ENTRY,ACTIVE,WAITING_EXIT', 'ACTIVE', 'COMPLETED', 'CANCELED', 'FAILED']
const LIMIT = 25

/** "entry tag → exit tag" from the strategy's outputs, '—' when the cycle is untagged. */
export function cycleTags(c: Cycle): string {
  if (!c.entry_tag && !c.exit_tag) return '—'
  return `${c.entry_tag ?? '—'} → ${c.exit_tag ?? '—'}`
}

export function CycleTable({ rows, selected, onSelect }: { rows: Cycle[]; selected?: string | null; onSelect?: (c: Cycle) => void }) {
  return (
    <DataTable testId="cycles-table" rows={rows} rowKey={(c) => c.id} selectedKey={selected} onRowClick={onSelect}
      empty="No cycle matches these filters." columns={[
        { key: 'time', header: 'Opened', cell: (c) => <span className="text-slate-400">{fmtTime(c.created_at)}</span> },
        { key: 'sym', header: 'Symbol', cell: (c) => <span className="font-medium text-slate-100">{c.symbol}</span> },
        { key: 'strat', header: 'Strategy', cell: (c) => c.strategy, hideOnMobile: true },
        { key: 'status', header: 'Status', cell: (c) => <StatusBadge status={c.status} /> },
        { key: 'qty', header: 'Qty', cell: (c) => fmtQty(c.quantity), className: 'text-right', hideOnMobile: true },
        { key: 'entry', header: 'Entry', cell: (c) => fmtQty(c.entry_price, 4), className: 'text-right' },
        { key: 'exit', header: 'Exit', cell: (c) => fmtQty(c.exit_price, 4), className: 'text-right', hideOnMobile: true },
        { key: 'pnl', header: 'PnL', cell: (c) => <span className={pnlClass(c.profit_loss)}>{fmtSigned(c.profit_loss, 4)}</span>, className: 'text-right' },
        { key: 'pct', header: 'PnL %', cell: (c) => <span className={pnlClass(c.profit_loss_percent)}>{fmtSigned(c.profit_loss_percent, 2, '%')}</span>, className: 'text-right', hideOnMobile: true },
        { key: 'why', header: 'Exit reason', cell: (c) => <span className="text-slate-500">{c.close_reason ?? '—'}</span>, hideOnMobile: true },
        { key: 'tag', header: 'Tags', cell: (c) => <span className="text-slate-500">{cycleTags(c)}</span>, hideOnMobile: true },
      ]} />
  )
}

export function Cycles() {
  const { id } = useParams()
  const nav = useNavigate()
  const [status, setStatus] = useState('')
  const [symbol, setSymbol] = useState('')
  const [strategy, setStrategy] = useState('')
  const [offset, setOffset] = useState(0)
  const q = useCycles({ status: status || undefined, symbol: symbol.trim().toUpperCase() || undefined, strategy: strategy.trim() || undefined, limit: LIMIT, offset })
  const reset = (f: () => void) => { f(); setOffset(0) }
  return (
    <div className="space-y-4" data-testid="page-cycles">
      <PageTitle title="Cycles & trades" sub="Every entry and its exit. Click a row for its orders and fills." />
      <div className="grid gap-4 2xl:grid-cols-3">
        <Card title="Trade cycles" className="2xl:col-span-2" actions={
          <div className="flex flex-wrap gap-2">
            <select aria-label="status filter" className={`${inputBase} w-auto`} value={status} onChange={(e) => reset(() => setStatus(e.target.value))}>
              {STATUSES.map((s) => <option key={s} value={s}>{s === '' ? 'All statuses' : s.includes(',') ? 'Open' : s}</option>)}
            </select>
            <input aria-label="symbol filter" placeholder="Symbol" className={`${inputBase} w-28`} value={symbol} onChange={(e) => reset(() => setSymbol(e.target.value))} />
            <input aria-label="strategy filter" placeholder="Strategy" className={`${inputBase} w-28`} value={strategy} onChange={(e) => reset(() => setStrategy(e.target.value))} />
          </div>}>
          <QueryView q={q} what="Cycles" isEmpty={() => false}>
            {(p) => <>
              <CycleTable rows={p.items} selected={id} onSelect={(c) => nav(`/cycles/${c.id}`)} />
              <Pager total={p.total} limit={LIMIT} offset={offset} onChange={setOffset} />
            </>}
          </QueryView>
        </Card>
        <div>{id ? <CycleDetail id={id} cycle={q.data?.items.find((c) => c.id === id)} /> : (
          <Card title="Cycle detail"><p className="text-sm text-slate-500">Select a cycle to see its orders and fills.</p></Card>)}</div>
      </div>
    </div>
  )
}

function CycleDetail({ id, cycle: fromPage }: { id: string; cycle?: Cycle }) {
  // The cycle may be on another page of the table: look it up in the most recent ones.
  const recent = useCycles({ limit: 500 })
  const cycle = fromPage ?? recent.data?.items.find((c) => c.id === id)
  const orders = useOrders({ symbol: cycle?.symbol, limit: 500 })
  const entryFills = useTrades({ order_id: cycle?.entry_order_id ?? undefined }, !!cycle?.entry_order_id)
  const exitFills = useTrades({ order_id: cycle?.exit_order_id ?? undefined }, !!cycle?.exit_order_id)
  const close = useAction((cid: string) => api(`/api/trader/close/${cid}`, { method: 'POST' }), [['cycles'], ['orders'], ['trades']])
  const [confirming, setConfirming] = useState(false)
  if (!cycle) return <Card title="Cycle detail">{recent.isPending ? 'Loading…' : <p className="text-sm text-slate-500">Cycle {id} not found.</p>}</Card>
  const own = (orders.data ?? []).filter((o) => o.cycle_id === cycle.id)
  const fills = [...(entryFills.data ?? []), ...(exitFills.data ?? [])]
  const rows: [string, React.ReactNode][] = [
    ['Status', <StatusBadge status={cycle.status} />], ['Symbol', cycle.symbol], ['Strategy', cycle.strategy],
    ['Quantity', fmtQty(cycle.quantity)], ['Entry', fmtQty(cycle.entry_price)], ['Exit', fmtQty(cycle.exit_price)],
    ['Stop / target', `${fmtQty(cycle.stop_loss)} / ${fmtQty(cycle.take_profit)}`], ['Fees', fmtQty(cycle.fees, 6)],
    ['PnL', <span className={pnlClass(cycle.profit_loss)}>{fmtSigned(cycle.profit_loss, 4)} ({fmtSigned(cycle.profit_loss_percent, 2, '%')})</span>],
    ['Opened', fmtTime(cycle.created_at)], ['Updated', fmtTime(cycle.updated_at)], ['Exit reason', cycle.close_reason ?? '—'], ['Tags', cycleTags(cycle)],
  ]
  return (
    <Card title={`Cycle ${shortId(cycle.id, 14)}`} testId="cycle-detail" actions={cycle.status === 'ACTIVE' && (
      confirming ? <>
        <Button variant="danger" onClick={() => { close.mutate(cycle.id); setConfirming(false) }}>Confirm close</Button>
        <Button variant="ghost" onClick={() => setConfirming(false)}>Cancel</Button>
      </> : <Button variant="danger" onClick={() => setConfirming(true)} disabled={close.isPending}>Close position</Button>)}>
      <dl className="grid grid-cols-2 gap-x-4 gap-y-2 text-sm">
        {rows.map(([k, v]) => <div key={k} className="contents"><dt className="text-slate-500">{k}</dt><dd className="num text-right text-slate-200">{v}</dd></div>)}
      </dl>
      <div className="mt-3"><ActionMessage error={close.error} success={close.isSuccess && 'Close order sent.'} /></div>
      <h3 className="mb-2 mt-5 text-xs font-semibold uppercase tracking-wider text-slate-400">Orders</h3>
      <QueryView q={orders} what="Orders" isEmpty={() => own.length === 0} empty="No order for this cycle.">
        {() => <DataTable rows={own} rowKey={(o) => o.client_order_id} columns={[
          { key: 'side', header: 'Side', cell: (o) => <StatusBadge status={o.side} /> },
          { key: 'type', header: 'Type', cell: (o) => o.type },
          { key: 'status', header: 'Status', cell: (o) => <StatusBadge status={o.status} /> },
          { key: 'qty', header: 'Filled', cell: (o) => `${fmtQty(o.executed_quantity)} / ${fmtQty(o.quantity)}`, className: 'text-right' },
          { key: 'quote', header: 'Quote', cell: (o) => fmtNum(o.cumulative_quote), className: 'text-right' },
        ]} />}
      </QueryView>
      <h3 className="mb-2 mt-5 text-xs font-semibold uppercase tracking-wider text-slate-400">Fills</h3>
      {fills.length === 0 ? <p className="text-sm text-slate-500">No fill.</p> : (
        <DataTable rows={fills} rowKey={(f) => f.trade_id} columns={[
          { key: 'time', header: 'Time', cell: (f) => fmtTime(f.time).slice(5) },
          { key: 'side', header: 'Side', cell: (f) => <StatusBadge status={f.side} /> },
          { key: 'price', header: 'Price', cell: (f) => fmtQty(f.price), className: 'text-right' },
          { key: 'qty', header: 'Qty', cell: (f) => fmtQty(f.quantity), className: 'text-right' },
          { key: 'fee', header: 'Fee', cell: (f) => `${fmtQty(f.commission)} ${f.commission_asset}`, className: 'text-right' },
        ]} />)}
    </Card>
  )
}
