import type { ReactNode } from 'react'
import { Empty } from './ui'

export interface Column<T> {
  key: string
  header: ReactNode
  cell: (row: T) => ReactNode
  className?: string
  hideOnMobile?: boolean
}

/** A dense, horizontally scrollable table with an empty state. */
export function DataTable<T>({ rows, columns, rowKey, empty = 'No rows.', onRowClick, selectedKey, testId }: {
  rows: T[]
  columns: Column<T>[]
  rowKey: (row: T) => string
  empty?: ReactNode
  onRowClick?: (row: T) => void
  selectedKey?: string | null
  testId?: string
}) {
  if (rows.length === 0) return <Empty>{empty}</Empty>
  return (
    <div className="-mx-4 overflow-x-auto" data-testid={testId}>
      <table className="w-full min-w-max text-left text-sm">
        <thead>
          <tr className="border-b border-line text-[11px] uppercase tracking-wider text-slate-500">
            {columns.map((c) => (
              <th key={c.key} className={`whitespace-nowrap px-3 py-2 font-medium first:pl-4 last:pr-4 ${c.hideOnMobile ? 'hidden md:table-cell' : ''} ${c.className ?? ''}`}>{c.header}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const k = rowKey(r)
            return (
              <tr key={k} data-row={k} onClick={onRowClick ? () => onRowClick(r) : undefined}
                className={`border-b border-line/60 last:border-0 ${onRowClick ? 'cursor-pointer hover:bg-slate-800/40' : ''} ${selectedKey === k ? 'bg-sky-500/10' : ''}`}>
                {columns.map((c) => (
                  <td key={c.key} className={`num whitespace-nowrap px-3 py-2 first:pl-4 last:pr-4 ${c.hideOnMobile ? 'hidden md:table-cell' : ''} ${c.className ?? ''}`}>{c.cell(r)}</td>
                ))}
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}

export function Pager({ total, limit, offset, onChange }: { total: number; limit: number; offset: number; onChange: (offset: number) => void }) {
  const page = Math.floor(offset / limit) + 1
  const pages = Math.max(1, Math.ceil(total / limit))
  return (
    <div className="mt-3 flex items-center justify-between text-xs text-slate-400">
      <span className="num">{total} total · page {page} / {pages}</span>
      <div className="flex gap-1">
        <button className="rounded px-2 py-1 ring-1 ring-slate-700 hover:bg-slate-800 disabled:opacity-40" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>Prev</button>
        <button className="rounded px-2 py-1 ring-1 ring-slate-700 hover:bg-slate-800 disabled:opacity-40" disabled={offset + limit >= total} onClick={() => onChange(offset + limit)}>Next</button>
      </div>
    </div>
  )
}
