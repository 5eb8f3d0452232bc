"""Performance over a period, read from the store: used by the portfolio service, the PnL service and
`roottrading report`, so all three show the same numbers.

Starting equity: the portfolio's current marked value minus every PnL made so far (realised + unrealised);
with no known balances, `DEMO_START_CAPITAL` (10 000 in the quote asset).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from roottrading.capital import metrics
from roottrading.capital.ledger import fmt
from roottrading.capital.pnl import (
    DAY_MS,
    CyclePnl,
    closed_sorted,
    cycle_pnl,
    daily_equity,
    equity_curve,
    group,
    split_symbol,
)
from roottrading.config_tuning import DEMO_START_CAPITAL  # PORTFOLIO_START_CAPITAL's default
from roottrading.store.db import Database
from roottrading.store.repos_capital import BalanceRepo, TradeReadRepo

ZERO = Decimal(0)
PERIODS: dict[str, int | None] = {
    "day": DAY_MS,
    "week": 7 * DAY_MS,
    "month": 30 * DAY_MS,
    "year": 365 * DAY_MS,
    "all": None,
}


def period_start(period: str, now: int) -> int | None:
    """Rolling windows: day = last 24 h, week = 7 days, month = 30 days, year = 365 days, all = no bound."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    span = PERIODS[period]
    return None if span is None else now - span


async def load_pnls(
    db: Database,
    *,
    quote_asset: str,
    marks: Mapping[str, Decimal] | None = None,
    since: int | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
) -> list[CyclePnl]:
    """PnL of every open cycle and of terminal cycles updated since `since`."""
    repo = TradeReadRepo(db)
    cycles = await repo.cycles(since=since, symbol=symbol, strategy=strategy)
    fills = await repo.fills_by_cycle(cycles)
    marks = marks or {}
    prices = {split_symbol(s, quote_asset)[0]: p for s, p in marks.items()}
    return [
        cycle_pnl(c, fills.get(c.id, []), quote_asset=quote_asset, mark=marks.get(c.symbol), prices=prices)
        for c in cycles
    ]


async def portfolio_value(db: Database) -> Decimal | None:
    """Sum of the stored balances' quote values; None when no balance is known yet."""
    balances = await BalanceRepo(db).all()
    if not balances:
        return None
    return sum((b.value_quote or ZERO for b in balances), ZERO)


def start_equity(
    current_value: Decimal | None, all_pnls: list[CyclePnl], default: Decimal = DEMO_START_CAPITAL
) -> Decimal:
    if current_value is None:
        return default
    return current_value - sum((p.total for p in all_pnls), ZERO)


def _num(v: float | int | None) -> float | int | None:
    return None if v is None else round(v, 6) if isinstance(v, float) else v


def performance(
    pnls: list[CyclePnl], *, start: Decimal, since: int | None, now: int, period: str = "all"
) -> dict[str, Any]:
    """Metrics and equity curve of the cycles closed in [since, now]; `pnls` must hold every cycle (the
    ones closed before `since` set the equity at the window's start)."""
    window = [p for p in closed_sorted(pnls) if since is None or p.closed_at >= since]  # type: ignore[operator]
    unreal = sum((p.unrealised for p in pnls if p.closed_at is None), ZERO)
    series = daily_equity(pnls, start, since=since, now=now)
    m = metrics.summary([float(p.realised) for p in window], series)
    realised = sum((p.realised for p in window), ZERO)
    fees = sum((p.fees for p in window), ZERO)
    return {
        "period": period,
        "since": since,
        "until": now,
        "start_equity": fmt(start),
        "realised_pnl": fmt(realised),
        "unrealised_pnl": fmt(unreal),
        "fees": fmt(fees),
        "open_cycles": sum(1 for p in pnls if p.closed_at is None),
        **{k: _num(v) for k, v in m.items()},
        "equity_curve": equity_curve(pnls, start, since=since, now=now, unrealised=unreal),
    }


def grouped_json(pnls: list[CyclePnl], key: str) -> list[dict[str, Any]]:
    """Per strategy / symbol / day totals with win rate and profit factor, JSON-ready."""
    out = []
    for k, g in sorted(group(pnls, key).items()):
        pf = metrics.profit_factor(g["pnls"])
        out.append(
            {
                key: k,
                "realised": fmt(g["realised"]),
                "unrealised": fmt(g["unrealised"]),
                "total": fmt(g["realised"] + g["unrealised"]),
                "fees": fmt(g["fees"]),
                "closed": g["closed"],
                "open": g["open"],
                "wins": g["wins"],
                "losses": g["losses"],
                "win_rate": round(g["wins"] / g["closed"], 6) if g["closed"] else None,
                "profit_factor": None if pf is None or pf == float("inf") else round(pf, 6),
            }
        )
    return out
