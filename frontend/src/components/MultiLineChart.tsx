/** Several series on one SVG scale (two runs' returns side by side), without the charting library. */
import { fmtNum, fmtTime } from '../lib/format'
import type { Point } from './LineChart'

export interface Series { id: string; label: string; color: string; points: Point[] }

export function MultiLineChart({ series, height = 220, unit = '', testId }: { series: Series[]; height?: number; unit?: string; testId?: string }) {
  const W = 800, H = height
  const pad = { l: 8, r: 64, t: 10, b: 20 }
  const all = series.flatMap((s) => s.points)
  if (all.length < 2) return <div className="grid h-40 place-items-center text-sm text-slate-500" data-testid={testId}>Not enough data for a curve.</div>
  const x0 = Math.min(...all.map((p) => p.time)), x1 = Math.max(...all.map((p) => p.time))
  let y0 = Math.min(...all.map((p) => p.value)), y1 = Math.max(...all.map((p) => p.value))
  if (y0 === y1) { y0 -= 1; y1 += 1 }
  const sx = (t: number) => pad.l + ((t - x0) / (x1 - x0 || 1)) * (W - pad.l - pad.r)
  const sy = (v: number) => pad.t + (1 - (v - y0) / (y1 - y0)) * (H - pad.t - pad.b)
  return (
    <div data-testid={testId}>
      <div className="mb-1 flex flex-wrap gap-3 text-xs">
        {series.map((s) => <span key={s.id} className="flex items-center gap-1 text-slate-300"><span className="h-0.5 w-4" style={{ background: s.color }} />{s.label}</span>)}
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} className="h-auto w-full" preserveAspectRatio="none" role="img" aria-label={series.map((s) => s.label).join(' vs ')}>
        {[y1, (y0 + y1) / 2, y0].map((t) => (
          <g key={t}>
            <line x1={pad.l} x2={W - pad.r} y1={sy(t)} y2={sy(t)} stroke="#1f2937" strokeDasharray="3 4" />
            <text x={W - pad.r + 6} y={sy(t) + 4} fill="#64748b" fontSize="11">{fmtNum(t, 2)}{unit}</text>
          </g>
        ))}
        {series.map((s) => s.points.length > 1 && (
          <path key={s.id} data-series={s.id} fill="none" stroke={s.color} strokeWidth="2" vectorEffect="non-scaling-stroke"
            d={s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.time).toFixed(1)},${sy(p.value).toFixed(1)}`).join('')} />
        ))}
        <text x={pad.l} y={H - 4} fill="#64748b" fontSize="11">{fmtTime(x0).slice(0, 16)}</text>
        <text x={W - pad.r} y={H - 4} fill="#64748b" fontSize="11" textAnchor="end">{fmtTime(x1).slice(0, 16)}</text>
      </svg>
    </div>
  )
}
