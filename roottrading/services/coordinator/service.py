"""Coordinator service (reference port 5003): signal -> filters -> size -> risk check -> reserve -> order.

Entries (BUY): age (a stale backlog never trades) / strength / regime / cooldown / one-open-cycle filters,
size from equity and per-trade risk, the risk manager's verdict (may shrink), a pocket reservation (id derived
from the signal id), then an OrderRequest on `order.requests`. Exits (SELL with an open cycle): an exit request for the cycle's quantity;
no entry filter, no risk gate. Each dependency (risk, ledger, bus) sits behind a circuit breaker; funds
reserved are released on any failure after the reservation. Every decision is stored with its reason
(GET /decisions?signal_id=) BEFORE its order request is published: an entry's "accepted" row is written in
the reservation's own transaction (one commit on the hot path), and a publish failure adds a "failed" row.
A redelivered signal (same id) finds its decision and does nothing again, except after a restart, where an
"accepted" request whose publication cannot be known is published again (the trader dedupes by request id).

Symbol rules (step size, min notional) come from the exchange itself (rules.py), loaded at start and
refreshed periodically, so the coordinator sizes on the exchange's grid also when it runs without the trader.

Split by job into mixins of CoordinatorService: entries.py (the BUY pipeline, manual entries), exits.py,
breaker_steps.py (size, risk, reserve, publish: each behind its circuit breaker), decisions.py (decision rows,
redelivery) and adjust.py (position adjustments); this module keeps the wiring, the cycle and balance
consumers, on_signal's dispatch, the HTTP routes and health.

Hot path without database reads (memory.py): decided signal ids and open cycles live in memory, loaded from
the store at start and kept current from this service's own decisions and `trade.cycles` updates.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Query

from roottrading import messages as m
from roottrading.bus.ownership import ownership_for
from roottrading.capital import PocketLedger
from roottrading.domain import CycleStatus, OrderRequest, Side, Signal, TradeCycle
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.services.coordinator.adjust import AdjustMixin
from roottrading.services.coordinator.breaker import CircuitBreaker
from roottrading.services.coordinator.breaker_steps import LEDGER_ERRORS, BreakerStepsMixin, _SizedFromStaleView
from roottrading.services.coordinator.config import load_config
from roottrading.services.coordinator.decisions import FINAL, DecisionsMixin
from roottrading.services.coordinator.entries import EntriesMixin
from roottrading.services.coordinator.entries import reservation_id_for_signal as reservation_id_for_signal
from roottrading.services.coordinator.exits import ExitsMixin
from roottrading.services.coordinator.memory import DAY_MS, SKEW_MS, DecidedSignals, OpenCycles, PendingEntries
from roottrading.services.coordinator.ownership import CoordinatorTakeOver
from roottrading.services.coordinator.risk_client import RiskClient
from roottrading.services.coordinator.rules import SymbolRulesCache
from roottrading.services.coordinator.strategy_hooks import StrategyHooks
from roottrading.services.trader.exchange_factory import rules_loader
from roottrading.store import CycleRepo, DecisionRepo


class CoordinatorService(DecisionsMixin, ExitsMixin, EntriesMixin, BreakerStepsMixin, AdjustMixin, Service):
    name = "coordinator"
    description = "Filters, sizes, risk-checks and funds signals into order requests."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.cfg = load_config(ctx.wiring.coordinator)
        self.decisions = DecisionRepo(ctx.db)
        self.cycles = CycleRepo(ctx.db)
        self.ledger: Any = ctx.wiring.pocket_ledger or PocketLedger(ctx.db, ctx.clock, dict(ctx.settings.pocket_config))
        self.risk = RiskClient(ctx, url=self.cfg.risk_url, timeout_s=self.cfg.risk_timeout_s)
        self.symbol_rules = SymbolRulesCache(
            rules_loader(ctx), ctx.clock.now_ms, refresh_s=self.cfg.rules_refresh_s, retry_s=self.cfg.rules_retry_s
        )
        now = ctx.clock.now_ms
        self.breakers = {
            n: CircuitBreaker(
                n, now, failure_threshold=self.cfg.breaker_failures, reset_timeout_s=self.cfg.breaker_reset_s
            )
            for n in ("risk", "ledger", "bus")
        }
        self.reported_equity: Decimal | None = None
        self.last_entry: dict[tuple[str, str], int] = {}
        self.pending = PendingEntries()  # accepted entries whose cycle is not announced yet
        self.counts = {"accepted": 0, "rejected": 0, "failed": 0, "duplicates": 0}
        self.requests_sent = 0
        self.decided = DecidedSignals()
        strategies_dir = ctx.settings.strategies_dir
        self.hooks = StrategyHooks(str(strategies_dir) if strategies_dir else None)
        self.open_view = OpenCycles()
        self._lock = asyncio.Lock()
        # several coordinators: each decides the symbols of the signal partitions it holds (ownership.py)
        self.takeover = CoordinatorTakeOver(self, ownership_for(ctx.bus, m.SIGNALS, self.name))

    def consumes(self) -> list[Consumes]:
        # signals are shared out by symbol and cycle updates settled once (the durable shared group); every
        # instance also sees every cycle update and balance for its own views (broadcast, ownership.py)
        return [
            Consumes(m.SIGNALS, self.on_signal),
            Consumes(m.PORTFOLIO_BALANCES, self.on_balances, broadcast=True),
            Consumes(m.CYCLE_UPDATES, self.on_cycle),
            Consumes(m.CYCLE_UPDATES, self.on_cycle_view, group=f"{self.name}-view", broadcast=True),
        ]

    async def on_cycle_view(self, msg: m.Message) -> None:
        """Every cycle update, in every instance: the open-cycle view the entry filters read."""
        self.open_view.update(msg.payload)

    def jobs(self) -> list[Job]:
        # runs every retry_s; reloads only when due (refresh_s after a load, retry_s after a failure)
        return [Job("symbol-rules", self.cfg.rules_retry_s, self.symbol_rules.refresh)]

    async def on_cycle(self, msg: m.Message) -> None:
        """Settle the reservation this coordinator made: consumed when the entry fills, released (with the
        cycle's PnL) when the cycle ends, whatever the outcome. The ledger is idempotent, so redelivered or
        repeated cycle updates move no money twice."""
        c: TradeCycle = msg.payload
        self.open_view.update(c)
        if not c.reservation_id:
            return
        try:
            if c.status is CycleStatus.ACTIVE and c.entry_price is not None and c.quantity > 0:
                await self.ledger.consume(c.reservation_id, c.entry_price * c.quantity + c.fees)
            elif c.status.is_terminal:
                # with its position adjustments' reservations, if any (adjust.py)
                await self.release_cycle(c, f"cycle {c.status.value.lower()}", c.profit_loss or Decimal(0))
        except LEDGER_ERRORS as exc:  # retried by the bus; reconciliation is the last resort
            self.log.error("reservation settlement failed", reservation=c.reservation_id, cycle=c.id, error=repr(exc))
            raise

    async def start(self) -> None:
        await self.symbol_rules.refresh(force=True)  # a failure is logged; sizing falls back to the defaults
        since = self.ctx.clock.now_ms() - DAY_MS
        self.decided.load(since, await self.decisions.decided_since(since))
        await self._load_cooldowns()
        self.open_view.load(await self.cycles.open_cycles())
        await self.takeover.load_pending(None)
        self.takeover.started = True
        try:
            await self.ledger.ensure_initialised(await self.equity())
        except LEDGER_ERRORS as exc:
            self.log.error(
                "pockets could not be initialised; entries will fail until the ledger answers", error=repr(exc)
            )

    async def _load_cooldowns(self) -> None:
        """The entry cooldown survives a restart: the last entry per (symbol, strategy) comes from the stored
        decisions (an entry's request carries its signal's time), not only from this process's memory."""
        if self.cfg.cooldown_s <= 0:
            return
        since = self.ctx.clock.now_ms() - int(self.cfg.cooldown_s * 1000) - SKEW_MS
        for row in await self.decisions.accepted_since(since):
            details, sid = row.get("details") or {}, row["signal_id"]
            if details.get("stage") != "order" or self.decided.get(sid) not in (None, "accepted"):
                continue  # an exit, or an entry whose request was never sent (decided again as failed)
            key, t = (row["symbol"], row["strategy"]), int(details["request"]["time"])
            self.last_entry[key] = max(t, self.last_entry.get(key, t))

    async def stop(self) -> None:
        await self.risk.close()

    async def on_balances(self, msg: m.Message) -> None:
        b: m.BalancesUpdate = msg.payload
        if b.total_value is not None:
            self.reported_equity = b.total_value

    async def equity(self, pockets: list[Any] | None = None) -> Decimal:
        """Total portfolio value: the portfolio's last report, else the pockets' total, else the configured
        starting equity."""
        if self.reported_equity is not None:
            return self.reported_equity
        if pockets is None:
            try:
                pockets = await self.ledger.pockets()
            except LEDGER_ERRORS:
                pockets = []
        total = sum((p.current_value for p in pockets), Decimal(0))
        return total if total > 0 else self.cfg.initial_equity

    # --- the pipeline ---------------------------------------------------------------------------------
    async def on_signal(self, msg: m.Message) -> None:
        s: Signal = msg.payload
        async with self._lock:  # one decision at a time: sizing reads what the previous one reserved
            prior = await self._prior_decision(s)
            if prior in FINAL:
                self.counts["duplicates"] += 1
                if prior == "accepted" and s.id in self.decided.unsure:
                    await self._republish(s)
                else:
                    self.log.info("signal already decided; redelivery ignored", signal=s.id)
                return
            if s.side is Side.SELL:
                await self._exit(s)
                return
            if s.symbol not in self.symbol_rules.rules:  # a pair new to the universe: its rules, once
                await self.symbol_rules.reload_for([s.symbol])
            try:
                await self._entry(s)
            except _SizedFromStaleView:  # funds moved since the view was read: size again from the store
                await self._entry(s, fresh=True)

    # --- HTTP -----------------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/decisions")
        async def decisions(
            signal_id: str | None = None, limit: int = Query(100, ge=1, le=1000)
        ) -> list[dict[str, Any]]:
            return await self.decisions.query(signal_id=signal_id, limit=limit)

        @r.post("/manual")
        async def manual(body: dict[str, Any]) -> dict[str, Any]:
            """The trader's manual entries when it runs in another process (see manual_entry)."""
            try:
                req = msgspec.convert(body["request"], OrderRequest, strict=False)
                price = Decimal(str(body["price"]))
            except (KeyError, ArithmeticError, msgspec.ValidationError) as exc:
                raise HTTPException(422, f"bad manual entry: {exc}") from None
            return await self.manual_entry(req, price)

        @r.post("/adjust")
        async def adjust(body: dict[str, Any]) -> dict[str, Any]:
            """A trader's position adjustment when it runs in another process (adjust.py)."""
            try:
                req = msgspec.convert(body["request"], OrderRequest, strict=False)
                price = Decimal(str(body["price"]))
            except (KeyError, ArithmeticError, msgspec.ValidationError) as exc:
                raise HTTPException(422, f"bad adjustment: {exc}") from None
            return await self.adjust_entry(req, price)

        @r.get("/config")
        async def config() -> dict[str, Any]:
            return self.cfg.model_dump(mode="json")

        return r

    async def health(self) -> HealthStatus:
        breakers = {n: b.snapshot() for n, b in self.breakers.items()}
        status = "degraded" if any(b["state"] != "closed" for b in breakers.values()) else "ok"
        return HealthStatus(
            status=status,
            details={
                "requests": self.requests_sent,
                **self.counts,
                "risk_mode": self.risk.mode,
                "breakers": breakers,
                "symbol_rules": self.symbol_rules.snapshot(),
                **self.takeover.health(),
            },
        )
