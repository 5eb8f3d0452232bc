/**
 * Turns stream frames into cache changes. Small, certain changes are applied at once (a cycle's new
 * status, a new candle, the health report); everything else is an invalidation, batched so that a burst
 * of 50 frames costs one refetch per query, not 50.
 */
import type { QueryClient, QueryKey } from '@tanstack/react-query'
import type { BacktestProgress, Candle, Cycle, Frame, Health, Order, Page, Signal } from '../api/types'
import { keys, type ProgressMap } from '../api/hooks'

export const MAX_LIVE_CANDLES = 3000
/** Caches filled only by the stream: a refetch would empty them. */
const PUSHED_ONLY = new Set(['live-candles', 'backtest-progress'])

/** Which caches each topic makes stale. */
export function staleKeysFor(topic: string): QueryKey[] {
  if (topic === 'cycle.updates') return [['cycles'], ['portfolio'], ['pnl']]
  if (topic === 'signals') return [['signals'], ['decisions']]
  if (topic === 'order.updates') return [['orders'], ['cycles']]
  if (topic === 'trade.executions') return [['trades'], ['portfolio']]
  if (topic === 'portfolio.balances') return [['portfolio']]
  if (topic === 'risk.events') return [['risk'], ['trader', 'health'], ['logs']]
  if (topic === 'system.health') return [['scheduler']]
  if (topic === 'backtest.progress') return [['backtest', 'runs']]
  if (topic === 'universe.changed') return [['universe']]
  return []
}

export function mergeCandle(list: Candle[], c: Candle): Candle[] {
  const last = list[list.length - 1]
  if (last && last.open_time === c.open_time) return [...list.slice(0, -1), c]
  if (last && last.open_time > c.open_time) {
    const i = list.findIndex((x) => x.open_time === c.open_time)
    if (i < 0) return list // an old candle we never had: ignore rather than re-sort
    const copy = list.slice(); copy[i] = c; return copy
  }
  const next = [...list, c]
  return next.length > MAX_LIVE_CANDLES ? next.slice(next.length - MAX_LIVE_CANDLES) : next
}

/** Keep each run's first event (for the rate, so the ETA) and its latest. */
export function mergeProgress(map: ProgressMap, p: BacktestProgress): ProgressMap {
  const had = map[p.run_id]
  return { ...map, [p.run_id]: { first: had?.first ?? p, last: p } }
}

export class FrameApplier {
  private pending = new Map<string, QueryKey>()
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(private qc: QueryClient, private delayMs = 250) {}

  apply(frame: Frame): void {
    const { topic, data } = frame
    if (topic === 'hello') return
    if (topic.startsWith('market.candles.')) {
      const c = data as Candle
      const symbol = c.symbol ?? topic.slice('market.candles.'.length)
      this.qc.setQueryData<Candle[]>(keys.liveCandles(symbol), (old) => mergeCandle(old ?? [], c))
      return
    }
    if (topic === 'cycle.updates') this.patchCycle(data as Cycle)
    if (topic === 'order.updates') this.patchOrder(((data as { order?: Order }).order ?? data) as Order)
    if (topic === 'signals') this.prependSignal(data as Signal)
    if (topic === 'backtest.progress') {
      const p = data as BacktestProgress
      if (!p?.run_id) return
      this.qc.setQueryData<ProgressMap>(keys.backtestProgress, (old) => mergeProgress(old ?? {}, p))
      if (p.status === 'running') return // the list changes when a run ends, not at each progress event
      this.qc.invalidateQueries({ queryKey: keys.backtestRun(p.run_id) })
    }
    if (topic === 'system.health' && data && typeof data === 'object' && 'components' in data) {
      this.qc.setQueryData<Health>(keys.health, (old) => ({ ...(old ?? {}), ...(data as Health) }))
    }
    for (const k of staleKeysFor(topic)) this.pending.set(JSON.stringify(k), k)
    this.schedule()
  }

  /** Stale everything (after a reconnect: frames may have been missed). */
  refreshAll(): void {
    this.qc.invalidateQueries({ predicate: (q) => !PUSHED_ONLY.has(String(q.queryKey[0])) })
  }

  flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    const ks = [...this.pending.values()]
    this.pending.clear()
    ks.forEach((k) => this.qc.invalidateQueries({ queryKey: k }))
  }

  dispose(): void { if (this.timer) clearTimeout(this.timer); this.timer = null; this.pending.clear() }

  private schedule(): void {
    if (this.timer || this.pending.size === 0) return
    this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.delayMs)
  }

  private patchCycle(cycle: Cycle): void {
    if (!cycle?.id) return
    this.qc.setQueriesData<Page<Cycle>>({ queryKey: ['cycles'] }, (page) => {
      if (!page?.items) return page
      const i = page.items.findIndex((c) => c.id === cycle.id)
      if (i < 0) return page
      const items = page.items.slice(); items[i] = { ...items[i], ...cycle }
      return { ...page, items }
    })
  }

  private patchOrder(order: Order): void {
    if (!order?.client_order_id) return
    this.qc.setQueriesData<Order[]>({ queryKey: ['orders'] }, (list) => {
      if (!Array.isArray(list)) return list
      const i = list.findIndex((o) => o.client_order_id === order.client_order_id)
      if (i < 0) return list
      const copy = list.slice(); copy[i] = { ...copy[i], ...order }
      return copy
    })
  }

  private prependSignal(sig: Signal): void {
    if (!sig?.id) return
    this.qc.setQueriesData<Signal[]>({ queryKey: ['signals'] }, (list) => {
      if (!Array.isArray(list) || list.some((s) => s.id === sig.id)) return list
      return [sig, ...list]
    })
  }
}
