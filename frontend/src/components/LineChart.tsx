/** A dependency-free SVG area chart: the overview's equity curve loads without the charting library. */
import { useId } from 'react'
import { fmtNum, fmtTime } from '../lib/format'

export interface Point { time: number; value: number }

export function LineChart({ points, height = 200, testId }: { points: Point[]; height?: number; testId?: string }) {
  // one gradient per chart: a shared id paints every chart with the first one's colour
  const fillId = `fill-${useId().replace(/[^A-Za-z0-9_-]/g, '')}`
  const W = 800
  const H = height
  const pad = { l: 8, r: 64, t: 10, b: 20 }
  if (points.length < 2) return <div className="grid h-40 place-items-center text-sm text-slate-500" data-testid={testId}>Not enough data for a curve yet.</div>
  const xs = points.map((p) => p.time)
  const ys = points.map((p) => p.value)
  const x0 = Math.min(...xs), x1 = Math.max(...xs)
  let y0 = Math.min(...ys), y1 = Math.max(...ys)
  if (y0 === y1) { y0 -= 1; y1 += 1 }
  const sx = (t: number) => pad.l + ((t - x0) / (x1 - x0 || 1)) * (W - pad.l - pad.r)
  const sy = (v: number) => pad.t + (1 - (v - y0) / (y1 - y0)) * (H - pad.t - pad.b)
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.time).toFixed(1)},${sy(p.value).toFixed(1)}`).join('')
  const up = ys[ys.length - 1] >= ys[0]
  const color = up ? '#10b981' : '#ef4444'
  const ticks = [y1, (y0 + y1) / 2, y0]
  return (
    <svg viewBox={`0 0 ${W} ${H}`} className="h-auto w-full" preserveAspectRatio="none" data-testid={testId} role="img" aria-label="equity curve">
      <defs>
        <linearGradient id={fillId} x1="0" x2="0" y1="0" y2="1">
          <stop offset="0%" stopColor={color} stopOpacity="0.35" />
          <stop offset="100%" stopColor={color} stopOpacity="0" />
        </linearGradient>
      </defs>
      {ticks.map((t) => (
        <g key={t}>
          <line x1={pad.l} x2={W - pad.r} y1={sy(t)} y2={sy(t)} stroke="#1f2937" strokeDasharray="3 4" />
          <text x={W - pad.r + 6} y={sy(t) + 4} fill="#64748b" fontSize="11">{fmtNum(t, 2)}</text>
        </g>
      ))}
      <path d={`${d}L${sx(x1)},${H - pad.b}L${sx(x0)},${H - pad.b}Z`} fill={`url(#${fillId})`} />
      <path d={d} fill="none" stroke={color} strokeWidth="2" vectorEffect="non-scaling-stroke" />
      <text x={pad.l} y={H - 4} fill="#64748b" fontSize="11">{fmtTime(x0).slice(5, 16)}</text>
      <text x={W - pad.r} y={H - 4} fill="#64748b" fontSize="11" textAnchor="end">{fmtTime(x1).slice(5, 16)}</text>
    </svg>
  )
}
