"""Trader service (reference port 5002): order requests -> trade cycles on the Exchange port.

The state machine lives in core.TraderCore (docs/trade-cycle.md); this class wires it to the bus (order
requests, market data, risk events), periodic jobs (reconciliation, balances) and HTTP (api.py).
Exits (stop-loss, take-profit, trailing stop) are decided locally from the candles/ticks consumed here,
walked along the simulator's intra-bar path (candle_path); with an in-process simulator they are placed on it
before the bar is fed, so it fills them at their level (core.TraderCore.on_price, docs/trade-cycle.md).

The trader's own safety state (paused, and by whom; killed; paused strategies) is stored (safety_state, key
"trader") when it changes and restored before the trader takes any request: a restart never resumes trading.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from roottrading import messages as m
from roottrading.bus.ownership import ownership_for
from roottrading.domain import Candle, OrderRequest, Tick
from roottrading.domain.money import to_decimal
from roottrading.exchange.sim.market import candle_path
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.services.trader.core import TraderCore
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.services.trader.exchange_factory import create_exchange
from roottrading.services.trader.exchange_stops import ExchangeStopsConfig
from roottrading.services.trader.manual import ManualEntryClient
from roottrading.services.trader.ownership import TakeOver
from roottrading.services.trader.paper_account import PaperAccount
from roottrading.store import CycleRepo, DecisionRepo, OrderRepo, SafetyStateRepo
from roottrading.strategies.callbacks import callback_instances

SAFETY_KEY = "trader"  # this service's document in safety_state


class TraderService(Service):
    name = "trader"
    description = "Executes order requests and manages trade cycles."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.exchange, self.feed_market = create_exchange(ctx)
        self.orders = OrderRepo(ctx.db, demo=ctx.settings.trading_mode != "live")
        self.cycles = CycleRepo(ctx.db)
        self.manual = ManualEntryClient(ctx)  # manual entries pass the coordinator's money rules (api.py)
        self.core = TraderCore(
            self.exchange,
            self.orders,
            self.cycles,
            ctx.publish,
            ctx.clock,
            quote_asset=ctx.settings.quote_asset,
            resend_window_ms=ctx.settings.trader_resend_window_ms,
        )
        # the strategies' position callbacks (custom stop/exit, confirm_exit, on_fill): the coordinator's
        # instances in one process, the same strategies loaded here in split mode (cycle_hooks.py)
        self.core.hooks = CycleHooks(self._callback_strategies, adjustments=self.core._adjustments_done)
        self.core.funder = self.manual  # position_adjustment's additions are funded by the coordinator
        self.core.decisions = DecisionRepo(ctx.db)
        self.core.xstops = ExchangeStopsConfig(
            ctx.settings.trader_exchange_stops,
            int(ctx.settings.trader_exchange_stop_move_s * 1000),
            ctx.settings.trader_exchange_stop_limit_pct,
        )
        # the symbols this instance manages: those of the order-request partitions it holds (ownership.py)
        self.takeover = TakeOver(self.core, ownership_for(ctx.bus, m.ORDER_REQUESTS, self.name))
        if not self.feed_market:  # a remote exchange: account queries cost request weight
            self.core.balances_min_interval_s = ctx.settings.trader_balances_min_s
        self.reconcile_s = ctx.settings.trader_reconcile_s
        self.balances_s = ctx.settings.trader_balances_s
        self._last_candle: dict[str, int] = {}
        self._last_tick: dict[str, int] = {}
        self.started = False
        # True while new entries are paused by the risk manager's rule and not by a user: an automatic end of
        # that pause (cooldown over) must never lift a pause the user asked for.
        self.risk_paused = False
        self.safety = SafetyStateRepo(ctx.db)
        # the demo simulator this service built: a pair that joins the pair universe is listed on it at its
        # first candle, tick or order (docs/universe.md); an injected or live exchange lists its own markets
        self._demo_sim = ctx.wiring.exchange is None and self.feed_market

    def _callback_strategies(self) -> dict[str, Any]:
        """The strategy instances whose callbacks the trader calls (loaded on first use)."""
        hooks = getattr(self.ctx.peer("coordinator"), "hooks", None)
        if hooks is not None:
            return dict(hooks.instances())
        folder = self.ctx.settings.strategies_dir
        return callback_instances(str(folder) if folder else None)

    # the old demo trader's attribute names, kept for callers and tests
    @property
    def paused(self) -> bool:
        return self.core.paused

    @property
    def last_price(self) -> dict[str, Any]:
        return self.core.last_price

    def consumes(self) -> list[Consumes]:
        # Requests are shared out by symbol (the partition's holder owns the symbol); control events and prices
        # reach EVERY instance (broadcast): each pauses itself, and watches the stops of the cycles it owns.
        subs = [Consumes(m.ORDER_REQUESTS, self.on_request), Consumes(m.RISK_EVENTS, self.on_risk, broadcast=True)]
        for s in self.ctx.settings.symbols:
            subs += [
                Consumes(m.candles_topic(s), self.on_candle, broadcast=True),
                Consumes(m.ticks_topic(s), self.on_tick, broadcast=True),
            ]
        return subs

    def jobs(self) -> list[Job]:
        return [
            Job("reconcile", self.reconcile_s, self.core.reconcile),
            Job("balances", self.balances_s, self.core.publish_balances, run_at_start=True),
        ]

    def safety_doc(self) -> dict[str, Any]:
        c = self.core
        return {
            "paused": c.paused,
            "paused_by": None if not c.paused else ("risk" if self.risk_paused else "user"),
            "killed": c.killed,
            "paused_strategies": sorted(c.paused_strategies),
        }

    async def save_safety(self) -> None:
        """Store the pause / kill state now. A store failure is an alert; the change itself stands."""
        try:
            await self.safety.put(SAFETY_KEY, self.safety_doc(), self.ctx.clock.now_ms())
        except (SQLAlchemyError, OSError) as exc:
            self.log.critical("trader safety state NOT stored; a restart would lose it", error=repr(exc))

    async def _restore_safety(self) -> None:
        doc = await self.safety.get(SAFETY_KEY)
        if doc is None:
            return
        c = self.core
        c.paused, c.killed = bool(doc.get("paused")), bool(doc.get("killed"))
        c.paused_strategies = set(doc.get("paused_strategies") or [])
        self.risk_paused = c.paused and doc.get("paused_by") == "risk"
        if c.paused or c.killed or c.paused_strategies:
            self.log.warning(
                "trader safety state restored: entries stay stopped until a user resumes",
                paused=c.paused,
                paused_by=doc.get("paused_by"),
                killed=c.killed,
                paused_strategies=sorted(c.paused_strategies),
            )

    async def start(self) -> None:
        await self._restore_safety()  # before anything can open a position
        if isinstance(self.exchange, PaperAccount):
            await self.exchange.load()  # the stored paper account, before the trader reconciles against it
        await self.core.start()
        self.started = True
        self.log.info(
            "trader started",
            symbols=sorted(self.core.rules),
            open_cycles=len(self.core.open),
            exchange=type(self.exchange).__name__,
            feeds_market=self.feed_market,
        )

    async def stop(self) -> None:
        await self.core.stop()
        if self.ctx.wiring.exchange is None:  # ours (demo sim or live adapter): close its connections
            await self.exchange.close()

    # ------------------------------------------------------------------ bus handlers
    def _list_in_demo(self, symbol: str) -> None:
        if not self._demo_sim:
            return
        engine = self.exchange.engine  # read each time: a paper account replaces it when it restores
        if symbol not in engine.books:
            from roottrading.services.trader.exchange_factory import demo_rules

            s = self.ctx.settings
            rules = demo_rules([symbol], self.ctx.wiring.demo_prices, s.quote_asset)[symbol]
            engine.list_symbol(rules)
            # the trader reads its rules once at start: without them here, every entry on the new pair failed
            # as an "unknown symbol" although the simulator had listed it
            self.core.rules.setdefault(symbol, rules)
            self.log.info("symbol listed on the demo simulator", symbol=symbol)

    async def on_request(self, msg: m.Message) -> None:
        req: OrderRequest = msg.payload
        self._list_in_demo(req.symbol)
        await self.core.handle_request(req)

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self._list_in_demo(c.symbol)
        if not c.closed:
            await self.core.on_price(c.symbol, [to_decimal(c.close)])
            return
        if c.open_time <= self._last_candle.get(c.symbol, -1):
            return  # redelivered or stale: the simulator must never see the same bar twice
        self._last_candle[c.symbol] = c.open_time
        feed = None
        if self.feed_market:

            async def feed() -> None:
                await self.exchange.on_candle(c)

        await self.core.on_price(c.symbol, candle_path(c), feed)

    async def on_tick(self, msg: m.Message) -> None:
        t: Tick = msg.payload
        self._list_in_demo(t.symbol)
        if t.time < self._last_tick.get(t.symbol, -1):
            return
        self._last_tick[t.symbol] = t.time
        feed = None
        if self.feed_market:

            async def feed() -> None:
                await self.exchange.on_tick(t)

        await self.core.on_price(t.symbol, [to_decimal(t.price)], feed)

    async def on_risk(self, msg: m.Message) -> None:
        ev: m.RiskEvent = msg.payload
        if ev.action == "kill_switch":
            self.core.paused = self.core.killed = True
            await self.save_safety()  # stored before the positions are closed
            await self.core.kill_switch(f"{ev.rule}: {ev.message}")
        elif ev.action == "pause":
            if not ev.strategy and ev.rule == "user":  # a user's, from another instance's route: no cooldown lifts it
                self.risk_paused = False
            elif not ev.strategy and not self.core.paused:
                self.risk_paused = True
            self.core.pause(ev.strategy)
            await self.save_safety()
            self.log.warning("entries paused by risk manager", rule=ev.rule, strategy=ev.strategy)
        elif ev.action == "disable_strategy" and ev.strategy:
            self.core.pause(ev.strategy)
            await self.save_safety()
        elif ev.action == "resume":
            if ev.strategy:
                self.core.resume(ev.strategy)
            elif ev.rule == "resume":  # a user's resume on the risk manager: everything, as the user asked
                self.core.resume()
                self.risk_paused = False
            elif self.risk_paused and not self.core.killed:  # a rule's cooldown is over: only its own pause
                self.core.paused = self.risk_paused = False
            else:
                self.log.info("risk pause over; trading stays paused by the user", rule=ev.rule)
                return
            await self.save_safety()
            self.log.info("entries resumed by risk manager", rule=ev.rule, strategy=ev.strategy)

    # ------------------------------------------------------------------ HTTP + health
    def router(self) -> APIRouter:
        from roottrading.services.trader.api import build_router

        return build_router(self)

    async def health(self) -> HealthStatus:
        c = self.core
        return HealthStatus(
            details={
                "paused": c.paused,
                "killed": c.killed,
                "paused_strategies": sorted(c.paused_strategies),
                "open_cycles": len(c.open),
                "exchange": type(self.exchange).__name__,
                "symbols": sorted(c.rules),
                "filled": c.stats["fills"],
                **c.stats,
                "callback_failures": dict(c.hooks.failures),  # strategy -> position callbacks that raised
                **self.takeover.health(),
            }
        )
