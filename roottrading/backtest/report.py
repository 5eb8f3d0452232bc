"""A backtest's report: a summary table on the terminal, and ONE self-contained HTML file.

Why hand-written SVG instead of a chart library: the file must open anywhere, offline, years later, and be
mailed as one attachment; no CDN, no script to inline and keep up to date. Charts: equity (with buy-and-hold)
and drawdown, each symbol's candles with entries and exits (candles are merged into at most MAX_BARS bars so
a year of minutes stays readable; a marker sits on the bar holding its time, at its fill price), and a
monthly returns table. Tables: metrics beside buy-and-hold, per strategy, per symbol, every trade
(the first MAX_TRADE_ROWS). Hovering a marker or a bar shows its numbers (SVG <title>).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading.backtest.metrics import buy_and_hold
from roottrading.backtest.model import BacktestResult, Trade
from roottrading.domain import Candle

MAX_BARS = 400
MAX_TRADE_ROWS = 5_000
W, H = 960, 280

BH_KEYS = {
    "total_return": "return",
    "cagr": "cagr",
    "sharpe": "sharpe",
    "sortino": "sortino",
    "max_drawdown": "max_drawdown",
    "calmar": "calmar",
    "final_equity": "final_equity",
}
ROWS: list[tuple[str, str, str]] = [  # key, label, format (pct, num, money, int)
    ("total_return", "total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe", "Sharpe (daily, x sqrt 365)", "num"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "max drawdown", "pct"),
    ("calmar", "Calmar", "num"),
    ("profit_factor", "profit factor", "num"),
    ("expectancy", "expectancy (per trade)", "num"),
    ("win_rate", "win rate", "pct"),
    ("exposure", "exposure (time in market)", "pct"),
    ("trades", "trades", "int"),
    ("fees", "fees", "money"),
    ("net_pnl", "net PnL", "money"),
    ("final_equity", "final equity", "money"),
]


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{float(value):.2%}"
    if kind == "num":
        return f"{float(value):,.2f}"
    if kind == "money":
        return f"{Decimal(str(value)):,.2f}"
    return str(value)


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


# ---- terminal --------------------------------------------------------------------------------------------
def print_summary(result: BacktestResult, *, run_id: str | None = None, console: Any = None) -> None:
    """The metrics beside buy-and-hold, and the per-strategy table, as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    m, bh = result.metrics, result.metrics.get("buy_and_hold", {})
    c = result.config
    title = (
        f"{', '.join(c.strategies) or 'all strategies'} on {', '.join(c.symbols)} {c.interval}: "
        f"{result.candles:,} candles in {result.seconds:.2f}s ({result.engine})"
    )
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("strategy", justify="right")
    t.add_column("buy & hold", justify="right")
    bh_keys = BH_KEYS
    for key, label, kind in ROWS:
        other = bh.get(bh_keys[key]) if key in bh_keys else None
        t.add_row(label, fmt(m.get(key), kind), fmt(other, kind) if key in bh_keys else "")
    con.print(t)
    if len(m.get("by_strategy", [])) > 1 or len(m.get("by_symbol", [])) > 1:
        for key in ("by_strategy", "by_symbol"):
            rows = m.get(key, [])
            if len(rows) < 2:
                continue
            name = key.removeprefix("by_")
            tt = Table(title=f"per {name}")
            for col in (name, "trades", "win rate", "profit factor", "pnl", "fees"):
                tt.add_column(col, justify="left" if col == name else "right")
            for r in rows:
                tt.add_row(
                    r[name],
                    str(r["trades"]),
                    fmt(r["win_rate"], "pct"),
                    fmt(r["profit_factor"], "num"),
                    fmt(r["pnl"], "money"),
                    fmt(r["fees"], "money"),
                )
            con.print(tt)
    for w in result.warnings:
        con.print(f"[yellow]warning:[/yellow] {w}")
    if result.fallback:
        con.print(f"[yellow]engine:[/yellow] replay ran instead of fast: {result.fallback}")
    if run_id:
        con.print(f"stored as run {run_id}")


# ---- HTML ------------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1f2933;background:#fafbfc}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #d9e2ec;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #e4e7eb;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f0f4f8}.pos{color:#0b7a3e}.neg{color:#b42318}
.warn{background:#fff7e6;border:1px solid #f5c26b;padding:6px 10px;margin:6px 0}
svg{background:#fff;border:1px solid #d9e2ec}.meta td{text-align:left}.small{color:#616e7c;font-size:12px}
.scroll{max-height:600px;overflow:auto}
"""


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _line_chart(series: Sequence[tuple[str, str, Sequence[tuple[int, float]]]], title: str, pct: bool = False) -> str:
    pts = [p for _, _, s in series for p in s]
    if not pts:
        return f"<p>{html.escape(title)}: no data</p>"
    t0, t1 = min(p[0] for p in pts), max(p[0] for p in pts)
    v0, v1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x, y = _scale(t0, t1, 50, W - 10), _scale(v0, v1, H - 25, 10)
    out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><title>{html.escape(title)}</title>']
    for v in (v0, (v0 + v1) / 2, v1):
        label = f"{v:.1%}" if pct else f"{v:,.0f}"
        out.append(f'<line x1="50" x2="{W - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eef2f6"/>')
        out.append(f'<text x="2" y="{y(v) + 4:.1f}" font-size="10" fill="#616e7c">{label}</text>')
    out.append(f'<text x="50" y="{H - 5}" font-size="10" fill="#616e7c">{_ts(t0)}</text>')
    out.append(f'<text x="{W - 10}" y="{H - 5}" font-size="10" fill="#616e7c" text-anchor="end">{_ts(t1)}</text>')
    for i, (name, color, s) in enumerate(series):
        thin = _thin(s, 2000)
        d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in thin)
        out.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{d}"><title>{html.escape(name)}</title></polyline>'
        )
        out.append(f'<text x="{60 + 160 * i}" y="22" font-size="12" fill="{color}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _thin(s: Sequence[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    if len(s) <= n:
        return list(s)
    step = len(s) / n
    return [s[int(i * step)] for i in range(n)] + [s[-1]]


def drawdown_series(equity: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    peak, out = float("-inf"), []
    for t, v in equity:
        peak = max(peak, v)
        out.append((t, -(peak - v) / peak if peak > 0 else 0.0))
    return out


def _bars(candles: Sequence[Candle], n: int) -> list[tuple[int, int, float, float, float, float]]:
    """(first open time, last close time, open, high, low, close) of at most n merged bars."""
    if not candles:
        return []
    k = max(1, -(-len(candles) // n))
    out = []
    for i in range(0, len(candles), k):
        g = candles[i : i + k]
        out.append(
            (g[0].open_time, g[-1].close_time, g[0].open, max(c.high for c in g), min(c.low for c in g), g[-1].close)
        )
    return out


def _candle_chart(symbol: str, candles: Sequence[Candle], trades: Sequence[Trade]) -> str:
    bars = _bars(candles, MAX_BARS)
    if not bars:
        return ""
    lo = min(b[4] for b in bars)
    hi = max(b[3] for b in bars)
    for t in trades:
        for p in (t.entry_price, t.exit_price):
            if p is not None:
                lo, hi = min(lo, float(p)), max(hi, float(p))
    y = _scale(lo, hi, H - 25, 10)
    bw = (W - 60) / len(bars)
    xs = lambda i: 50 + i * bw + bw / 2  # noqa: E731
    out = [
        f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><title>{html.escape(symbol)} candles</title>'
    ]
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="2" y="{y(v) + 4:.1f}" font-size="10" fill="#616e7c">{v:,.2f}</text>')
    for i, (ot, _ct, o, h, low, c) in enumerate(bars):
        color = "#0b7a3e" if c >= o else "#b42318"
        x = xs(i)
        top, bot = y(max(o, c)), y(min(o, c))
        out.append(
            f"<g><title>{_ts(ot)} O {o:g} H {h:g} L {low:g} C {c:g}</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(h):.1f}" y2="{y(low):.1f}" stroke="{color}"/>'
            f'<rect x="{x - bw * 0.35:.1f}" y="{top:.1f}" width="{max(bw * 0.7, 0.6):.1f}" height="{max(bot - top, 0.6):.1f}" fill="{color}"/></g>'
        )
    starts = [b[0] for b in bars]

    def bar_of(ms: int) -> int:
        import bisect

        return max(0, bisect.bisect_right(starts, ms) - 1)

    for t in trades:
        xe, ye = xs(bar_of(t.entry_time)), y(float(t.entry_price))
        out.append(
            f'<path d="M{xe:.1f},{ye + 2:.1f} l-5,9 h10 z" fill="#1d4ed8"><title>entry {html.escape(t.strategy)} '
            f"{_ts(t.entry_time)} @ {t.entry_price} qty {t.quantity}</title></path>"
        )
        if t.exit_time is not None and t.exit_price is not None:
            xx, yx = xs(bar_of(t.exit_time)), y(float(t.exit_price))
            out.append(
                f'<path d="M{xx:.1f},{yx - 2:.1f} l-5,-9 h10 z" fill="#f59e0b"><title>exit {html.escape(t.strategy)} '
                f"{_ts(t.exit_time)} @ {t.exit_price} ({html.escape(t.exit_reason or '')}) pnl {t.pnl:.2f}</title></path>"
            )
    out.append("</svg>")
    return "".join(out)


def monthly_returns(equity: Sequence[tuple[int, float]], start_value: float) -> dict[tuple[int, int], float]:
    """(year, month) -> return of the account over that calendar month (UTC), from month-end values."""
    ends: dict[tuple[int, int], float] = {}
    for t, v in equity:
        d = datetime.fromtimestamp(t / 1000, UTC)
        ends[(d.year, d.month)] = v
    out, prev = {}, start_value
    for key in sorted(ends):
        out[key] = ends[key] / prev - 1 if prev > 0 else 0.0
        prev = ends[key]
    return out


def _monthly_table(equity: Sequence[tuple[int, float]], start_value: float) -> str:
    mr = monthly_returns(equity, start_value)
    if not mr:
        return "<p>no data</p>"
    years = sorted({y for y, _ in mr})
    head = "".join(
        f"<th>{m}</th>" for m in (["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    )
    rows = []
    for yr in years:
        cells = []
        for mo in range(1, 13):
            v = mr.get((yr, mo))
            if v is None:
                cells.append("<td></td>")
            else:
                a = min(abs(v) * 8, 0.8)
                bg = f"rgba(11,122,62,{a:.2f})" if v >= 0 else f"rgba(180,35,24,{a:.2f})"
                cells.append(f'<td style="background:{bg}">{v:.2%}</td>')
        year_ret = 1.0
        for mo in range(1, 13):
            year_ret *= 1 + mr.get((yr, mo), 0.0)
        rows.append(f"<tr><td>{yr}</td>{''.join(cells)}<td><b>{year_ret - 1:.2%}</b></td></tr>")
    return f"<table><tr><th>year</th>{head}<th>year</th></tr>{''.join(rows)}</table>"


def _group_table(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    if not rows:
        return "<p>no trades</p>"
    head = f"<tr><th>{key}</th><th>trades</th><th>open</th><th>wins</th><th>losses</th><th>win rate</th><th>profit factor</th><th>PnL</th><th>fees</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(r[key]))}</td><td>{r['trades']}</td><td>{r['open']}</td><td>{r['wins']}</td>"
        f"<td>{r['losses']}</td><td>{fmt(r['win_rate'], 'pct')}</td><td>{fmt(r['profit_factor'], 'num')}</td>"
        f'<td class="{_sign(r["pnl"])}">{fmt(r["pnl"], "money")}</td><td>{fmt(r["fees"], "money")}</td></tr>'
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def _sign(v: Any) -> str:
    return "pos" if Decimal(str(v)) > 0 else "neg" if Decimal(str(v)) < 0 else ""


def _tags(t: Trade) -> str:
    """ "entry tag -> exit tag" (either may be missing), empty when the strategy does not tag."""
    if not t.entry_tag and not t.exit_tag:
        return ""
    return f"{t.entry_tag or '-'} -> {t.exit_tag or '-'}"


def _trade_table(trades: Sequence[Trade]) -> str:
    if not trades:
        return "<p>no trades</p>"
    head = (
        "<tr><th>#</th><th>symbol</th><th>strategy</th><th>entry</th><th>entry price</th><th>exit</th>"
        "<th>exit price</th><th>quantity</th><th>fees</th><th>PnL</th><th>exit reason</th><th>tags</th></tr>"
    )
    body = "".join(
        f"<tr><td>{i + 1}</td><td>{html.escape(t.symbol)}</td><td>{html.escape(t.strategy)}</td><td>{_ts(t.entry_time)}</td>"
        f"<td>{t.entry_price}</td><td>{_ts(t.exit_time)}</td><td>{'' if t.exit_price is None else t.exit_price}</td>"
        f'<td>{t.quantity}</td><td>{fmt(t.fees, "money")}</td><td class="{_sign(t.pnl)}">{fmt(t.pnl, "money")}</td>'
        f"<td>{html.escape(t.exit_reason or '')}</td><td>{html.escape(_tags(t))}</td></tr>"
        for i, t in enumerate(trades[:MAX_TRADE_ROWS])
    )
    more = (
        f"<p class=small>{len(trades) - MAX_TRADE_ROWS} more trades in the JSON output</p>"
        if len(trades) > MAX_TRADE_ROWS
        else ""
    )
    return f'<div class="scroll"><table>{head}{body}</table></div>{more}'


def render_html(result: BacktestResult, candles: Mapping[str, Sequence[Candle]]) -> str:
    c, m = result.config, result.metrics
    bh = m.get("buy_and_hold", {})
    start_value = float(c.balance)
    _bh_metrics, bh_curve = buy_and_hold(candles, c.balance, Decimal(str(bh.get("taker_fee", "0.001"))))
    bh_keys = BH_KEYS
    metric_rows = "".join(
        f"<tr><td>{label}</td><td>{fmt(m.get(key), kind)}</td><td>{fmt(bh.get(bh_keys[key]), kind) if key in bh_keys else ''}</td></tr>"
        for key, label, kind in ROWS
    )
    warn = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in result.warnings)
    if result.fallback:
        warn += f'<div class="warn">engine: replay ran instead of fast: {html.escape(result.fallback)}</div>'
    meta = [
        ("strategies", ", ".join(c.strategies) or "all enabled"),
        ("symbols", ", ".join(c.symbols)),
        ("interval", c.interval),
        ("period", f"{_ts(c.start_ms)} .. {_ts(c.end_ms)} UTC"),
        ("data", c.data),
        ("engine", result.engine),
        ("candles", f"{result.candles:,} in {result.seconds:.2f}s"),
        ("starting balance", f"{c.balance}"),
        ("sizing", f"fixed stake {c.stake} per trade" if c.stake is not None else "coordinator risk sizing"),
        ("parameters", ", ".join(f"{k}.{kk}={vv}" for k, v in c.params.items() for kk, vv in v.items()) or "defaults"),
        ("settings (--set)", ", ".join(f"{k}={v}" for k, v in c.settings.items()) or "none"),
    ]
    meta_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta)
    equity = list(result.equity)
    charts = _line_chart([("strategy", "#1d4ed8", equity), ("buy & hold", "#9aa5b1", bh_curve)], "equity (quote asset)")
    dd = _line_chart([("drawdown", "#b42318", drawdown_series(equity))], "drawdown", pct=True)
    per_symbol = "".join(
        f"<h3>{html.escape(sym)}</h3>"
        + _candle_chart(sym, candles.get(sym, []), [t for t in result.trades if t.symbol == sym])
        for sym in c.symbols
    )
    title = f"Backtest: {', '.join(c.strategies) or 'all strategies'} on {', '.join(c.symbols)} {c.interval}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{warn}
<table class="meta">{meta_rows}</table>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>strategy</th><th>buy &amp; hold</th></tr>{metric_rows}</table>
<p class="small">Sharpe and Sortino over daily returns of the marked account; max drawdown over every candle;
buy &amp; hold: the balance split equally over the symbols, bought at the first open, taker fee in and out.</p>
<h2>Equity</h2>{charts}
<h2>Drawdown</h2>{dd}
<h2>Monthly returns</h2>{_monthly_table(equity, start_value)}
<h2>Candles, entries (blue) and exits (orange)</h2>{per_symbol}
<h2>Per strategy</h2>{_group_table(m.get("by_strategy", []), "strategy")}
<h2>Per symbol</h2>{_group_table(m.get("by_symbol", []), "symbol")}
<h2>Trades ({len(result.trades)})</h2>{_trade_table(result.trades)}
<p class="small">RootTrading backtest, engine {html.escape(result.engine)}. Times UTC.</p>
</body></html>
"""


def write_html(result: BacktestResult, path: Path, candles: Mapping[str, Sequence[Candle]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, candles), encoding="utf-8")
    return path
