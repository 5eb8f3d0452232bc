"""Analyzer service (reference port 5001): candles in, strategy signals out.

Consumes closed candles per symbol, keeps a rolling window per symbol (warmed from stored history at start),
evaluates every enabled strategy (in worker processes partitioned by symbol when ANALYZER_WORKERS > 0),
stores every signal in trading_signals and publishes them on `signals` (only consensus signals when
ANALYZER_CONSENSUS > 1). Strategies can be enabled, disabled and re-parametrised per symbol at runtime.
Higher timeframes are resampled from the base interval inside the strategies that declare them; the
"Ride or React" regime adaptation is each strategy's `ride_or_react` parameter.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from roottrading import messages as m
from roottrading.domain import Candle
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import Text
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.services.analyzer import saved
from roottrading.services.analyzer.engine import DISABLED_PREFIX, EngineConfig
from roottrading.services.analyzer.workers import WorkerPool
from roottrading.store import CandleRepo, SafetyStateRepo, SignalRepo
from roottrading.strategies.params import ParamError


class StrategyUpdate(BaseModel):
    enabled: bool | None = None
    params: dict[str, Any] | None = None
    symbol: Text | None = None


class AnalyzerService(Service):
    name = "analyzer"
    description = "Runs strategies on candles and publishes signals."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.config = EngineConfig(
            interval=s.interval,
            strategies_dir=str(s.strategies_dir) if s.strategies_dir else None,
            enabled=s.strategies or None,
            consensus_k=s.analyzer_consensus,
            eval_limit_ms=s.analyzer_eval_limit_ms,
            eval_overruns=s.analyzer_eval_overruns,
            **ctx.extras.get("analyzer_config", {}),
        )
        self.pool = WorkerPool(self.config, s.analyzer_workers, worker_timeout_s=s.analyzer_worker_timeout_s)
        self.signals = SignalRepo(ctx.db)
        self.candles = CandleRepo(ctx.db)
        self.saved = SafetyStateRepo(ctx.db)
        self._saved_doc: dict[str, Any] = {}
        self.candles_seen = 0
        self.signals_sent = 0
        self.latencies_us: list[float] = []
        self.errors: list[str] = []
        #: strategy -> its latest failure {time, symbol, open_time, error, count}: health and GET /strategies
        self.strategy_errors: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        await self.pool.start()
        await self._restore()
        # exactly the candles the live window holds (the evaluation-window rule): after a restart the next
        # candle is evaluated on the same input as without the restart
        window = self.pool.window_size()
        for symbol in self.ctx.settings.symbols:
            history = await self.candles.range(symbol, self.ctx.settings.interval, limit=window)
            if history:
                n = await self.pool.warm(symbol, history)
                self.log.info("warmed from history", symbol=symbol, candles=n)

    async def _restore(self) -> None:
        """Replay the operator's saved strategy settings (saved.py) before the first candle."""
        self._saved_doc = await self.saved.get(saved.KEY) or {}
        for op, name, symbol, params in saved.ops(self._saved_doc):
            if name not in self.pool.registry.names():
                self.log.warning("saved setting of an unknown strategy skipped", strategy=name, symbol=symbol)
                continue
            try:
                await self.pool.control(op, name, symbol, params)
            except ParamError as exc:
                self.log.warning("saved parameters refused, skipped", strategy=name, symbol=symbol, error=str(exc))
        if self._saved_doc:
            self.log.info("strategy settings restored", strategies=len(self._saved_doc.get("strategies", {})))

    async def stop(self) -> None:
        await self.pool.stop()

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.candles_topic(s), self.on_candle) for s in self.ctx.settings.symbols]

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        if not c.closed or c.interval != self.ctx.settings.interval:
            return
        t0 = time.perf_counter()
        result = await self.pool.on_candle(c)
        self.candles_seen += 1
        for name, err in result.errors:
            await self._strategy_failed(name, err, c)
        published = {s.id for s in result.signals}
        for sig in result.evaluated:
            if sig.id not in published:
                await self.signals.add(sig)  # stored for transparency, not traded (consensus mode)
        for sig in result.signals:
            await self.signals.add(sig)
            await self.ctx.publish(m.SIGNALS, sig, key=sig.symbol, msg_id=sig.id)
            self.signals_sent += 1
        self.latencies_us = [*self.latencies_us, (time.perf_counter() - t0) * 1e6][-1000:]

    async def _strategy_failed(self, name: str, err: str, c: Candle) -> None:
        """Log with context, keep the latest error per strategy (health, GET /strategies), and mirror a
        disabling decided by the engine (worker processes) into the registry everyone reads."""
        self.log.warning("strategy failed", strategy=name, symbol=c.symbol, open_time=c.open_time, error=err)
        self.errors = [*self.errors, f"{name}: {err}"][-50:]
        prev = self.strategy_errors.get(name, {})
        self.strategy_errors[name] = {
            "time": self.ctx.clock.now_ms(),
            "symbol": c.symbol,
            "open_time": c.open_time,
            "error": err,
            "count": prev.get("count", 0) + 1,
        }
        if name and err.startswith(DISABLED_PREFIX) and self.pool.registry.is_enabled(name, c.symbol):
            await self.pool.control("disable", name, c.symbol)

    def describe_strategies(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The registry's description plus each strategy's latest error (None when it never failed)."""
        out: list[dict[str, Any]] = self.pool.registry.describe(symbol)
        for d in out:
            d["last_error"] = self.strategy_errors.get(d["name"])
        return out

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/strategies")
        async def strategies(symbol: str | None = None) -> list[dict[str, Any]]:
            """Every loaded strategy with its description, enabled flag, parameters (for `symbol` if given) and
            its latest evaluation error (`last_error`: time, symbol, open_time, error, count; or null)."""
            return self.describe_strategies(symbol)

        @r.put("/strategies/{name}", responses=error_responses(404, 422))
        async def update(name: str, body: StrategyUpdate) -> dict[str, Any]:
            """Enable/disable a strategy or set its parameters, for all symbols or one; no restart needed."""
            if name not in self.pool.registry.names():
                raise HTTPException(404, f"unknown strategy {name!r}")
            try:
                if body.params:
                    await self.pool.control("params", name, body.symbol, body.params)
                if body.enabled is not None:
                    await self.pool.control("enable" if body.enabled else "disable", name, body.symbol)
            except ParamError as exc:
                raise HTTPException(422, str(exc)) from None
            saved.record(self._saved_doc, name, body.symbol, body.enabled, body.params)
            await self.saved.put(saved.KEY, self._saved_doc, self.ctx.clock.now_ms())
            self.log.info(
                "strategy updated", strategy=name, symbol=body.symbol, enabled=body.enabled, params=body.params
            )
            desc = self.describe_strategies(body.symbol)
            return next(d for d in desc if d["name"] == name)

        @r.get("/signals")
        async def signals(
            symbol: str | None = None, strategy: str | None = None, limit: int = Query(50, ge=1, le=1000)
        ) -> list[dict[str, Any]]:
            return [m.to_builtins(s) for s in await self.signals.query(symbol=symbol, strategy=strategy, limit=limit)]

        return r

    async def health(self) -> HealthStatus:
        lat = sorted(self.latencies_us)
        p99 = lat[int(len(lat) * 0.99) - 1] if len(lat) >= 100 else (lat[-1] if lat else 0.0)
        recent = self.ctx.clock.now_ms() - 600_000
        failing = sorted(n for n, e in self.strategy_errors.items() if e["time"] >= recent)
        return HealthStatus(
            status="degraded" if failing else "ok",
            details={
                "candles": self.candles_seen,
                "signals": self.signals_sent,
                "workers": self.pool.n,
                "strategies": len(self.pool.registry.names()),
                "p99_ms": round(p99 / 1000, 3),
                "recent_errors": self.errors[-5:],
                "strategy_errors": failing,  # strategies that failed in the last 10 minutes
                "worker_restarts": self.pool.restarts,
            },
        )
