/** Display helpers. Decimal strings are shown as sent when possible (no float round-trip for money). */
export function num(v: unknown): number {
  if (typeof v === 'number') return v
  if (typeof v === 'string' && v.trim() !== '') return Number(v)
  return NaN
}

export function fmtNum(v: unknown, digits = 2): string {
  const n = num(v)
  if (!Number.isFinite(n)) return '—'
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Up to `max` significant decimals, trailing zeros dropped: quantities and prices. */
export function fmtQty(v: unknown, max = 8): string {
  const n = num(v)
  if (!Number.isFinite(n)) return '—'
  return n.toLocaleString('en-US', { maximumFractionDigits: max })
}

export function fmtSigned(v: unknown, digits = 2, suffix = ''): string {
  const n = num(v)
  if (!Number.isFinite(n)) return '—'
  return `${n > 0 ? '+' : ''}${fmtNum(n, digits)}${suffix}`
}

export function pnlClass(v: unknown): string {
  const n = num(v)
  if (!Number.isFinite(n) || n === 0) return 'text-slate-300'
  return n > 0 ? 'text-emerald-400' : 'text-rose-400'
}

export function fmtTime(ms: number | null | undefined): string {
  if (!ms) return '—'
  const d = new Date(ms)
  return d.toISOString().replace('T', ' ').slice(0, 19)
}

export function shortId(id: string | null | undefined, n = 10): string {
  if (!id) return '—'
  return id.length > n + 2 ? `${id.slice(0, n)}…` : id
}
