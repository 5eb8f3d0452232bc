"""Backtest runs in the platform's database (tables backtest_runs / backtest_trades / backtest_equity).

Why stored: a run is evidence (what was asked, with which settings, what came out); the API, the dashboard
and later comparisons (two runs side by side, live-vs-backtest drift) read it back from here instead of
from files. The equity curve is stored at most MAX_EQUITY_POINTS points (evenly thinned, last point kept):
a year of 1m candles is 525,600 points, which a chart cannot show and a table should not hold per run.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from roottrading.backtest.model import BacktestConfig, BacktestResult, Trade
from roottrading.store.db import Database
from roottrading.store.tables import backtest_equity, backtest_runs, backtest_trades

MAX_EQUITY_POINTS = 5_000
_CHUNK = 500


def new_run_id() -> str:
    return "bt-" + uuid.uuid4().hex[:16]


def thin(points: list[tuple[int, float]], limit: int = MAX_EQUITY_POINTS) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return list(points)
    step = len(points) / (limit - 1)
    out = [points[int(i * step)] for i in range(limit - 1)]
    out.append(points[-1])
    return out


def _status(result: BacktestResult) -> str:
    return "interrupted" if result.interrupted else "completed"


class BacktestRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self, run_id: str, config: BacktestConfig, now_ms: int) -> None:
        """A run that is under way (the API lists it while it runs)."""
        async with self.db.begin() as conn:
            await conn.execute(
                backtest_runs.insert().values(
                    **_config_row(config),
                    id=run_id,
                    created_at=now_ms,
                    status="running",
                    engine=config.engine,
                    candles=0,
                    seconds=0.0,
                    metrics={},
                    warnings=[],
                )
            )

    async def fail(self, run_id: str, error: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(backtest_runs).where(backtest_runs.c.id == run_id).values(status="failed", warnings=[error])
            )

    async def save(self, run_id: str, result: BacktestResult, now_ms: int) -> None:
        """Store a finished (or interrupted) run: replaces what `start` wrote, trades and equity included."""
        row = {
            **_config_row(result.config),
            "status": _status(result),
            "engine": result.engine,
            "fallback": result.fallback,
            "candles": result.candles,
            "seconds": result.seconds,
            "metrics": result.metrics,
            "warnings": list(result.warnings),
        }
        async with self.db.begin() as conn:
            for table in (backtest_trades, backtest_equity):
                await conn.execute(delete(table).where(table.c.run_id == run_id))
            exists = (await conn.execute(select(backtest_runs.c.id).where(backtest_runs.c.id == run_id))).first()
            if exists:
                await conn.execute(update(backtest_runs).where(backtest_runs.c.id == run_id).values(**row))
            else:
                await conn.execute(backtest_runs.insert().values(**row, id=run_id, created_at=now_ms))
            trades = [{"run_id": run_id, "seq": i, **_trade_row(t)} for i, t in enumerate(result.trades)]
            for i in range(0, len(trades), _CHUNK):
                await conn.execute(backtest_trades.insert(), trades[i : i + _CHUNK])
            eq = [{"run_id": run_id, "time": t, "equity": v} for t, v in thin(result.equity)]
            for i in range(0, len(eq), _CHUNK):
                await conn.execute(backtest_equity.insert(), eq[i : i + _CHUNK])

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Runs, newest first, without trades and equity."""
        q = select(backtest_runs).order_by(backtest_runs.c.created_at.desc(), backtest_runs.c.id).limit(limit)
        async with self.db.connect() as conn:
            return [_run_json(dict(r)) for r in (await conn.execute(q)).mappings()]

    async def get(self, run_id: str) -> dict[str, Any] | None:
        """One run with its trades (as `--json` writes them) and its stored equity curve."""
        async with self.db.connect() as conn:
            run = (await conn.execute(select(backtest_runs).where(backtest_runs.c.id == run_id))).mappings().first()
            if run is None:
                return None
            trades = (
                await conn.execute(
                    select(backtest_trades).where(backtest_trades.c.run_id == run_id).order_by(backtest_trades.c.seq)
                )
            ).mappings()
            trade_list = [_trade_from_row(dict(t)).as_json() for t in trades]
            equity = (
                await conn.execute(
                    select(backtest_equity.c.time, backtest_equity.c.equity)
                    .where(backtest_equity.c.run_id == run_id)
                    .order_by(backtest_equity.c.time)
                )
            ).all()
        out = _run_json(dict(run))
        out["trades"] = trade_list
        out["equity"] = [[int(t), float(v)] for t, v in equity]
        return out


def _config_row(c: BacktestConfig) -> dict[str, Any]:
    return {
        "strategies": list(c.strategies),
        "symbols": list(c.symbols),
        "interval": c.interval,
        "start_time": c.start_ms,
        "end_time": c.end_ms,
        "data": c.data,
        "balance": c.balance,
        "stake": c.stake,
        "params": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in c.params.items()},
        "settings": dict(c.settings),
    }


def _trade_row(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "strategy": t.strategy,
        "entry_time": t.entry_time,
        "entry_price": t.entry_price,
        "exit_time": t.exit_time,
        "exit_price": t.exit_price,
        "quantity": t.quantity,
        "fees": t.fees,
        "pnl": t.pnl,
        "exit_reason": t.exit_reason,
        "entry_tag": t.entry_tag,
        "exit_tag": t.exit_tag,
    }


def _trade_from_row(r: dict[str, Any]) -> Trade:
    return Trade(
        symbol=r["symbol"],
        strategy=r["strategy"],
        entry_time=int(r["entry_time"]),
        entry_price=Decimal(r["entry_price"]),
        exit_time=None if r["exit_time"] is None else int(r["exit_time"]),
        exit_price=None if r["exit_price"] is None else Decimal(r["exit_price"]),
        quantity=Decimal(r["quantity"]),
        fees=Decimal(r["fees"]),
        pnl=Decimal(r["pnl"]),
        exit_reason=r["exit_reason"],
        entry_tag=r.get("entry_tag"),
        exit_tag=r.get("exit_tag"),
    )


def _run_json(r: dict[str, Any]) -> dict[str, Any]:
    from roottrading.domain.money import plain_text

    for k in ("balance", "stake"):
        if r.get(k) is not None:
            r[k] = plain_text(r[k])
    return r
