import { useQueryClient } from '@tanstack/react-query'
import { api } from '../api/client'
import { keys, useAction, useOrders } from '../api/hooks'
import type { Candle, Order } from '../api/types'
import { DataTable } from '../components/DataTable'
import { PageTitle } from '../components/Layout'
import { OrderForm } from '../components/OrderForm'
import { ActionMessage, Button, Card, QueryView, StatusBadge } from '../components/ui'
import { fmtNum, fmtQty, fmtTime, shortId } from '../lib/format'
import { useSymbolUniverse } from '../lib/symbols'

export const OPEN_ORDER_STATUSES = 'PENDING_NEW,NEW,PARTIALLY_FILLED'

const orderColumns = (extra?: (o: Order) => React.ReactNode) => [
  { key: 'time', header: 'Time', cell: (o: Order) => <span className="text-slate-400">{fmtTime(o.created_at)}</span> },
  { key: 'id', header: 'Order', cell: (o: Order) => <span className="font-mono text-xs text-slate-400" title={o.client_order_id}>{shortId(o.client_order_id, 12)}</span>, hideOnMobile: true },
  { key: 'sym', header: 'Symbol', cell: (o: Order) => <span className="font-medium text-slate-100">{o.symbol}</span> },
  { key: 'side', header: 'Side', cell: (o: Order) => <StatusBadge status={o.side} /> },
  { key: 'type', header: 'Type', cell: (o: Order) => o.type, hideOnMobile: true },
  { key: 'price', header: 'Price', cell: (o: Order) => fmtQty(o.price ?? (Number(o.executed_quantity) > 0 ? Number(o.cumulative_quote) / Number(o.executed_quantity) : null), 4), className: 'text-right' },
  { key: 'qty', header: 'Filled / Qty', cell: (o: Order) => `${fmtQty(o.executed_quantity)} / ${fmtQty(o.quantity)}`, className: 'text-right' },
  { key: 'quote', header: 'Quote', cell: (o: Order) => fmtNum(o.cumulative_quote), className: 'text-right', hideOnMobile: true },
  { key: 'status', header: 'Status', cell: (o: Order) => <StatusBadge status={o.status} /> },
  ...(extra ? [{ key: 'act', header: '', cell: extra, className: 'text-right' }] : []),
]

export function Orders() {
  const { symbols, filters } = useSymbolUniverse()
  const qc = useQueryClient()
  const open = useOrders({ status: OPEN_ORDER_STATUSES, limit: 200 })
  const recent = useOrders({ limit: 50 })
  const cancel = useAction((id: string) => api(`/api/trader/order/${encodeURIComponent(id)}`, { method: 'DELETE' }), [['orders'], ['cycles']])
  const refPrice = (s: string) => qc.getQueryData<Candle[]>(keys.liveCandles(s))?.at(-1)?.close
  return (
    <div className="space-y-4" data-testid="page-orders">
      <PageTitle title="Orders" sub="Manual orders go through the trader like any other; open orders can be cancelled." />
      <div className="grid gap-4 lg:grid-cols-3">
        <Card title="New order" testId="order-form">
          {symbols.length ? <OrderForm symbols={symbols} filters={filters} refPrice={refPrice} /> : <p className="text-sm text-slate-500">No symbol known yet.</p>}
        </Card>
        <Card title="Open orders" className="lg:col-span-2" testId="open-orders">
          <ActionMessage error={cancel.error} success={cancel.isSuccess && 'Cancel sent.'} />
          <QueryView q={open} what="Orders" empty="No open order.">
            {(rows) => <DataTable rows={rows} rowKey={(o) => o.client_order_id} columns={orderColumns((o) => (
              <Button variant="danger" className="px-2 py-0.5 text-xs" disabled={cancel.isPending} onClick={() => cancel.mutate(o.client_order_id)}>Cancel</Button>
            ))} />}
          </QueryView>
        </Card>
      </div>
      <Card title="Recent orders" testId="recent-orders">
        <QueryView q={recent} what="Orders" empty="No order yet.">
          {(rows) => <DataTable rows={rows} rowKey={(o) => o.client_order_id} columns={orderColumns()} />}
        </QueryView>
      </Card>
    </div>
  )
}
