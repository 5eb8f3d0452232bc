"""`--report PATH.html`: the study as one self-contained page (no scripts, no network): optimisation history,
parameter importance, the stitched out-of-sample equity and the walk-forward table. Built from the `--json`
document, so the page never shows a number the JSON does not hold."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

W, H = 760, 220


def _svg_line(points: Sequence[tuple[float, float]], color: str = "#2563eb") -> str:
    if len(points) < 2:
        return "<p>(not enough points to draw)</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (W - 60) / ((x1 - x0) or 1)
    sy = (H - 30) / ((y1 - y0) or 1)
    path = " ".join(f"{50 + (x - x0) * sx:.1f},{H - 15 - (y - y0) * sy:.1f}" for x, y in points)
    return (
        f'<svg width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="2" y="14" font-size="11">{y1:,.4g}</text><text x="2" y="{H - 15}" font-size="11">{y0:,.4g}</text>'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/></svg>'
    )


def _svg_dots(points: Sequence[tuple[float, float]]) -> str:
    if not points:
        return "<p>(no scored trials)</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (W - 60) / ((x1 - x0) or 1)
    sy = (H - 30) / ((y1 - y0) or 1)
    dots = "".join(
        f'<circle cx="{50 + (x - x0) * sx:.1f}" cy="{H - 15 - (y - y0) * sy:.1f}" r="2.5" fill="#64748b"/>'
        for x, y in points
    )
    best, run = [], float("-inf")
    for x, y in points:
        run = max(run, y)
        best.append(f"{50 + (x - x0) * sx:.1f},{H - 15 - (run - y0) * sy:.1f}")
    return (
        f'<svg width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="2" y="14" font-size="11">{y1:,.4g}</text><text x="2" y="{H - 15}" font-size="11">{y0:,.4g}</text>'
        f'{dots}<polyline fill="none" stroke="#dc2626" stroke-width="1.5" points="{" ".join(best)}"/></svg>'
    )


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(doc: dict[str, Any]) -> str:
    from roottrading.backtest.data import fmt_time

    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>optimisation "
        f"{e(doc['study'])}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "</style></head><body>",
        f"<h1>{e(doc['strategy'])} on {e(', '.join(doc['symbols']))} {e(doc['interval'])}</h1>",
        f"<p>study <code>{e(doc['study'])}</code>; objective {e(doc['objective'])}; sampler {e(doc['sampler'])}; "
        f"{doc['n_trials']} trials per window; constraints {e(str(doc['constraints']))}</p>",
    ]
    if doc.get("out_of_sample"):
        m = doc["out_of_sample"]["metrics"]
        parts += [
            "<h2>Out-of-sample result (stitched test windows)</h2>",
            _table(
                [[m.get(k) for k in ("net_pnl", "sharpe", "sortino", "max_drawdown", "trades", "profit_factor")]],
                ["net PnL", "Sharpe", "Sortino", "max drawdown", "trades", "profit factor"],
            ),
            f"<p>in-sample mean Sharpe {_cell(doc['in_sample']['mean_sharpe'])}; walk-forward efficiency "
            f"{_cell(doc.get('walk_forward_efficiency'))}; deflated Sharpe ratio (mean) "
            f"{_cell(doc.get('deflated_sharpe_mean'))}</p>",
            _svg_line([(t, v) for t, v in doc["out_of_sample"]["equity"]]),
        ]
    elif doc.get("note"):
        parts.append(f"<p><b>{e(doc['note'])}</b></p>")
    head = [
        "window",
        "train",
        "test",
        "best params",
        "in-sample Sharpe",
        "out-of-sample Sharpe",
        "OOS PnL",
        "deflated Sharpe",
        "replay parity",
    ]
    rows = []
    for w in doc["windows"]:
        rows.append(
            [
                w["index"],
                f"{fmt_time(w['train_start'])} .. {fmt_time(w['train_end'])}",
                f"{fmt_time(w['test_start'])} .. {fmt_time(w['test_end'])}" if doc["walk_forward"] else "-",
                w.get("best_params") or w.get("note"),
                (w.get("in_sample") or {}).get("sharpe"),
                (w.get("out_of_sample") or {}).get("sharpe"),
                (w.get("out_of_sample") or {}).get("net_pnl"),
                w.get("deflated_sharpe"),
                None if "parity" not in w else ("match" if w["parity"]["match"] else "DIFFER"),
            ]
        )
    parts += ["<h2>Walk-forward windows</h2>" if doc["walk_forward"] else "<h2>Study</h2>", _table(rows, head)]
    for w in doc["windows"]:
        scored = [(n, v) for n, v in w.get("history", [])]
        counts = w.get("counts", {})
        unscored = sum(v for k, v in counts.items() if k != "COMPLETE")
        parts += [
            f"<h3>Window {w['index']}: optimisation history</h3>",
            "<p>grey: scored trials' objective (with more than 2,000, the best of each bucket of trials); red: the "
            f"best so far. {counts.get('COMPLETE', 0)} scored, {unscored} pruned or failed.</p>",
            _svg_dots(scored),
        ]
        if w.get("importance"):
            parts += [
                "<p>parameter importance (fANOVA)</p>",
                _table(sorted(w["importance"].items(), key=lambda kv: -kv[1]), ["parameter", "importance"]),
            ]
    parts.append("</body></html>")
    return "".join(parts)


def write_report(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc), encoding="utf-8")
