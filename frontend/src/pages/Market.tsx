import { lazy, Suspense, useMemo, useState } from 'react'
import { useCandles, useCycles, useLiveCandles } from '../api/hooks'
import { PageTitle } from '../components/Layout'
import { Card, ErrorState, inputBase, Loading, Stat } from '../components/ui'
import { INTERVAL_MS, mergeSeries, resample } from '../lib/candles'
import { fmtNum, num, pnlClass } from '../lib/format'
import { ema, sma } from '../lib/indicators'
import { useSymbolUniverse } from '../lib/symbols'
import type { Marker, Overlay } from '../components/CandleChart'

const CandleChart = lazy(() => import('../components/CandleChart'))
const INTERVALS = Object.keys(INTERVAL_MS)

export default function Market() {
  const { symbols } = useSymbolUniverse()
  const [symbol, setSymbol] = useState('')
  const [interval, setIntervalName] = useState('1m')
  const [smaP, setSmaP] = useState(20)
  const [emaP, setEmaP] = useState(50)
  const [showSma, setShowSma] = useState(true)
  const [showEma, setShowEma] = useState(true)
  const sym = symbol || symbols[0] || ''
  const hist = useCandles(sym, interval)
  const live = useLiveCandles(sym)
  const cycles = useCycles({ symbol: sym, limit: 200 })

  const candles = useMemo(() => {
    const liveTf = resample(live.data.filter((c) => !c.interval || c.interval === '1m'), interval)
    return mergeSeries(Array.isArray(hist.data) ? hist.data : [], liveTf)
  }, [hist.data, live.data, interval])
  const closes = useMemo(() => candles.map((c) => c.close), [candles])
  const overlays = useMemo<Overlay[]>(() => [
    ...(showSma ? [{ id: `sma${smaP}`, color: '#f59e0b', values: sma(closes, smaP) }] : []),
    ...(showEma ? [{ id: `ema${emaP}`, color: '#38bdf8', values: ema(closes, emaP) }] : []),
  ], [closes, smaP, emaP, showSma, showEma])
  const markers = useMemo<Marker[]>(() => {
    if (!candles.length) return []
    const ms = INTERVAL_MS[interval] ?? 60_000
    const first = candles[0].open_time
    const out: Marker[] = []
    for (const c of cycles.data?.items ?? []) {
      const snap = (t: number) => Math.floor(t / ms) * ms
      if (c.entry_price && c.created_at >= first) out.push({ time: snap(c.created_at), side: 'BUY', text: `in ${fmtNum(c.entry_price, 2)}` })
      if (c.exit_price && c.status === 'COMPLETED' && c.updated_at >= first) out.push({ time: snap(c.updated_at), side: 'SELL', text: `out ${fmtNum(c.profit_loss, 2)}` })
    }
    return out
  }, [cycles.data, candles, interval])

  const last = candles.at(-1)
  const prev = candles.at(-2)
  const change = last && prev ? ((last.close - prev.close) / prev.close) * 100 : undefined
  const histMissing = (hist.error && !hist.data) || (Array.isArray(hist.data) && hist.data.length === 0)

  return (
    <div className="space-y-4" data-testid="page-market">
      <PageTitle title="Market" sub="Candles with client-side SMA/EMA and the entries/exits of trade cycles." actions={<>
        <select aria-label="symbol" className={`${inputBase} w-auto`} value={sym} onChange={(e) => setSymbol(e.target.value)}>
          {symbols.map((s) => <option key={s}>{s}</option>)}
        </select>
        <div className="flex rounded-md ring-1 ring-line" role="group" aria-label="timeframe">
          {INTERVALS.map((i) => (
            <button key={i} onClick={() => setIntervalName(i)} aria-pressed={i === interval}
              className={`px-2.5 py-1.5 text-xs font-medium first:rounded-l-md last:rounded-r-md ${i === interval ? 'bg-sky-600 text-white' : 'text-slate-400 hover:bg-slate-800'}`}>{i}</button>
          ))}
        </div>
      </>} />
      <div className="grid grid-cols-2 gap-3 md:grid-cols-4">
        <Stat label={`${sym} last`} value={last ? fmtNum(last.close, 2) : '—'} />
        <Stat label="Change (1 bar)" value={change === undefined ? '—' : `${change > 0 ? '+' : ''}${change.toFixed(3)}%`} tone={pnlClass(change)} />
        <Stat label="Bars" value={candles.length} sub={histMissing ? 'live stream only' : 'history + live'} />
        <Stat label="Trades on chart" value={markers.length} sub={`${cycles.data?.total ?? 0} cycles on ${sym}`} tone={pnlClass(0)} />
      </div>
      <Card title={`${sym} · ${interval}`} actions={
        <div className="flex flex-wrap items-center gap-3 text-xs text-slate-400">
          <label className="flex items-center gap-1"><input type="checkbox" checked={showSma} onChange={(e) => setShowSma(e.target.checked)} />
            <span className="text-amber-400">SMA</span><input aria-label="SMA period" type="number" min={2} max={500} value={smaP} onChange={(e) => setSmaP(Math.max(2, num(e.target.value) || 2))} className={`${inputBase} w-14 py-0.5 text-xs`} /></label>
          <label className="flex items-center gap-1"><input type="checkbox" checked={showEma} onChange={(e) => setShowEma(e.target.checked)} />
            <span className="text-sky-400">EMA</span><input aria-label="EMA period" type="number" min={2} max={500} value={emaP} onChange={(e) => setEmaP(Math.max(2, num(e.target.value) || 2))} className={`${inputBase} w-14 py-0.5 text-xs`} /></label>
        </div>}>
        {hist.isPending && !live.data.length ? <Loading label="Loading candles…" /> : candles.length === 0 ? (
          <div className="space-y-3 py-8 text-center text-sm text-slate-500">
            {hist.error && !hist.data && <ErrorState error={hist.error} what="Candle history" />}
            <p>Waiting for candles from the live stream…</p>
          </div>
        ) : (
          <>
            {histMissing && <p className="mb-2 text-xs text-slate-500">No stored candle history for this symbol yet; showing candles received live since the dashboard opened.</p>}
            <Suspense fallback={<Loading label="Loading chart…" />}><CandleChart candles={candles} overlays={overlays} markers={markers} /></Suspense>
          </>
        )}
      </Card>
    </div>
  )
}
