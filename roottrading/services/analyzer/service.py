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
from roottrading.domain import Candle, Side, Signal
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import Text
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.services.analyzer import saved
from roottrading.services.analyzer.control import StrategyControlRelay
from roottrading.services.analyzer.engine import DISABLED_PREFIX, EngineConfig
from roottrading.services.analyzer.workers import WorkerPool
from roottrading.store import CandleRepo, SafetyStateRepo, SignalRepo, StrategyStateRepo
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
            **(ctx.wiring.analyzer_config or {}),
        )
        self.pool = WorkerPool(self.config, s.analyzer_workers, worker_timeout_s=s.analyzer_worker_timeout_s)
        self.signals = SignalRepo(ctx.db)
        self.candles = CandleRepo(ctx.db)
        self.states = StrategyStateRepo(ctx.db)
        self.saved = SafetyStateRepo(ctx.db)
        self._saved_doc: dict[str, Any] = {}
        self.candles_seen = 0
        self.signals_sent = 0
        self.latencies_us: list[float] = []
        self.errors: list[str] = []
        #: strategy -> its latest failure {time, symbol, open_time, error, count}: health and GET /strategies
        self.strategy_errors: dict[str, dict[str, Any]] = {}
        #: symbols whose window holds their history (warmed at start, or before a runtime-added pair's first
        #: candle is evaluated): a pair not in it is warmed from the store before its first candle is evaluated
        self.warmed: set[str] = set()
        #: the universe's members (UNIVERSE_CONFIG set): a pair outside it may still exit (SELL) but not enter
        self.members: set[str] | None = None
        self.inform_symbols: set[str] = set()
        self.relay = StrategyControlRelay(self)  # strategy changes reach every analyzer instance (control.py)

    async def start(self) -> None:
        await self.pool.start()
        docs = await self.states.all()  # each strategy's own state continues where it was (strategies/state.py)
        if docs:
            await self.pool.restore_states(docs)
            self.log.info("strategy states restored", count=len(docs))
        self.inform_symbols = self.pool.inform_symbols()
        for symbol in sorted(self.inform_symbols):  # informative pairs: their history, then their live candles
            history = await self.candles.range(symbol, self.ctx.settings.interval, limit=self.pool.inform_size())
            self.pool.inform(history)
            self.log.info("informative history loaded", symbol=symbol, candles=len(history))
        await self._restore()
        # exactly the candles the live window holds (the evaluation-window rule): after a restart the next
        # candle is evaluated on the same input as without the restart
        window = self.pool.window_size()
        for symbol in self.ctx.settings.symbols:
            history = await self.candles.range(symbol, self.ctx.settings.interval, limit=window)
            if history:
                n = await self.pool.warm(symbol, history)
                self.log.info("warmed from history", symbol=symbol, candles=n)
            self.warmed.add(symbol)

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
        # informative symbols that are not traded are consumed too (kept for the strategies, not evaluated);
        # the market service must stream them (add them to SYMBOLS' market feed), or they stay empty
        extra = sorted(self.inform_symbols - set(self.ctx.settings.symbols))
        subs = [Consumes(m.candles_topic(s), self.on_candle) for s in [*self.ctx.settings.symbols, *extra]]
        if self.ctx.settings.universe_config is not None:
            subs.append(Consumes(m.UNIVERSE_CHANGED, self.on_universe))
        return [*subs, Consumes(m.STRATEGY_CONTROL, self.relay.on_control, broadcast=True)]

    async def on_universe(self, msg: m.Message) -> None:
        self.members = set(msg.payload.members)

    async def _warm_new(self, c: Candle) -> None:
        """A pair that joined at runtime: load its stored history (the gateway stores it before streaming the
        pair) into the window before its first live candle is evaluated, so it signals on a full window."""
        window = self.pool.window_size()
        history = await self.candles.range(c.symbol, c.interval, end=c.open_time - 1, limit=window)
        n = await self.pool.warm(c.symbol, history) if history else 0
        self.warmed.add(c.symbol)
        self.log.info("new pair warmed from history", symbol=c.symbol, candles=n)

    def _may_publish(self, sig: Signal) -> bool:
        """Entries only on members of the universe; exits (SELL) always: an open cycle is managed to its end."""
        return self.members is None or sig.symbol in self.members or sig.side is not Side.BUY

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        if not c.closed or c.interval != self.ctx.settings.interval:
            return
        if c.symbol in self.inform_symbols:
            self.pool.inform([c])
        if c.symbol not in self.ctx.settings.symbols:
            return  # informative only
        if c.symbol not in self.warmed:
            await self._warm_new(c)
        t0 = time.perf_counter()
        result = await self.pool.on_candle(c)
        self.candles_seen += 1
        # before the signals: a redelivery (if this write fails) gets the same state changes again
        await self.states.save(result.states, self.ctx.clock.now_ms())
        for name, err in result.errors:
            await self._strategy_failed(name, err, c)
        allowed = [s for s in result.signals if self._may_publish(s)]
        published = {s.id for s in allowed}
        unique = {x.id: x for x in [*result.evaluated, *result.signals]}.values()
        # every signal of the candle stored in one transaction before any is published; the ones only
        # evaluated are stored for transparency, not traded (consensus mode; out of the universe)
        await self.signals.add_many([*(s for s in unique if s.id not in published), *allowed])
        for sig in allowed:
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
                await self.relay.apply(name, body.symbol, body.enabled, body.params)
            except ParamError as exc:
                raise HTTPException(422, str(exc)) from None
            saved.record(self._saved_doc, name, body.symbol, body.enabled, body.params)
            await self.saved.put(saved.KEY, self._saved_doc, self.ctx.clock.now_ms())
            await self.relay.tell_others(name, body.symbol, body.enabled, body.params)  # every other analyzer
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
