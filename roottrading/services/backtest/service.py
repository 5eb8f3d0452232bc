"""Backtest service (one-process mode: /api/backtest/...): start a backtest, list runs, read one, stop one.

A run is the same as `roottrading backtest` (backtest/runner.py: data, quality gate, engine, stored result)
in a separate process (multiprocessing, spawn): a replay of a year keeps a core busy for minutes, and the
platform serving this API must not stall. The child reports progress through a queue; this service relays it
on the bus as `backtest.progress` (the dashboard's WebSocket carries it) and the child stores the result in
the platform's database (backtest_runs/_trades/_equity), where GET reads it. MAX_RUNNING runs at a time
(a 409 beyond): each one holds a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from roottrading import messages as m
from roottrading.backtest.model import BacktestConfig
from roottrading.backtest.overrides import OverrideError, parse_overrides
from roottrading.backtest.store import BacktestRepo, new_run_id
from roottrading.domain.market import Candle
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import MAX_AMOUNT, MAX_EPOCH_MS, MIN_AMOUNT
from roottrading.runtime.service import HealthStatus, Service
from roottrading.services.backtest.optimize_routes import StudyReader, optimize_router

MAX_RUNNING = 1
PROGRESS_EVERY_S = 0.5
MAX_CHART_BARS = 5_000
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,80}$")]
Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,20}$")]


class RunRequest(BaseModel):
    """POST /runs: the options of `roottrading backtest` (see docs/backtesting.md)."""

    strategies: list[Name] = Field(default_factory=list, max_length=100, description="empty: all enabled")
    symbols: list[Symbol] = Field(default_factory=list, max_length=50, description="empty: SYMBOLS setting")
    interval: str | None = Field(None, description="default: INTERVAL setting")
    start: int = Field(ge=0, le=MAX_EPOCH_MS, description="epoch ms, inclusive")
    end: int = Field(ge=1, le=MAX_EPOCH_MS, description="epoch ms, exclusive")
    data: str = Field("store", pattern=r"^[^\x00]{1,500}$", description="store, bundled, a folder or kline files")
    balance: Decimal = Field(Decimal(10_000), ge=MIN_AMOUNT, le=MAX_AMOUNT)
    stake: Decimal | None = Field(None, ge=MIN_AMOUNT, le=MAX_AMOUNT)
    engine: Literal["fast", "replay"] = "fast"
    params: dict[Name, dict[Name, str | int | float | bool]] = Field(default_factory=dict)
    settings: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]{1,120}$")],
        Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")],
    ] = Field(default_factory=dict)
    allow_gaps: bool = False


class RunStarted(BaseModel):
    id: str
    status: str


class BacktestService(Service):
    name = "backtest"
    description = "Starts backtests in worker processes; lists and reads stored runs."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.repo = BacktestRepo(ctx.db)
        self.running: dict[str, tuple[Any, Any]] = {}  # run id -> (process, stop event)
        self._mp = mp.get_context("spawn")
        self._queue: Any = None
        self._relay: asyncio.Task[None] | None = None
        self.started_runs = 0

    async def start(self) -> None:
        self._queue = self._mp.Queue()
        self._relay = asyncio.create_task(self._relay_progress(), name="backtest-progress")

    async def stop(self) -> None:
        for _proc, stop in self.running.values():
            stop.set()  # the child stops at its next candle and stores its partial result
        for proc, _ in self.running.values():
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.terminate()
        if self._relay is not None:
            self._relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay

    async def _relay_progress(self) -> None:
        """Child processes' progress -> `backtest.progress` on the bus; a finished child is reaped."""
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                self._reap()
                await asyncio.sleep(0.1)
                continue
            msg = m.BacktestProgress(**event)
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await self.ctx.publish(m.BACKTEST_PROGRESS, msg, key=msg.run_id)

    def _reap(self) -> None:
        for rid, (proc, _) in list(self.running.items()):
            if not proc.is_alive():
                proc.join(0)
                del self.running[rid]

    def _config(self, req: RunRequest) -> BacktestConfig:
        s = self.ctx.settings
        if req.end <= req.start:
            raise HTTPException(422, "end must be after start")
        interval = req.interval or s.interval
        from roottrading.domain.market import INTERVAL_MS

        if interval not in INTERVAL_MS:
            raise HTTPException(422, f"unknown interval {interval!r}")
        try:
            parse_overrides(dict(req.settings))
        except OverrideError as exc:
            raise HTTPException(422, str(exc)) from None
        from roottrading.strategies.loader import load_strategies

        known = load_strategies(s.strategies_dir).strategies
        names = list(dict.fromkeys(req.strategies)) or list(s.strategies) or sorted(known)
        unknown = [n for n in [*names, *req.params] if n not in known]
        if unknown:
            raise HTTPException(422, f"unknown strategy {unknown[0]!r}")
        return BacktestConfig(
            strategies=tuple(names),
            symbols=tuple(x.upper() for x in (req.symbols or s.symbols)),
            interval=interval,
            start_ms=req.start,
            end_ms=req.end,
            data=req.data,
            balance=req.balance,
            engine=req.engine,
            params={k: dict(v) for k, v in req.params.items()},
            settings=dict(req.settings),
            stake=req.stake,
            allow_gaps=req.allow_gaps,
        )

    def router(self) -> APIRouter:
        r = APIRouter()
        r.include_router(optimize_router(StudyReader(self.ctx.settings.database_url)))

        @r.post("/runs", responses=error_responses(409, 422))
        async def start_run(req: RunRequest) -> RunStarted:
            """Start a backtest in a worker process; follow it on the `backtest.progress` topic or GET /runs/{id}."""
            self._reap()
            if len(self.running) >= MAX_RUNNING:
                raise HTTPException(409, f"{len(self.running)} backtest(s) already running; wait or stop one")
            config = self._config(req)
            run_id = new_run_id()
            await self.repo.start(run_id, config, time.time_ns() // 1_000_000)
            stop = self._mp.Event()
            proc = self._mp.Process(
                target=run_in_child,
                args=(config, self.ctx.settings.database_url, run_id, self._queue, stop),
                name=f"backtest-{run_id}",
                daemon=True,
            )
            proc.start()
            self.running[run_id] = (proc, stop)
            self.started_runs += 1
            return RunStarted(id=run_id, status="running")

        @r.get("/runs")
        async def list_runs(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
            """Runs, newest first (config, status, metrics; without trades and equity)."""
            return await self.repo.list(limit)

        @r.get("/runs/{run_id}", responses=error_responses(404))
        async def get_run(run_id: str) -> dict[str, Any]:
            """One run with its trades and equity curve."""
            run = await self.repo.get(run_id)
            if run is None:
                raise HTTPException(404, f"no backtest run {run_id!r}")
            return run

        @r.get("/runs/{run_id}/candles", responses=error_responses(404, 422))
        async def run_candles(
            run_id: str,
            symbol: str = Query(pattern=r"^[A-Za-z0-9]{2,20}$"),
            bars: int = Query(1500, ge=10, le=MAX_CHART_BARS),
        ) -> list[dict[str, Any]]:
            """A run's candles for one symbol, read again from the run's data source and period, merged into at
            most `bars` bars: the dashboard draws the run's entries and exits on them (a year of 1m candles is
            525,600 bars, more than a chart can show)."""
            run = await self.repo.get(run_id)
            if run is None:
                raise HTTPException(404, f"no backtest run {run_id!r}")
            sym = symbol.upper()
            if sym not in run["symbols"]:
                raise HTTPException(422, f"{sym} is not a symbol of run {run_id} ({', '.join(run['symbols'])})")
            from roottrading.backtest.data import MissingData, load_history

            try:
                got = await load_history(
                    run["data"],
                    [sym],
                    run["interval"],
                    int(run["start_time"]),
                    int(run["end_time"]),
                    database_url=self.ctx.settings.database_url,
                )
            except MissingData as exc:
                raise HTTPException(404, str(exc)) from None
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            return merge_bars(sorted(got[sym], key=lambda c: c.open_time), bars)

        @r.post("/runs/{run_id}/stop", responses=error_responses(404))
        async def stop_run(run_id: str) -> RunStarted:
            """Stop a running backtest: it stores what it did so far (status interrupted)."""
            held = self.running.get(run_id)
            if held is None:
                raise HTTPException(404, f"no running backtest {run_id!r}")
            held[1].set()
            return RunStarted(id=run_id, status="stopping")

        return r

    async def health(self) -> HealthStatus:
        self._reap()
        return HealthStatus(details={"running": len(self.running), "started": self.started_runs})


def merge_bars(candles: Sequence[Candle], limit: int) -> list[dict[str, Any]]:
    """At most `limit` bars, each merging k consecutive candles (first open, highest high, lowest low, last
    close, summed volume); `open_time` of the first and `close_time` of the last, so a trade's time falls in
    exactly one bar."""
    if not candles:
        return []
    k = max(1, -(-len(candles) // limit))
    out = []
    for i in range(0, len(candles), k):
        g = candles[i : i + k]
        out.append(
            {
                "symbol": g[0].symbol,
                "interval": g[0].interval,
                "open_time": g[0].open_time,
                "close_time": g[-1].close_time,
                "open": g[0].open,
                "high": max(c.high for c in g),
                "low": min(c.low for c in g),
                "close": g[-1].close,
                "volume": sum(c.volume for c in g),
            }
        )
    return out


def run_in_child(config: BacktestConfig, database_url: str, run_id: str, q: Any, stop: Any) -> None:
    """The worker process: the CLI's runner, progress to `q`, result (or failure) to the store."""
    from roottrading.backtest.data import MissingData
    from roottrading.backtest.runner import DataQualityError, run_backtest
    from roottrading.runtime.logsetup import configure_logging

    configure_logging("ERROR", "json")
    last = [0.0]

    def event(status: str, done: int, total: int, error: str | None = None) -> None:
        q.put(
            {
                "run_id": run_id,
                "status": status,
                "done": done,
                "total": total,
                "time": time.time_ns() // 1_000_000,
                "error": error,
            }
        )

    def progress(done: int, total: int) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = now
            event("running", done, total)

    async def go() -> None:
        try:
            result, _ = await run_backtest(config, database_url=database_url, run_id=run_id, progress=progress)
        except (MissingData, DataQualityError, OverrideError, ValueError) as exc:
            await _fail(database_url, run_id, str(exc))
            event("failed", 0, 0, str(exc))
            return
        except Exception as exc:
            await _fail(database_url, run_id, f"internal error: {exc!r}")
            event("failed", 0, 0, repr(exc))
            raise
        status = "interrupted" if result.interrupted else "completed"
        event(status, result.candles, result.candles)

    asyncio.run(go())


async def _fail(database_url: str, run_id: str, error: str) -> None:
    from roottrading.store import Database

    db = Database(database_url)
    try:
        await BacktestRepo(db).fail(run_id, error)
    finally:
        await db.close()
