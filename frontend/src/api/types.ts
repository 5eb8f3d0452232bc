/** JSON shapes of the platform's API (see roottrading/domain/*.py). Decimals arrive as strings. */
export type Dec = string
export type Side = 'BUY' | 'SELL'

export interface Order {
  client_order_id: string
  symbol: string
  side: Side
  type: string
  quantity: Dec
  status: string
  price: Dec | null
  stop_price?: Dec | null
  time_in_force?: string
  exchange_order_id?: string | null
  executed_quantity: Dec
  cumulative_quote: Dec
  cycle_id: string | null
  created_at: number
  updated_at: number
  reject_reason?: string | null
}

export interface Cycle {
  id: string
  symbol: string
  strategy: string
  side: Side
  status: string
  created_at: number
  updated_at: number
  entry_order_id: string | null
  exit_order_id: string | null
  entry_price: Dec | null
  exit_price: Dec | null
  quantity: Dec
  stop_loss?: Dec | null
  take_profit?: Dec | null
  fees: Dec
  profit_loss: Dec | null
  profit_loss_percent: Dec | null
  signal_id?: string | null
  close_reason?: string | null
  /** the strategy's tags on the signals that opened / closed the cycle (null: untagged) */
  entry_tag?: string | null
  exit_tag?: string | null
}

export interface Page<T> { total: number; limit: number; offset: number; items: T[] }

export interface Fill {
  trade_id: string
  order_id: string
  symbol: string
  side: Side
  price: Dec
  quantity: Dec
  quote_quantity: Dec
  commission: Dec
  commission_asset: string
  time: number
  is_maker?: boolean
}

export interface Signal {
  id: string
  time: number
  symbol: string
  strategy: string
  side: Side
  strength: 'WEAK' | 'MODERATE' | 'STRONG' | 'VERY_STRONG'
  price: number
  interval: string
  regime?: string | null
  meta?: Record<string, unknown>
}

export interface Decision {
  id: number
  signal_id: string
  time: number
  symbol: string
  strategy: string
  decision: string
  reason: string
  details?: Record<string, unknown>
}

export interface LogRow {
  id: number
  time: number
  level: string
  service: string
  event: string
  context?: Record<string, unknown>
}

export interface ComponentHealth { status: string; [k: string]: unknown }
export interface Health { status: string; time: number; mode: string; components: Record<string, ComponentHealth> }

export interface Candle {
  symbol?: string
  interval?: string
  open_time: number
  close_time?: number
  open: number
  high: number
  low: number
  close: number
  volume: number
  closed?: boolean
}

export interface PortfolioSummary {
  total_value?: Dec
  quote_asset?: string
  pnl_today?: Dec
  pnl_total?: Dec
  [k: string]: unknown
}
export interface BalanceRow { asset: string; free: Dec; locked: Dec; total?: Dec; value_quote?: Dec | null }
export interface PocketRow {
  pocket_type: string
  allocation_percent: Dec
  current_value: Dec
  used_value: Dec
  available_value: Dec
}
export interface EquityPoint { time: number; equity: number | string }
export interface Performance { equity_curve?: EquityPoint[]; equity?: EquityPoint[]; [k: string]: unknown }

export interface RiskRule {
  name: string
  limit: unknown
  value: unknown
  state: string
  action: string
  [k: string]: unknown
}

/** A lock set by the risk manager: `strategy` (null: every new entry) locked by `rule` ('manual': a user's
 *  disable) since `since` until `until` (epoch ms of market time; null: until a user lifts it). */
export interface RiskLock {
  strategy: string | null
  rule: string
  action: string
  reason: string
  automatic: boolean
  since: number
  until: number | null
}
/** GET /api/risk/state. `now` is the platform clock (market time in demo and backtest). */
export interface RiskState {
  now: number
  equity: Dec
  equity_peak: Dec
  realised_pnl_today: Dec
  drawdown_pct: Dec
  open_cycles: number
  orders_last_minute: number
  paused: boolean
  pause_reason: string
  killed: boolean
  disabled_strategies: string[]
  loss_streaks: Record<string, number>
  atr_pct: Record<string, Dec>
  locks: RiskLock[]
}

/** A parameter is either a bare value or a described one ({value, low, high, step, type, choices, doc}). */
export interface ParamSpec { value?: unknown; default?: unknown; low?: number | null; high?: number | null; step?: number | null; type?: string; choices?: unknown[] | null; doc?: string }
export interface StrategyInfo {
  name: string
  enabled: boolean
  params: Record<string, unknown>
  param_ranges?: Record<string, unknown>
  symbols?: string[]
  doc?: string
  style?: string
}

export interface SymbolInfo { symbol: string; [k: string]: unknown }

/** One WebSocket frame of /api/stream/ws. */
export interface Frame { topic: string; key?: string | null; id?: string; ts?: number; data: unknown }

/** POST /api/backtest/runs (docs/backtesting.md "Through the API"). */
export interface BacktestRequest {
  strategies: string[]
  symbols: string[]
  interval: string
  start: number
  end: number
  data: string
  balance: string
  stake: string | null
  engine: 'fast' | 'replay'
  params?: Record<string, Record<string, string | number | boolean>>
  settings?: Record<string, string>
  allow_gaps?: boolean
}

/** One trade of a run: times epoch ms, money as decimal strings; an open trade has exit_time null. */
export interface BacktestTrade {
  symbol: string
  strategy: string
  entry_time: number
  entry_price: string
  exit_time: number | null
  exit_price: string | null
  quantity: string
  fees: string
  pnl: string
  exit_reason?: string | null
  entry_tag?: string | null
  exit_tag?: string | null
}

/** A stored run (GET /api/backtest/runs lists them without trades and equity). */
export interface BacktestRun {
  id: string
  created_at: number
  status: 'running' | 'completed' | 'interrupted' | 'failed' | string
  engine: string
  fallback?: string | null
  strategies: string[]
  symbols: string[]
  interval: string
  start_time: number
  end_time: number
  data: string
  balance: string
  stake: string | null
  candles: number
  seconds: number
  metrics: Record<string, unknown>
  warnings: string[]
  trades?: BacktestTrade[]
  equity?: [number, number][]
}

/** `backtest.progress` on the live stream. */
export interface BacktestProgress { run_id: string; status: string; done: number; total: number; time: number; error?: string | null }

/** GET /api/universe: the pairs traded and why each pair is in or out (docs/universe.md). */
export interface UniversePair {
  symbol: string
  selected: boolean
  reason: string
  rank?: number | null
  scores?: Record<string, number>
  stats?: { last_price: number; quote_volume: number; volatility: number; momentum: number; spread_pct: number | null; age_days: number } | null
}

export interface Universe {
  dynamic: boolean
  time: number | null
  next_refresh: number | null
  members: string[]
  streamed: string[]
  open_cycles: Record<string, number>
  pairs: UniversePair[]
  errors: string[]
  last_error: string | null
}
