/**
 * TanStack Query hooks, one per endpoint. Nothing here polls: the live stream (live/frames.ts)
 * invalidates or patches these caches when the platform pushes an event.
 */
import { useMutation, useQuery, useQueryClient, type QueryKey } from '@tanstack/react-query'
import { api, ApiError, qs } from './client'
import type {
  BacktestProgress, BacktestRequest, BacktestRun, BalanceRow, Candle, Cycle, Decision, Fill, Health, LogRow, Order, Page, Performance, PocketRow,
  PortfolioSummary, RiskRule, RiskState, Signal, StrategyInfo, SymbolInfo, Universe,
} from './types'

export const keys = {
  health: ['health'] as const,
  traderHealth: ['trader', 'health'] as const,
  cycles: (p: CycleParams) => ['cycles', p] as const,
  orders: (p: OrderParams) => ['orders', p] as const,
  trades: (p: { symbol?: string; order_id?: string }) => ['trades', p] as const,
  signals: (p: { symbol?: string; strategy?: string; limit?: number }) => ['signals', p] as const,
  decisions: (p: { signal_id?: string; limit?: number }) => ['decisions', p] as const,
  logs: (p: LogParams) => ['logs', p] as const,
  summary: ['portfolio', 'summary'] as const,
  balances: ['portfolio', 'balances'] as const,
  pockets: ['portfolio', 'pockets'] as const,
  performance: (period: string) => ['portfolio', 'performance', period] as const,
  riskRules: ['risk', 'rules'] as const,
  riskState: ['risk', 'state'] as const,
  universe: ['universe'] as const,
  strategies: (symbol?: string) => ['strategies', symbol ?? ''] as const,
  symbols: ['market', 'symbols'] as const,
  candles: (symbol: string, interval: string) => ['market', 'candles', symbol, interval] as const,
  liveCandles: (symbol: string) => ['live-candles', symbol] as const,
  report: ['scheduler', 'report'] as const,
  backtestRuns: ['backtest', 'runs'] as const,
  backtestRun: (id: string) => ['backtest', 'run', id] as const,
  backtestCandles: (id: string, symbol: string) => ['backtest', 'candles', id, symbol] as const,
  backtestProgress: ['backtest-progress'] as const,
}

export interface CycleParams { status?: string; symbol?: string; strategy?: string; limit?: number; offset?: number }
export interface OrderParams { symbol?: string; status?: string; limit?: number; offset?: number }
export interface LogParams { level?: string; service?: string; q?: string; since?: number; limit?: number }

/** Missing routes (404) and auth errors will not fix themselves on retry. */
function retry(count: number, err: unknown): boolean {
  if (err instanceof ApiError && [400, 401, 403, 404, 405, 422].includes(err.status)) return false
  return count < 2
}

export const queryDefaults = { retry, staleTime: 30_000, refetchOnWindowFocus: false } as const

export const useHealth = () => useQuery({ queryKey: keys.health, queryFn: () => api<Health>('/api/health') })
export const useTraderHealth = () =>
  useQuery({ queryKey: keys.traderHealth, queryFn: () => api<{ status: string; paused?: boolean }>('/api/trader/health') })
export const useCycles = (p: CycleParams) =>
  useQuery({ queryKey: keys.cycles(p), queryFn: () => api<Page<Cycle>>(`/api/trader/cycles${qs({ ...p })}`), placeholderData: (prev) => prev })
export const useOrders = (p: OrderParams) =>
  useQuery({ queryKey: keys.orders(p), queryFn: () => api<Order[]>(`/api/trader/orders${qs({ ...p })}`) })
export const useTrades = (p: { symbol?: string; order_id?: string }, enabled = true) =>
  useQuery({ queryKey: keys.trades(p), queryFn: () => api<Fill[]>(`/api/trader/trades${qs({ ...p })}`), enabled })
export const useSignals = (p: { symbol?: string; strategy?: string; limit?: number }) =>
  useQuery({ queryKey: keys.signals(p), queryFn: () => api<Signal[]>(`/api/analyzer/signals${qs({ ...p })}`) })
export const useDecisions = (p: { signal_id?: string; limit?: number }) =>
  useQuery({ queryKey: keys.decisions(p), queryFn: () => api<Decision[]>(`/api/coordinator/decisions${qs({ ...p })}`) })
export const useLogs = (p: LogParams) =>
  useQuery({ queryKey: keys.logs(p), queryFn: () => api<LogRow[]>(`/api/logger/logs${qs({ ...p })}`) })
export const useSummary = () =>
  useQuery({ queryKey: keys.summary, queryFn: () => api<PortfolioSummary>('/api/portfolio/summary') })
export const useBalances = () =>
  useQuery({ queryKey: keys.balances, queryFn: () => api<BalanceRow[]>('/api/portfolio/balances') })
export const usePockets = () =>
  useQuery({ queryKey: keys.pockets, queryFn: () => api<PocketRow[]>('/api/portfolio/pockets') })
export const usePerformance = (period: string) =>
  useQuery({ queryKey: keys.performance(period), queryFn: () => api<Performance>(`/api/portfolio/performance/${period}`) })
export const useRiskRules = () =>
  useQuery({ queryKey: keys.riskRules, queryFn: () => api<RiskRule[] | { rules: RiskRule[] }>('/api/risk/rules') })
export const useRiskState = () =>
  useQuery({ queryKey: keys.riskState, queryFn: () => api<RiskState>('/api/risk/state') })
export const useUniverse = () => useQuery({ queryKey: keys.universe, queryFn: () => api<Universe>('/api/universe') })
export const useStrategies = (symbol?: string) =>
  useQuery({ queryKey: keys.strategies(symbol), queryFn: () => api<StrategyInfo[]>(`/api/analyzer/strategies${qs({ symbol })}`) })
export const useSymbols = () =>
  useQuery({ queryKey: keys.symbols, queryFn: () => api<SymbolInfo[] | { symbols: SymbolInfo[] }>('/api/market/symbols') })
export const useCandles = (symbol: string, interval: string) =>
  useQuery({
    queryKey: keys.candles(symbol, interval),
    queryFn: () => api<Candle[]>(`/api/market/candles${qs({ symbol, interval, limit: 500 })}`),
    enabled: !!symbol,
  })
/** Candles pushed by the stream (filled by live/frames.ts); never fetched. */
export const useLiveCandles = (symbol: string) =>
  useQuery({ queryKey: keys.liveCandles(symbol), queryFn: () => [] as Candle[], staleTime: Infinity, initialData: [] as Candle[] })

export const useBacktestRuns = () =>
  useQuery({ queryKey: keys.backtestRuns, queryFn: () => api<BacktestRun[]>(`/api/backtest/runs${qs({ limit: 100 })}`) })
export const useBacktestRun = (id: string | null) =>
  useQuery({
    queryKey: keys.backtestRun(id ?? ''),
    queryFn: () => api<BacktestRun>(`/api/backtest/runs/${encodeURIComponent(id ?? '')}`),
    enabled: !!id,
    // the stream's `backtest.progress` refreshes a run when it ends; this slow re-read covers a missed frame
    refetchInterval: (q) => (q.state.data?.status === 'running' ? 10_000 : false),
  })
export const useBacktestCandles = (id: string | null, symbol: string, enabled = true) =>
  useQuery({
    queryKey: keys.backtestCandles(id ?? '', symbol),
    queryFn: () => api<Candle[]>(`/api/backtest/runs/${encodeURIComponent(id ?? '')}/candles${qs({ symbol, bars: 1500 })}`),
    enabled: enabled && !!id && !!symbol,
    staleTime: Infinity, // a finished run's candles never change
  })
/** Progress of each run, by id, pushed by the stream (live/frames.ts): the latest event and the first seen. */
export type ProgressMap = Record<string, { first: BacktestProgress; last: BacktestProgress }>
export const useBacktestProgress = () =>
  useQuery({ queryKey: keys.backtestProgress, queryFn: () => ({}) as ProgressMap, staleTime: Infinity, initialData: {} as ProgressMap })
export const startBacktest = (req: BacktestRequest) => api<{ id: string; status: string }>('/api/backtest/runs', { method: 'POST', json: req })
export const stopBacktest = (id: string) => api<{ id: string; status: string }>(`/api/backtest/runs/${encodeURIComponent(id)}/stop`, { method: 'POST' })

/** A mutation that refreshes the given caches afterwards (success or not: state may have changed). */
export function useAction<TVars, TOut = unknown>(fn: (v: TVars) => Promise<TOut>, invalidate: QueryKey[]) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: fn,
    onSettled: () => { invalidate.forEach((k) => qc.invalidateQueries({ queryKey: k })) },
  })
}
