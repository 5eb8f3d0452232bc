"""`roottrading tune`: enable the strategies whose evidence passes your thresholds, per symbol; disable the others.

Evidence, per (strategy, symbol):
- walk-forward: the newest finished `roottrading optimize --walk-forward` study covering that pair (its stitched
  out-of-sample figures; in-sample-only studies are not evidence and are ignored);
- paper/live: the platform's own closed cycles in the store (trade_cycles), once there are `--min-live-trades`.
A pair passes when every evidence it has passes (out-of-sample Sharpe, trades, drawdown, deflated Sharpe;
live: realised PnL > 0). A pair with no evidence is disabled (`--unscored keep` leaves it as it is). Per symbol
the passing pairs are ranked by out-of-sample Sharpe; `--top K` enables only the K best.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    min_sharpe: float = 0.5
    min_trades: int = 10
    max_drawdown: float | None = None  # a fraction (0.2 = 20 %)
    min_dsr: float | None = None
    min_live_trades: int = 10
    top: int | None = None
    unscored: str = "disable"  # or "keep"


@dataclass
class Live:
    closed: int = 0
    realised: Decimal = Decimal(0)


@dataclass
class Decision:
    strategy: str
    symbol: str
    enabled_now: bool
    enable: bool
    reasons: list[str] = field(default_factory=list)
    study: str | None = None
    oos_sharpe: float | None = None
    rank: int | None = None
    scored: bool = False  # had evidence (walk-forward or enough paper/live trades)

    @property
    def change(self) -> bool:
        return self.enable != self.enabled_now

    def as_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "enabled_now": self.enabled_now,
            "enable": self.enable,
            "change": self.change,
            "rank": self.rank,
            "oos_sharpe": self.oos_sharpe,
            "study": self.study,
            "reasons": self.reasons,
        }


def walk_forward_evidence(studies: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest finished walk-forward result per (strategy, symbol) (`studies` newest first, results.py)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for s in studies:
        res = s.get("result")
        if s.get("status") != "finished" or not res or not res.get("walk_forward") or not res.get("out_of_sample"):
            continue
        for sym in res["symbols"]:
            out.setdefault((res["strategy"], sym), {**res, "study": s["study"]})
    return out


def live_evidence(pnls: list[Any]) -> dict[tuple[str, str], Live]:
    out: dict[tuple[str, str], Live] = defaultdict(Live)
    for p in pnls:
        if p.closed_at is not None:
            e = out[(p.strategy, p.symbol)]
            e.closed += 1
            e.realised += p.realised
    return dict(out)


def _check_wf(res: dict[str, Any], t: Thresholds) -> list[str]:
    m = res["out_of_sample"]
    fails = []
    sharpe = m.get("sharpe")
    if sharpe is None or sharpe < t.min_sharpe:
        fails.append(f"out-of-sample Sharpe {sharpe} < {t.min_sharpe}")
    if (m.get("trades") or 0) < t.min_trades:
        fails.append(f"out-of-sample trades {m.get('trades')} < {t.min_trades}")
    dd = m.get("max_drawdown")
    if t.max_drawdown is not None and dd is not None and abs(dd) > t.max_drawdown:
        fails.append(f"out-of-sample max drawdown {abs(dd):.3f} > {t.max_drawdown}")
    dsr = res.get("deflated_sharpe_mean")
    if t.min_dsr is not None and (dsr is None or dsr < t.min_dsr):
        fails.append(f"deflated Sharpe {dsr} < {t.min_dsr}")
    return fails


def decide(
    current: dict[tuple[str, str], bool],
    wf: dict[tuple[str, str], dict[str, Any]],
    live: dict[tuple[str, str], Live],
    t: Thresholds,
) -> list[Decision]:
    """One decision per (strategy, symbol) the platform runs (`current`: its enabled flags), ranked per symbol."""
    out: list[Decision] = []
    for (name, sym), enabled in sorted(current.items()):
        d = Decision(name, sym, enabled, enabled)
        res, lv = wf.get((name, sym)), live.get((name, sym))
        evidence = False
        fails: list[str] = []
        if res is not None:
            evidence = True
            d.study, d.oos_sharpe = res["study"], res["out_of_sample"].get("sharpe")
            fails += _check_wf(res, t)
        if lv is not None and lv.closed >= t.min_live_trades:
            evidence = True
            if lv.realised <= 0:
                fails.append(f"paper/live realised PnL {lv.realised} over {lv.closed} closed cycles")
        if not evidence:
            d.reasons.append("no walk-forward result and too few paper/live trades")
            d.enable = enabled if t.unscored == "keep" else False
        else:
            d.scored = True
            d.enable = not fails
            d.reasons += fails or ["passes"]
        out.append(d)
    by_symbol: dict[str, list[Decision]] = defaultdict(list)
    for d in out:
        if d.enable and d.scored:
            by_symbol[d.symbol].append(d)
    for ds in by_symbol.values():
        ds.sort(key=lambda d: -(d.oos_sharpe if d.oos_sharpe is not None else float("-inf")))
        for i, d in enumerate(ds, 1):
            d.rank = i
            if t.top is not None and i > t.top:
                d.enable = False
                d.reasons.append(f"ranked {i} on {d.symbol}, beyond --top {t.top}")
    return out


def format_plan(decisions: list[Decision]) -> str:
    lines = []
    for d in decisions:
        action = ("ENABLE" if d.enable else "DISABLE") if d.change else ("keep on" if d.enable else "keep off")
        rank = f"#{d.rank}" if d.rank else "  "
        sharpe = "-" if d.oos_sharpe is None else f"{d.oos_sharpe:.2f}"
        lines.append(
            f"  {d.symbol:<10} {rank:>3} {d.strategy:<24} {action:<8} oos sharpe {sharpe:>6}  {'; '.join(d.reasons)}"
        )
    return "\n".join(lines)
