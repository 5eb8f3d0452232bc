"""Engine `replay`: the platform's own services on history. It is the definition of what the platform would
have done, so every other engine (`fast`) is judged against it.

What runs: analyzer, coordinator, risk, trader (on the simulated exchange), portfolio (pockets) and pnl,
hosted by the ordinary `Host`, exactly as `roottrading up` hosts them, with three things swapped:

- the clock is a `SimClock` moved to each candle's close time before that candle is published (market time
  is the only time: cooldowns, lock expiries, signal ages are all in market time);
- the bus is the synchronous memory bus (`memory://sync`): a publish delivers depth first, inside the call,
  so one candle's whole consequence chain (signal -> decision -> order -> fill -> cycle -> balances) is done
  before the next candle, and two runs are identical;
- the store is a fresh SQLite file in a temporary folder, thrown away after the result is read.

Periodic jobs (balances, reconciliation, reallocation, pnl snapshots, lock expiry) run on MARKET time: each
is called when the simulated clock passes its next due time, after the candle that crossed it. On wall time
they would fire at different candles in two runs (and every few candles on a slow machine), which would
break determinism. Candles of several symbols are merged by (close time, symbol).

The result's trades come from the stored trade cycles and their fills (capital.pnl.cycle_pnl: the same
arithmetic as the PnL tracker), the equity curve from the simulated exchange's account valued at the
candles' closes.

Public API (what the CLI, the API service, parity tests and the `fast` engine's tests use):
    run_replay(config, candles, *, progress=None, overrides=None, workdir=None) -> BacktestResult
        config     BacktestConfig (model.py): strategies, symbols, interval, balance, stake, params, settings
        candles    symbol -> closed candles, oldest first, one per open time (data.py: load_history + clean)
        progress   progress(done, total) after each candle time; raise KeyboardInterrupt in it to stop
        overrides  `config.settings` parsed (overrides.parse_overrides); parsed here when None
    merge_candles(candles) -> the publication order of a multi-symbol run
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.backtest.metrics import backtest_metrics
from roottrading.backtest.model import BacktestConfig, BacktestResult, Trade
from roottrading.backtest.overrides import PlatformOverrides, parse_overrides
from roottrading.backtest.universe import backtest_timeline, changed_message
from roottrading.bus.memory import MemoryBus
from roottrading.capital.pnl import cycle_pnl, split_symbol
from roottrading.clock import SimClock
from roottrading.domain import Candle
from roottrading.runtime import Host
from roottrading.runtime.service import Job, Service
from roottrading.store.repos_capital import TradeReadRepo

# What runs: the trading pipeline. The logger (event_logs), scheduler (health), gateway and dispatcher do
# not change a single trade; the stream/market services serve a dashboard that does not exist here.
SERVICES = ["portfolio", "pnl", "risk", "trader", "coordinator", "analyzer"]

Progress = Callable[[int, int], None]
"""progress(done, total): called after each candle time step with candles published so far. Raising
KeyboardInterrupt from it stops the run cleanly: the result then holds what was done (`interrupted`)."""

CandleSeries = Sequence[Candle]


@dataclass
class _SimJob:
    svc: Service
    job: Job
    due: int


class _ReplayHost(Host):
    """The ordinary host, but its periodic jobs are not scheduled on wall time: `run_replay` calls them on
    market time (see the module docstring)."""

    async def _run_job(self, svc: Service, job: Job) -> None:
        return None  # the wall-clock schedule is replaced by `market_time_jobs`

    def market_time_jobs(self, start_ms: int) -> list[_SimJob]:
        """Every service's jobs, first due at start (run_at_start) or one interval after it."""
        return [
            _SimJob(svc, job, start_ms + (0 if job.run_at_start else int(job.interval_s * 1000)))
            for svc in self.services.values()
            for job in svc.jobs()
        ]


def merge_candles(candles: Mapping[str, CandleSeries]) -> list[Candle]:
    """All symbols' candles in the order the gateway would publish them: by close time, then symbol."""
    out = [c for series in candles.values() for c in series]
    out.sort(key=lambda c: (c.close_time, c.symbol))
    return out


async def run_replay(
    config: BacktestConfig,
    candles: Mapping[str, CandleSeries],
    *,
    progress: Progress | None = None,
    overrides: PlatformOverrides | None = None,
    workdir: Path | None = None,
) -> BacktestResult:
    """Run `config` on `candles` (symbol -> closed candles, oldest first, already within start..end and
    checked by the data-quality gate) through the real services. `overrides`: `config.settings` parsed
    (parsed here when not given). `workdir`: where the temporary store goes (a fresh temp dir if None)."""
    ov = overrides if overrides is not None else parse_overrides(config.settings)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="rt-replay-") as tmp:
            return await _run(config, candles, ov, progress, Path(tmp))
    return await _run(config, candles, ov, progress, workdir)


async def _run(
    config: BacktestConfig,
    candles: Mapping[str, CandleSeries],
    ov: PlatformOverrides,
    progress: Progress | None,
    work: Path,
) -> BacktestResult:
    t0 = time.perf_counter()
    stream = merge_candles({s: candles.get(s, ()) for s in config.symbols})
    settings = ov.settings_for(
        config, database_url=f"sqlite+aiosqlite:///{work}/replay.db", data_dir=work, **ov.tuning_for(config, work)
    )
    wiring = ov.wiring_for(config, settings.quote_asset)
    start_ms = stream[0].open_time if stream else config.start_ms
    # the point-in-time universe (backtest/universe.py), announced at each refresh instant as live
    universe = deque(
        backtest_timeline(
            settings.universe_config, {s: candles.get(s, ()) for s in config.symbols}, config.start_ms, config.end_ms
        )
        if settings.universe_config is not None
        else ()
    )
    clock = SimClock(start_ms)
    host = _ReplayHost(settings, list(SERVICES), bus=MemoryBus(synchronous=True), clock=clock, wiring=wiring)
    await host.start()
    interrupted = False
    done = 0
    equity: list[tuple[int, float]] = []
    consumed: dict[str, int] = {}
    try:
        await _apply_params(host, config.params)
        trader: Any = host.services["trader"]
        engine = trader.exchange.engine
        quote = settings.quote_asset
        jobs = host.market_time_jobs(start_ms)
        await _run_due(jobs, start_ms)
        ctx = host.ctx
        topics = {s: m.candles_topic(s) for s in config.symbols}
        last_close: dict[str, float] = {}
        bases = {s: split_symbol(s, quote)[0] for s in config.symbols}
        total = len(stream)
        i = 0
        while i < total:
            t = stream[i].close_time
            if t > clock.now_ms():
                clock.set(t)
            while universe and universe[0].at <= t:  # a refresh instant passed: entries follow its members
                sel = universe.popleft()
                await ctx.publish(m.UNIVERSE_CHANGED, changed_message(sel, settings.symbols), key="universe")
            while i < total and stream[i].close_time == t:  # one time step: every symbol's candle at t
                c = stream[i]
                await ctx.publish(topics[c.symbol], c, key=c.symbol, msg_id=c.key)
                last_close[c.symbol] = c.close
                consumed[c.symbol] = consumed.get(c.symbol, 0) + 1
                i += 1
            await _settle(trader.exchange)
            await _run_due(jobs, t)
            await _settle(trader.exchange)
            equity.append((t, _account_value(engine, quote, bases, last_close)))
            done = i
            if progress is not None:
                try:
                    progress(done, total)
                except KeyboardInterrupt:
                    interrupted = True
                    break
        trades = await _trades(host, quote, last_close)
    finally:
        await host.stop()
    seconds = time.perf_counter() - t0
    metrics = backtest_metrics(
        config,
        trades,
        equity,
        {s: list(candles.get(s, ()))[: consumed.get(s, 0)] for s in config.symbols},
        taker_fee=ov.sim_config().taker_fee,
    )
    warnings = []
    if interrupted:
        warnings.append(f"interrupted after {done} of {len(stream)} candles: partial result")
    return BacktestResult(
        config=config,
        engine="replay",
        candles=done,
        seconds=seconds,
        trades=trades,
        equity=equity,
        metrics=metrics,
        warnings=warnings,
        interrupted=interrupted,
    )


async def _settle(exchange: Any) -> None:
    """Wait for the simulated exchange's update callbacks (fills, order updates) still running as tasks.

    Why: SimExchange hands each execution report to the trader in a task of its own (as a real exchange's
    user-data stream arrives on its own), so a fill may still be in flight when the candle's publish returns.
    Waiting for them before the next candle (and before the jobs and the equity reading) makes each time
    step complete, whatever the thread timing of the store's driver: the run is deterministic."""
    tasks = getattr(exchange, "_tasks", None)
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


async def _run_due(jobs: list[_SimJob], now: int) -> None:
    """Call every job whose market-time due time has come; next due one interval after now (a job that fell
    behind runs once, as the wall-clock scheduler does after a long handler)."""
    for j in jobs:
        if now >= j.due:
            await j.job.fn()
            j.due = now + max(1, int(j.job.interval_s * 1000))


def _account_value(engine: Any, quote: str, bases: Mapping[str, str], last: Mapping[str, float]) -> float:
    """The simulated account's value in the quote asset at the last closes (the quote and the traded bases:
    nothing else can be held, the account is funded in the quote only)."""
    q = engine.balance(quote)
    value = float(q.free + q.locked)
    for sym, base in bases.items():
        b = engine.balance(base)
        if b.free or b.locked:
            value += float(b.free + b.locked) * last.get(sym, 0.0)
    return value


async def _trades(host: Host, quote: str, last_close: Mapping[str, float]) -> list[Trade]:
    """Every cycle with an entry fill, from the store: realised PnL for closed ones, marked at the last close
    for those still open when the data ended (`exit_time` None)."""
    repo = TradeReadRepo(host.db)
    cycles = await repo.cycles()
    fills = await repo.fills_by_cycle(cycles)
    out: list[Trade] = []
    for c in cycles:
        cf = fills.get(c.id, [])
        if c.entry_price is None or not any(_side(f) == "BUY" for f in cf):
            continue  # never filled (rejected, cancelled): not a trade
        mark = Decimal(str(last_close[c.symbol])) if c.symbol in last_close else None
        p = cycle_pnl(c, cf, quote_asset=quote, mark=mark)
        buys = [int(f["time"]) for f in cf if _side(f) == "BUY"]
        sells = [int(f["time"]) for f in cf if _side(f) == "SELL"]
        closed = c.status.is_terminal
        out.append(
            Trade(
                symbol=c.symbol,
                strategy=c.strategy,
                entry_time=min(buys),
                entry_price=c.entry_price,
                exit_time=(max(sells) if sells else c.updated_at) if closed else None,
                exit_price=c.exit_price if closed else None,
                quantity=c.quantity,
                fees=p.fees,
                pnl=p.total,
                exit_reason=(c.close_reason or "closed") if closed else "end_of_data",
                entry_tag=c.entry_tag,
                exit_tag=c.exit_tag,
            )
        )
    out.sort(key=lambda t: (t.entry_time, t.symbol, t.strategy))
    return out


def _side(f: Mapping[str, Any]) -> str:
    return str(getattr(f["side"], "value", f["side"]))


async def _apply_params(host: Host, params: Mapping[str, Mapping[str, Any]]) -> None:
    """Strategy parameters through the analyzer's own control path (the one PUT /strategies/{name} uses), so
    a bad name or value is refused exactly as live."""
    if not params:
        return
    from roottrading.strategies.params import ParamError

    analyzer: Any = host.services["analyzer"]
    known = analyzer.pool.registry.names()
    for name, kv in params.items():
        if name not in known:
            raise ValueError(f"--param {name}.*: unknown or not enabled strategy; enabled: {', '.join(sorted(known))}")
        try:
            await analyzer.pool.control("params", name, None, dict(kv))
        except ParamError as exc:
            raise ValueError(f"--param {name}: {exc}") from None
