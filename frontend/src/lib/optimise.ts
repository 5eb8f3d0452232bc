/**
 * Optimisation studies (GET /api/backtest/optimize/studies, recorded by `roottrading optimize`) and applying a
 * study's chosen parameters: the diff against what the platform runs now, per symbol, then one
 * PUT /api/analyzer/strategies/{name} per symbol (the analyzer validates and keeps them across restarts).
 */
import { api, qs } from '../api/client'
import type { StrategyInfo } from '../api/types'

export interface StudyWindow {
  index: number
  train_start: number
  train_end: number
  test_start: number
  test_end: number
  study: string
  done: number
  running: number
  failed?: number
  best_value: number | null
  best_params?: Record<string, unknown> | null
  in_sample?: Record<string, number | string | null>
  out_of_sample?: Record<string, number | string | null>
  deflated_sharpe?: number | null
  parity?: { match: boolean }
  note?: string
}

export interface StudySummary {
  study: string
  strategy: string
  symbols: string[]
  interval: string
  objective: string
  status: 'running' | 'finished' | string
  started_at: number | null
  finished_at: number | null
  trials_done: number
  trials_total: number
  best_value: number | null
  windows: number
  walk_forward: boolean
  chosen_params: Record<string, unknown> | null
}

export interface StudyResult {
  chosen_params: Record<string, unknown> | null
  out_of_sample: Record<string, number | string | null> | null
  in_sample: { mean_sharpe?: number | null } | Record<string, unknown> | null
  walk_forward_efficiency: number | null
  deflated_sharpe_mean: number | null
}

export interface StudyDetail extends Omit<StudySummary, 'windows' | 'chosen_params'> {
  n_trials: number
  windows: StudyWindow[]
  result: StudyResult | null
}

export interface ParamChange { symbol: string; param: string; old: unknown; new: unknown }

export const studiesPath = '/api/backtest/optimize/studies'

export function progressOf(s: { trials_done: number; trials_total: number }): number {
  return s.trials_total > 0 ? Math.min(100, (100 * s.trials_done) / s.trials_total) : 0
}

/** A parameter's current value from GET /api/analyzer/strategies ({value, low, high, ...} or a plain value). */
export function paramValue(v: unknown): unknown {
  return v && typeof v === 'object' && 'value' in (v as object) ? (v as { value: unknown }).value : v
}

/** What applying `chosen` changes on `symbol` (unchanged values left out), as `optimize --apply` prints it. */
export function diffParams(symbol: string, info: StrategyInfo | undefined, chosen: Record<string, unknown>): ParamChange[] {
  const now = info?.params ?? {}
  return Object.keys(chosen).sort()
    .filter((k) => paramValue(now[k]) !== chosen[k])
    .map((k) => ({ symbol, param: k, old: paramValue(now[k]), new: chosen[k] }))
}

export async function studyDiff(strategy: string, symbols: string[], chosen: Record<string, unknown>): Promise<ParamChange[]> {
  const out: ParamChange[] = []
  for (const symbol of symbols) {
    const rows = await api<StrategyInfo[]>(`/api/analyzer/strategies${qs({ symbol })}`)
    const info = rows.find((r) => r.name === strategy)
    if (!info) throw new Error(`the platform has no strategy ${strategy}`)
    out.push(...diffParams(symbol, info, chosen))
  }
  return out
}

export async function applyParams(strategy: string, symbols: string[], params: Record<string, unknown>): Promise<number> {
  for (const symbol of symbols) {
    await api(`/api/analyzer/strategies/${encodeURIComponent(strategy)}`, { method: 'PUT', json: { symbol, params } })
  }
  return symbols.length
}
