"""Engine `fast`: compiled signal scans plus a sparse simulation built from the platform's own pure parts.

What it does (see docs/backtesting.md, "The fast engine"):

- Signals: the analyzer's rule, exactly. A strategy is evaluated on the trailing window the analyzer gives it
  (AnalyzerEngine.lookback over the candles seen so far; the replay starts with empty windows). For
  `ema_cross` (without ride_or_react) a compiled kernel (kernels.py) recomputes every window's EMAs with
  TA-Lib's arithmetic and flags the candles where a cross may happen, and which side; every other strategy
  is a candidate on every candle. Either way the signal itself (side, strength, stops) comes from the
  strategy's own `latest_signal_bars` on that window (fast_signals.py): the kernel only decides where to
  look. A candidate is confirmed only when the simulation would act on a signal of a side it may give.
- Simulation: only the candles where something can happen are visited (a signal, or a bar that may meet an
  open cycle's stop/target, found by a compiled scan). On those, the real pieces run: the coordinator's
  filters (filters.py) and sizing (sizing.size_entry), the trader's exit walk (position.walk_exits) and
  simulated-exit choice (stops.sim_exit_order), the simulated exchange itself (SimEngine: fills, slippage,
  fees, rounding), and the PnL tracker's arithmetic (capital.pnl.cycle_pnl). Between visits nothing rests on
  the exchange, so feeding it only those candles (after the previous close as its last price) is the same.

Sizing: `--stake`, or risk % of the equity in the trader's last balances report (after each fill and at the
market-time balances job) with the risk manager's own size caps (RiskEngine._size) on the flat book. The
loss-streak lock is kept as the risk service keeps it (set on the losing close, lifted at since + cooldown
in market time, streak re-armed).

Modules: this one holds the run and its loop; fast_signals.py the signals, fast_exchange.py the simulated
exchange's side (feeding candles, the trader's exits), fast_gates.py the risk gates, fast_results.py the
trades and the equity curve. FastRun mixes the last three in (one object's state, split by job).

What it does not model (the run raises EngineUnavailable and the runner hands it to `replay`, saying why):
several symbols or strategies in one run, trailing stops, a volume cap or latency, multiple cycles,
consensus; and any risk rule or pocket limit that might bind: each entry checks, with a margin, that none
could have acted (pocket, daily loss, drawdown, volatility, order rate, hours, blacklist); the first entry where one
could raises, so a fast result is never a silently different answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np

from roottrading.backtest.fast_exchange import ExchangeFeed
from roottrading.backtest.fast_gates import MARGIN, Q8, RiskGates
from roottrading.backtest.fast_gates import OpenCycle as _Open
from roottrading.backtest.fast_results import Results
from roottrading.backtest.gcfreeze import frozen_heap
from roottrading.backtest.metrics import backtest_metrics
from roottrading.backtest.model import BacktestConfig, BacktestResult, EngineUnavailable, Trade
from roottrading.backtest.overrides import PlatformOverrides, parse_overrides
from roottrading.capital.pnl import split_symbol
from roottrading.domain import Candle, CycleStatus, OrderType, Side, Signal, TradeCycle
from roottrading.domain.money import to_decimal
from roottrading.exchange.sim import SimEngine
from roottrading.services.coordinator import filters as f
from roottrading.services.coordinator.sizing import SizeRequest, reservation_amount, reserve_multiplier, size_entry
from roottrading.services.trader.exchange_factory import demo_rules
from roottrading.services.trader.position import apply_fills, position

CHUNK_MIN = 2_000  # candles per progress step at least (a step costs a little: numpy slicing, a loop yield)


async def run_fast(
    config: BacktestConfig,
    candles: Mapping[str, Sequence[Candle]],
    *,
    progress: Any = None,
    overrides: PlatformOverrides | None = None,
) -> BacktestResult:
    """Same contract as run_replay; raises EngineUnavailable (with the reason) for what it does not model."""
    ov = overrides if overrides is not None else parse_overrides(config.settings)
    with frozen_heap():  # the collector skips the candles (gcfreeze.py)
        return await FastRun(config, candles, ov).run(progress)


class FastRun(ExchangeFeed, RiskGates, Results):
    def __init__(self, config: BacktestConfig, candles: Mapping[str, Sequence[Candle]], ov: PlatformOverrides):
        self.config, self.ov = config, ov
        if len(config.symbols) != 1 or len(config.strategies) != 1:
            raise EngineUnavailable("fast models one symbol and one strategy per run")
        self.symbol, self.name = config.symbols[0], config.strategies[0]
        self.series = list(candles.get(self.symbol, ()))
        self.sim = ov.sim_config()
        if self.sim.volume_cap is not None or self.sim.latency_ms:
            raise EngineUnavailable("fast does not model sim.volume_cap or sim.latency_ms")
        self.cfg = ov.coordinator_config(config)
        if self.cfg.allow_multiple_cycles:
            raise EngineUnavailable("fast does not model coordinator.allow_multiple_cycles")
        self.settings = ov.settings_for(config, database_url="sqlite://", data_dir="/nonexistent")
        if self.settings.analyzer_consensus > 1:
            raise EngineUnavailable("fast does not model analyzer consensus")
        if self.settings.universe_config is not None:
            raise EngineUnavailable("fast does not model a pair universe (--universe / universe_config)")
        from roottrading.risk.rules import parse_rules

        self.rules_set = parse_rules(ov.rules_text(), "fast").rules
        self._check_static_rules()
        from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig

        analyzer = AnalyzerEngine(
            EngineConfig(
                interval=config.interval,
                strategies_dir=str(self.settings.strategies_dir) if self.settings.strategies_dir else None,
                enabled=[self.name],
                params=dict(config.params),
            )
        )
        if self.name not in analyzer.registry.names():
            raise EngineUnavailable(f"unknown or not enabled strategy {self.name!r}")
        self.strategy: Any = analyzer.registry.get(self.name)
        if getattr(self.strategy, "trailing_pct", 0):
            raise EngineUnavailable("fast does not model trailing stops yet")
        if getattr(self.strategy, "informative", ()):
            raise EngineUnavailable("fast does not model informative pairs (the strategy declares `informative`)")
        from roottrading.strategies.callbacks import overrides_callbacks

        if hooks := overrides_callbacks(self.strategy):
            raise EngineUnavailable(f"fast does not model strategy callbacks ({', '.join(hooks)}): replay runs them")
        self.lookback = min(analyzer.lookback(self.strategy), analyzer.window_size())
        self.quote = self.settings.quote_asset
        self.base, _ = split_symbol(self.symbol, self.quote)
        # the replay's account holds the quote asset only (overrides._funding), which the trader prices: the
        # equity in its balances reports (what sizing and the risk manager read) is known exactly

    # ------------------------------------------------------------------ static preconditions
    def _check_static_rules(self) -> None:
        r = self.rules_set
        if r.trading_hours.enabled:
            raise EngineUnavailable("fast does not model risk.trading_hours")
        if r.symbol_blacklist.enabled and self.config.symbols[0].upper() in {
            s.upper() for s in r.symbol_blacklist.symbols
        }:
            raise EngineUnavailable("the symbol is blacklisted by risk.symbol_blacklist")
        if r.max_orders_per_minute.enabled and r.max_orders_per_minute.limit < 3:
            raise EngineUnavailable("fast does not model risk.max_orders_per_minute below 3")
        if r.max_open_cycles.enabled and r.max_open_cycles.limit < 1:
            raise EngineUnavailable("risk.max_open_cycles.limit 0 refuses every entry")
        if r.max_position_size.enabled and r.max_position_size.per_symbol_quote:
            raise EngineUnavailable("fast does not model risk.max_position_size.per_symbol_quote")
        pockets = dict(self.settings.pocket_config)
        if self.cfg.pocket not in pockets:
            raise EngineUnavailable(f"pocket {self.cfg.pocket!r} not in pocket_config")

    # ------------------------------------------------------------------ signals
    def _arrays(self) -> None:
        """The candle arrays and the strategy's candidate candles (fast_signals.SignalSource)."""
        from roottrading.backtest.fast_signals import SignalSource

        self.src = SignalSource(self.series, self.strategy, self.lookback, self.symbol, self.config.interval)
        self.open_time, self.h, self.lo, self.c = self.src.open_time, self.src.h, self.src.lo, self.src.c

    def signals(self, lo: int = 0, hi: int | None = None) -> dict[int, Signal]:
        """The strategy's signals at the candles in [lo, hi) (all when not given), either side."""
        if not hasattr(self, "src"):
            self._arrays()
        return self.src.in_range(lo, hi)

    # ------------------------------------------------------------------ the run
    async def run(self, progress: Any = None) -> BacktestResult:
        """Signals and simulation in chunks of candles, so that a progress callback sees the run advance and can
        stop it (KeyboardInterrupt from `progress`, as run_replay): the result then covers the candles done.
        Chunking changes nothing: a window only looks back, and the simulation of [a, b) needs only the
        signals before b (an exit scan that finds nothing before b resumes at b)."""
        import asyncio

        t0 = time.perf_counter()
        self._arrays()
        n = len(self.series)
        self._start_sim()
        # chunks: ~1/200 of the run (a progress step), no smaller than what makes the overhead negligible
        step = max(CHUNK_MIN, n // 200)
        done, interrupted = 0, False
        while done < n:
            b = min(n, done + step)
            self._simulate_until(b)
            done = b
            if progress is not None:
                try:
                    progress(done, n)
                except KeyboardInterrupt:
                    interrupted = True
                    break
                await asyncio.sleep(0)  # let the event loop run a Ctrl-C handler (the CLI's SIGINT callback)
        trades = self.trades
        if self.cur is not None and done:
            trades.append(self._trade(self.cur, open_at=done - 1))
        seconds = time.perf_counter() - t0
        equity = self._equity_curve(trades, done)
        metrics = backtest_metrics(
            self.config,
            trades,
            equity,
            {self.symbol: self.series[:done]},
            taker_fee=self.sim.taker_fee,
        )
        warnings = [f"interrupted after {done} of {n} candles: partial result"] if interrupted else []
        return BacktestResult(
            config=self.config,
            engine="fast",
            candles=done,
            seconds=seconds,
            trades=trades,
            equity=equity,
            metrics=metrics,
            warnings=warnings,
            interrupted=interrupted,
        )

    def _start_sim(self) -> None:
        n = len(self.series)
        rules = demo_rules([self.symbol], None, self.quote)
        self.rules = rules[self.symbol]
        self.engine = SimEngine(
            rules, self.sim, {self.quote: self.config.balance}, start_time=self.series[0].open_time if n else 0
        )
        self.atr_pct = self._atr_pct()
        self.equity_low = self.config.balance
        # the equity the coordinator sizes from: the trader's last balances report (see _report_equity)
        from roottrading.backtest.overrides import JOB_DEFAULTS

        period_s = float(self.ov.jobs.get("trader_balances_s", JOB_DEFAULTS["trader_balances_s"]))
        self.job_ms = max(1, int(period_s * 1000))
        self.job_due = (self.series[0].open_time if n else 0) + self.job_ms
        self.job_next = 0  # first candle whose step has not been checked for a due balances job
        self.reported = self.config.balance  # the job's run at the start: the quote balance alone
        self.close_times = [c.close_time for c in self.series]
        self.px_now = Decimal(0)  # the trader's last price when a fill's balances are reported
        self.day_high: dict[int, Decimal] = {}
        self.day_low: dict[int, Decimal] = {}
        self.daily_breach = False  # some day's range reached risk.daily_loss_limit's margin (see _after_close)
        self.peak = self.config.balance
        self.streak = 0
        self.locked = False  # the strategy_loss_streak lock (disable_strategy or pause: one strategy, same effect)
        self.lock_until: int | None = None
        self.last_entry: int | None = None
        self.fed = -1  # last candle fed to the simulated exchange
        self.next_trade_id = 0
        self.step_time = self.series[0].close_time if n else 0
        self.trades: list[Trade] = []
        self.cur: _Open | None = None
        self.pos = 0  # first candle not simulated yet

    def _simulate_until(self, n: int) -> None:
        """Simulate candles [self.pos, n) (see the module docstring). Signals are asked for lazily, at the
        strategy's candidate candles (fast_signals), and only when one the simulation would act on may fire
        there: a BUY while flat (or while the cycle may close on that very candle, before the signal is
        read), a SELL while a cycle is active. A candle whose signal is not asked for is not visited unless
        an exit may happen on it: the signal would have been ignored, and skipping a candle changes nothing."""
        from roottrading.backtest.kernels import MAY_BUY, MAY_SELL

        trades, cur, src = self.trades, self.cur, self.src
        get: Callable[[int], Signal | None]
        if src.sided:
            lo, hi = (int(x) for x in np.searchsorted(src.index, [self.pos, n]))
            cand, sides, get = src.index[lo:hi].tolist(), src.sides[lo:hi].tolist(), src.at
        else:  # every candle a candidate, either side: confirm them all at once and visit only the signals
            sigs = src.in_range(self.pos, n)
            cand, sides, get = list(sigs), [MAY_BUY | MAY_SELL] * len(sigs), sigs.__getitem__
        k, m = 0, len(cand)
        i = self.pos
        exit_j = -1  # the open cycle's first exit candidate at or after i (scanned up to n), -1: scan again
        while i < n:
            nxt_sig = cand[k] if k < m else n
            exit_here = False
            if cur is None:
                if nxt_sig >= n:
                    break
                i = nxt_sig
            else:
                if exit_j < i:  # the levels are fixed for a cycle: a scan stays valid until passed
                    exit_j = self._next_exit_candidate(cur, i, n)
                i = min(exit_j, nxt_sig)
                if i >= n:
                    break
                exit_here = exit_j == i
            s: Signal | None = None
            if k < m and cand[k] == i:
                may = sides[k]
                k += 1
                active = cur is not None and cur.cycle.status is CycleStatus.ACTIVE
                want = (MAY_BUY if cur is None or exit_here else 0) | (MAY_SELL if active else 0)
                if may & want:
                    s = get(i)
            if s is None and not exit_here:
                i += 1
                continue
            # one time step at candle i: the trader's exits (and the exchange's fill), then the signal
            if cur is not None and cur.index < i:
                self._feed_until(i, cur)
                if cur.cycle.status is CycleStatus.COMPLETED:
                    trades.append(self._trade(cur))
                    cur = None
            else:
                self._feed_until(i, None)
            if s is not None:
                if s.side is Side.SELL:
                    if cur is not None and cur.cycle.status is CycleStatus.ACTIVE:
                        cur.cycle.exit_tag = s.tag
                        self._market_exit(cur, "signal", i)
                        trades.append(self._trade(cur))
                        cur = None
                elif cur is None:
                    cur = self._entry(s, i)
                    exit_j = -1
            i += 1
        self.cur = cur
        self.pos = n

    # ------------------------------------------------------------------ entries
    def _entry(self, s: Signal, i: int) -> _Open | None:
        now = self.series[i].close_time
        cfg = self.cfg
        for why in (
            f.age_filter(s, cfg, now),
            f.strength_filter(s, cfg),
            f.regime_filter(s, cfg),
            f.cooldown_filter(s, cfg, self.last_entry),
            f.open_cycle_filter(s, cfg, 0),
        ):
            if why:
                return None
        if self._locked(now):
            return None
        price = to_decimal(s.price)
        stop = None if s.stop_loss is None else to_decimal(s.stop_loss).quantize(Q8, rounding=ROUND_DOWN)
        self._check_risk(i, price)
        dust_value = self._held_dust() * to_decimal(self.series[i].close)
        equity_low = min(self.equity_low, self._quote_total() + dust_value)
        self._jobs_until(i)
        pocket_pct = Decimal(dict(self.settings.pocket_config)[cfg.pocket]) / 100
        sizing = size_entry(
            SizeRequest(
                # risk sizing reads the coordinator's equity exactly (the trader's last report); a stake does
                # not size from it, and the lowest value so far is what the cap checks below need
                equity=self.reported if cfg.stake_quote is None else equity_low,
                price=price,
                stop=stop,
                risk_pct=cfg.risk_pct,
                default_stop_pct=cfg.default_stop_pct,
                available=equity_low * pocket_pct * MARGIN,  # a lower bound: checked below not to bind
                fee_buffer_pct=cfg.fee_buffer_pct,
                slippage_buffer_pct=cfg.slippage_buffer_pct,
                max_quantity=cfg.max_quantity.get(self.symbol.upper()),
                max_notional=cfg.max_notional.get(self.symbol.upper()),
                stake=cfg.stake_quote,
            ),
            self.rules.round_quantity,
            Decimal(self.rules.min_notional),
        )
        if not sizing.ok:
            raise EngineUnavailable(
                f"sizing at candle {i} refused or bound by a limit not modelled: {sizing.reject_reason}"
            )
        qty = sizing.quantity
        mult = reserve_multiplier(cfg.fee_buffer_pct, cfg.slippage_buffer_pct)
        # the risk manager's size caps, exactly (stake or risk sizing)
        shrunk = self._risk_shrink(i, s, price, qty, "pocket" in sizing.capped_by)
        if shrunk is None:
            return None
        qty = shrunk
        if reservation_amount(qty, price, mult) >= equity_low * pocket_pct * MARGIN:
            raise EngineUnavailable(f"the pocket could refuse the reservation at candle {i} (not modelled)")
        from roottrading import ids

        req_id = ids.request_id_for_signal(s.id)
        cid = ids.cycle_id(req_id)
        coid = ids.client_order_id(req_id, "entry")
        cyc = TradeCycle(
            id=cid,
            symbol=self.symbol,
            strategy=self.name,
            side=Side.BUY,
            status=CycleStatus.INITIATING,
            created_at=now,
            updated_at=now,
            entry_order_id=coid,
            stop_loss=sizing.stop,
            take_profit=None if s.take_profit is None else to_decimal(s.take_profit).quantize(Q8, rounding=ROUND_DOWN),
            trailing_pct=None,
            signal_id=s.id,
            entry_tag=s.tag,
        )
        cur = _Open(cyc, i)
        q = self.rules.round_quantity(qty, market=True)
        self.engine.place_order(self.symbol, Side.BUY, OrderType.MARKET, f"{cid}:entry", quantity=q)
        self._collect(cur)
        if position(cur.fills, self.base).bought != q:
            raise EngineUnavailable(f"the entry at candle {i} did not fill completely (not modelled)")
        cyc.status = CycleStatus.ACTIVE
        apply_fills(cyc, cur.fills, self.base, self.quote)
        self.last_entry = s.time
        return cur

    def _quote_total(self) -> Decimal:
        b = self.engine.balance(self.quote)
        return b.free + b.locked

    def _held_dust(self) -> Decimal:
        b = self.engine.balances().get(self.base)
        return (b.free + b.locked) if b is not None else Decimal(0)
