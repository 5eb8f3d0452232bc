/**
 * Candles with SMA/EMA overlays and cycle entry/exit markers, drawn by TradingView's lightweight-charts.
 * Only the Market page imports this module, so the library stays out of the first-load bundle.
 */
import { useEffect, useRef } from 'react'
import {
  CandlestickSeries, ColorType, createChart, createSeriesMarkers, HistogramSeries, LineSeries,
  type IChartApi, type ISeriesApi, type ISeriesMarkersPluginApi, type SeriesMarker, type Time, type UTCTimestamp,
} from 'lightweight-charts'
import type { Candle } from '../api/types'

export interface Overlay { id: string; color: string; values: number[] }
export interface Marker { time: number; side: 'BUY' | 'SELL'; text: string }

const sec = (ms: number) => Math.floor(ms / 1000) as UTCTimestamp

export default function CandleChart({ candles, overlays, markers, height = 460 }: {
  candles: Candle[]; overlays: Overlay[]; markers: Marker[]; height?: number
}) {
  const el = useRef<HTMLDivElement>(null)
  const chart = useRef<IChartApi | null>(null)
  const series = useRef<ISeriesApi<'Candlestick'> | null>(null)
  const volume = useRef<ISeriesApi<'Histogram'> | null>(null)
  const lines = useRef(new Map<string, ISeriesApi<'Line'>>())
  const markerApi = useRef<ISeriesMarkersPluginApi<Time> | null>(null)
  const fitted = useRef(false)

  useEffect(() => {
    if (!el.current) return
    const c = createChart(el.current, {
      autoSize: true,
      height,
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, textColor: '#94a3b8', fontSize: 11 },
      grid: { vertLines: { color: '#1e293b55' }, horzLines: { color: '#1e293b55' } },
      rightPriceScale: { borderColor: '#1f2937' },
      timeScale: { borderColor: '#1f2937', timeVisible: true, secondsVisible: false },
      crosshair: { mode: 0 },
    })
    series.current = c.addSeries(CandlestickSeries, {
      upColor: '#10b981', downColor: '#ef4444', borderVisible: false, wickUpColor: '#10b981', wickDownColor: '#ef4444',
    })
    volume.current = c.addSeries(HistogramSeries, { priceScaleId: 'vol', priceFormat: { type: 'volume' }, color: '#334155' })
    c.priceScale('vol').applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } })
    markerApi.current = createSeriesMarkers(series.current, [])
    chart.current = c
    const ls = lines.current
    return () => { c.remove(); chart.current = null; ls.clear(); fitted.current = false }
  }, [height])

  useEffect(() => {
    const c = chart.current
    if (!c || !series.current || !volume.current) return
    series.current.setData(candles.map((k) => ({ time: sec(k.open_time), open: k.open, high: k.high, low: k.low, close: k.close })))
    volume.current.setData(candles.map((k) => ({ time: sec(k.open_time), value: k.volume, color: k.close >= k.open ? '#10b98144' : '#ef444444' })))
    const wanted = new Set(overlays.map((o) => o.id))
    for (const [id, s] of lines.current) if (!wanted.has(id)) { c.removeSeries(s); lines.current.delete(id) }
    for (const o of overlays) {
      let s = lines.current.get(o.id)
      if (!s) {
        s = c.addSeries(LineSeries, { color: o.color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false })
        lines.current.set(o.id, s)
      }
      s.setData(candles.flatMap((k, i) => (Number.isFinite(o.values[i]) ? [{ time: sec(k.open_time), value: o.values[i] }] : [])))
    }
    const ms: SeriesMarker<Time>[] = markers.map((m) => ({
      time: sec(m.time), position: m.side === 'BUY' ? 'belowBar' : 'aboveBar', shape: m.side === 'BUY' ? 'arrowUp' : 'arrowDown',
      color: m.side === 'BUY' ? '#34d399' : '#f87171', text: markers.length <= 30 ? m.text : undefined, // labels only when readable
    }))
    markerApi.current?.setMarkers(ms.sort((a, b) => (a.time as number) - (b.time as number)))
    if (!fitted.current && candles.length) { c.timeScale().fitContent(); fitted.current = true }
  }, [candles, overlays, markers])

  return <div ref={el} style={{ height }} className="w-full" data-testid="candle-chart" />
}
