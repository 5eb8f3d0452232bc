"""`roottrading report`: a plain-text performance report read straight from the store.

Same numbers as GET /api/portfolio/performance/{period} and /api/pnl/* (shared code in
roottrading.capital.performance). Open cycles are marked at the last stored candle close of their symbol.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import Any

from roottrading.capital.ledger import PocketLedger, fmt
from roottrading.capital.performance import (
    PERIODS,
    grouped_json,
    load_pnls,
    performance,
    period_start,
    portfolio_value,
    start_equity,
)
from roottrading.config import Settings
from roottrading.domain.money import to_decimal
from roottrading.store import CandleRepo, Database
from roottrading.store.repos_capital import TradeReadRepo

ZERO = Decimal(0)
ROWS = [
    ("cycles", "closed cycles", "{}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("profit_factor", "profit factor", "{:.2f}"),
    ("expectancy", "expectancy", "{:.2f}"),
    ("realised_pnl", "realised PnL", "{}"),
    ("fees", "fees", "{}"),
    ("total_return", "total return", "{:.2%}"),
    ("sharpe", "Sharpe (daily, x sqrt 365)", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("calmar", "Calmar", "{:.2f}"),
]


def print_report(settings: Settings, *, now_ms: int | None = None) -> str:
    """The report as text (the CLI prints it). Runs its own event loop: call it from synchronous code;
    from async code await `build_report` instead."""
    return asyncio.run(build_report(settings, now_ms=now_ms))


async def build_report(settings: Settings, *, now_ms: int | None = None) -> str:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        return await _report(db, settings, now_ms if now_ms is not None else time.time_ns() // 1_000_000)
    finally:
        await db.close()


def _cell(value: Any, pattern: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return _money(value)
    return pattern.format(value)


def _money(value: str | Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value):,.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


async def _report(db: Database, settings: Settings, now: int) -> str:
    quote = settings.quote_asset
    marks: dict[str, Decimal] = {}
    cycles = await TradeReadRepo(db).cycles()
    for sym in sorted({c.symbol for c in cycles if not c.status.is_terminal} | set(settings.symbols)):
        last = await CandleRepo(db).range(sym, settings.interval, limit=1)
        if last:
            marks[sym] = to_decimal(last[-1].close)
    pnls = await load_pnls(db, quote_asset=quote, marks=marks)
    value = await portfolio_value(db)
    start = start_equity(value, pnls)
    realised = sum((p.realised for p in pnls), ZERO)
    unreal = sum((p.unrealised for p in pnls), ZERO)
    stamp = dt.datetime.fromtimestamp(now / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"RootTrading report - {stamp} - mode {settings.trading_mode}, amounts in {quote}", ""]
    out.append(f"Portfolio value   {_money(value) if value is not None else 'unknown (no balances stored)'}")
    out.append(f"Starting equity   {_money(start)}")
    out.append(
        f"PnL               realised {_money(realised)}  unrealised {_money(unreal)}  "
        f"total {_money(realised + unreal)}  fees {_money(sum((p.fees for p in pnls), ZERO))}"
    )
    out.append(
        f"Cycles            {sum(p.closed_at is not None for p in pnls)} closed, "
        f"{sum(p.closed_at is None for p in pnls)} open"
    )
    out.append("")
    reps = {k: performance(pnls, start=start, since=period_start(k, now), now=now, period=k) for k in PERIODS}
    out.append("Performance (rolling windows)")
    out += _table(
        ["metric", *PERIODS], [[label, *(_cell(reps[k][key], pat) for k in PERIODS)] for key, label, pat in ROWS]
    )
    pockets = await PocketLedger(db, _Now(now), settings.pocket_config).pockets()
    if pockets:
        out += ["", "Capital pockets"]
        out += _table(
            ["pocket", "alloc %", "current", "used", "available"],
            [
                [
                    p.pocket_type,
                    fmt(p.allocation_percent) or "0",
                    _money(p.current_value),
                    _money(p.used_value),
                    _money(p.available_value),
                ]
                for p in pockets
            ],
        )
    for key in ("strategy", "symbol"):
        groups = grouped_json(pnls, key)
        if groups:
            out += ["", f"By {key}"]
            out += _table(
                [key, "closed", "open", "win rate", "profit factor", "realised", "unrealised", "fees"],
                [
                    [
                        str(g[key]),
                        str(g["closed"]),
                        str(g["open"]),
                        _cell(g["win_rate"], "{:.1%}"),
                        _cell(g["profit_factor"], "{:.2f}"),
                        _money(g["realised"]),
                        _money(g["unrealised"]),
                        _money(g["fees"]),
                    ]
                    for g in groups
                ],
            )
    if not pnls:
        out += ["", "No trade cycles stored yet."]
    return "\n".join(out) + "\n"


class _Now:
    """A fixed clock for the read-only ledger (it only needs one for writes)."""

    def __init__(self, now: int) -> None:
        self._now = now

    def now_ms(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
