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

Hot path without database reads (memory.py): decided signal ids and open cycles live in memory, loaded from
the store at start and kept current from this service's own decisions and `trade.cycles` updates.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.exc import SQLAlchemyError

from roottrading import ids
from roottrading import messages as m
from roottrading.bus.ownership import ownership_for
from roottrading.capital import InsufficientFunds, PocketLedger
from roottrading.domain import CycleStatus, OrderRequest, OrderType, Side, Signal, SignalStrength, TradeCycle
from roottrading.domain.money import plain_text, to_decimal
from roottrading.risk import OrderIntent
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.services.coordinator import filters as f
from roottrading.services.coordinator.adjust import AdjustMixin
from roottrading.services.coordinator.breaker import CircuitBreaker, CircuitOpen
from roottrading.services.coordinator.config import load_config
from roottrading.services.coordinator.memory import DAY_MS, SKEW_MS, DecidedSignals, OpenCycles, PendingEntries
from roottrading.services.coordinator.ownership import CoordinatorTakeOver
from roottrading.services.coordinator.risk_client import RiskClient, RiskUnavailable
from roottrading.services.coordinator.rules import SymbolRulesCache
from roottrading.services.coordinator.sizing import (
    SizeRequest,
    Sizing,
    fixed_step_rounder,
    reservation_amount,
    reserve_multiplier,
    size_entry,
)
from roottrading.services.coordinator.strategy_hooks import StrategyHooks
from roottrading.services.trader.exchange_factory import rules_loader
from roottrading.store import CycleRepo, DecisionRepo

LEDGER_ERRORS = (SQLAlchemyError, OSError, ConnectionError, TimeoutError)
BUS_ERRORS = (ConnectionError, OSError, RuntimeError, TimeoutError)
FINAL = ("accepted", "rejected", "failed")


class _SizedFromStaleView(Exception):
    """The reservation found fewer funds than the ledger's view said: the entry is sized again, fresh."""


def reservation_id_for_signal(signal_id: str) -> str:
    return f"res-{ids.request_id_for_signal(signal_id)[4:]}"


class CoordinatorService(AdjustMixin, Service):
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

    async def _prior_decision(self, s: Signal) -> str | None:
        """The signal's latest decision: from memory when it covers the signal's time, else the store."""
        known = self.decided.get(s.id)
        if known is not None or self.decided.covers(s.time):
            return known
        rows = await self.decisions.query(signal_id=s.id, limit=5)
        final = [d["decision"] for d in rows if d["decision"] in FINAL]
        if final and final[0] == "accepted":
            self.decided.unsure.add(s.id)
        return final[0] if final else None

    async def _republish(self, s: Signal) -> None:
        """After a restart: the request of an accepted signal may never have left (crash between the commit
        and the publish). Publish it again; the trader keys cycles and exits by request id."""
        self.decided.unsure.discard(s.id)
        rows = [d for d in await self.decisions.query(signal_id=s.id, limit=5) if d["decision"] in FINAL]
        raw = (rows[0].get("details") or {}).get("request") if rows and rows[0]["decision"] == "accepted" else None
        if raw is None:
            return
        req = msgspec.convert(raw, OrderRequest, strict=False)
        try:
            await self.ctx.publish(m.ORDER_REQUESTS, req, key=req.symbol, msg_id=req.id)
        except BUS_ERRORS as exc:  # the next redelivery tries again
            self.decided.unsure.add(s.id)
            self.log.error("republish of an accepted request failed", signal=s.id, error=repr(exc))
            raise
        self.log.info("accepted request published again after a restart", signal=s.id, request=req.id)

    def _decision_row(self, s: Signal, decision: str, reason: str, details: dict[str, Any]) -> dict[str, Any]:
        """The row to store. Nothing is noted here: a decision counts only once its write commits
        (`_decided`), else a failed write followed by the bus's redelivery would read as "already decided"."""
        now = self.ctx.clock.now_ms()
        clean = {k: (plain_text(v) if isinstance(v, Decimal) else v) for k, v in details.items()}
        if decision == "accepted":  # per-signal line at debug: the row itself is the record
            self.log.debug("signal accepted", signal=s.id, symbol=s.symbol, strategy=s.strategy, reason=reason)
        else:
            self.log.warning("signal " + decision, signal=s.id, symbol=s.symbol, strategy=s.strategy, reason=reason)
        return {
            "signal_id": s.id,
            "time": now,
            "symbol": s.symbol,
            "strategy": s.strategy,
            "decision": decision,
            "reason": reason,
            "details": clean,
        }

    async def _record(self, s: Signal, decision: str, reason: str, **details: Any) -> None:
        row = self._decision_row(s, decision, reason, details)
        await self.decisions.add(**row)
        self._decided(row)

    def _decided(self, row: dict[str, Any]) -> None:
        """Note a STORED decision in memory and count it (call only after its write committed)."""
        decision = row["decision"]
        self.counts[decision] = self.counts.get(decision, 0) + 1
        self.decided.note(row["signal_id"], decision, row["time"])

    def _unaccept(self) -> None:
        """An accepted decision whose request could not be sent: counted as failed instead."""
        self.counts["accepted"] -= 1

    async def _open_cycles(self, s: Signal) -> list[TradeCycle]:
        """From the store (exits: the source of truth for what can be sold)."""
        live = [st.value for st in CycleStatus if not st.is_terminal]
        page, _ = await self.cycles.query(status=live, symbol=s.symbol, strategy=s.strategy, limit=1000)
        return page

    async def _exit(self, s: Signal) -> None:
        open_ = await self._open_cycles(s)
        active = [c for c in open_ if c.status is CycleStatus.ACTIVE and c.quantity > 0]
        if not active:
            why = (
                "no open position to exit (spot: no short selling)"
                if not open_
                else "open cycle not ready to exit (entry not filled yet or exit already in progress)"
            )
            await self._record(s, "rejected", why, stage="exit")
            return
        qty = sum((c.quantity for c in active), Decimal(0))
        req_id = ids.request_id_for_signal(s.id)
        req = OrderRequest(
            id=req_id,
            time=s.time,
            symbol=s.symbol,
            side=Side.SELL,
            type=OrderType.MARKET,
            quantity=qty,
            strategy=s.strategy,
            signal_id=s.id,
            tag=s.tag,
        )
        await self._record(
            s,
            "accepted",
            f"exit of {len(active)} cycle(s), quantity {qty}",
            stage="exit",
            tag=s.tag,
            request_id=req_id,
            quantity=qty,
            cycles=[c.id for c in active],
            request=m.to_builtins(req),
        )
        if not await self._publish(s, req, stage="exit"):
            return
        self.pending.drop((s.symbol, s.strategy))

    async def _entry(self, s: Signal, fresh: bool = False) -> None:
        key = (s.symbol, s.strategy)
        for why in (
            f.age_filter(s, self.cfg, self.ctx.clock.now_ms()),
            f.strength_filter(s, self.cfg),
            f.regime_filter(s, self.cfg),
            f.cooldown_filter(s, self.cfg, self.last_entry.get(key)),
            f.open_cycle_filter(s, self.cfg, self._open_count(s)),
        ):
            if why:
                await self._record(s, "rejected", why, stage="filter")
                return
        hooks = self.hooks.before_entry(s)  # the strategy's optional confirm_entry / stake (isolated)
        if hooks.veto:
            await self._record(s, "rejected", f"strategy veto: {hooks.veto}", stage="callback", errors=hooks.errors)
            return
        for dep in ("risk", "ledger", "bus"):  # fail fast, before reserving anything
            if self.breakers[dep].state == "open":
                await self._record(s, "rejected", f"circuit open: {dep}", stage="breaker")
                return
        sizing = await self._size(s, fresh, stake=hooks.stake)
        if sizing is None:
            return
        qty = sizing.quantity
        req_id = ids.request_id_for_signal(s.id)
        verdict = await self._risk_check(s, req_id, qty)
        if verdict is None:
            return
        if verdict.quantity < qty:
            qty = self._round(s.symbol, verdict.quantity)
            if qty * to_decimal(s.price) < self._min_notional(s.symbol):
                await self._record(
                    s,
                    "rejected",
                    f"risk shrank the order below min notional: {'; '.join(verdict.reasons)}",
                    stage="risk",
                    risk=verdict.reasons,
                )
                return
        price = to_decimal(s.price)
        limit = self._tick(s.symbol, hooks.limit_price) if hooks.limit_price is not None else None
        mult = reserve_multiplier(self.cfg.fee_buffer_pct, self.cfg.slippage_buffer_pct)
        amount = min(sizing.reserve_amount, reservation_amount(qty, price, mult))
        if limit is not None and limit > price:  # a marketable limit may pay up to its price
            amount = reservation_amount(qty, limit, mult)
        res_id = reservation_id_for_signal(s.id)
        req = OrderRequest(
            id=req_id,
            time=s.time,
            symbol=s.symbol,
            side=Side.BUY,
            type=OrderType.MARKET if limit is None else OrderType.LIMIT,
            price=limit,
            quantity=qty,
            strategy=s.strategy,
            signal_id=s.id,
            reservation_id=res_id,
            stop_loss=sizing.stop,
            take_profit=_dec(s.take_profit),
            trailing_pct=_dec(s.trailing_pct),
            tag=s.tag,
        )
        accepted = self._decision_row(
            s,
            "accepted",
            f"buy {qty} {s.symbol} (~{(qty * price).quantize(Decimal('0.01'))} "
            f"quote), risk {sizing.risk_amount.quantize(Decimal('0.01'))} to stop {sizing.stop}"
            + (f"; {'; '.join(verdict.reasons)}" if verdict.action == "shrink" else ""),
            {
                "stage": "order",
                "tag": s.tag,
                **({"callback_errors": list(hooks.errors)} if hooks.errors else {}),
                "request_id": req_id,
                "reservation_id": res_id,
                "quantity": qty,
                "price": price,
                "stop_loss": sizing.stop,
                "reserved": amount,
                "risk_amount": qty * sizing.stop_distance,
                "capped_by": sizing.capped_by,
                "risk": verdict.reasons,
                "risk_action": verdict.action,
                "request": m.to_builtins(req),
            },
        )
        # the decision is stored in the reservation's transaction: both or neither, before the publish
        if not await self._reserve(
            s,
            res_id,
            amount,
            ids.cycle_id(req_id),
            also=lambda conn: DecisionRepo.add_in(conn, accepted),
            sized_from_view=not fresh,
        ):
            return
        self._decided(accepted)  # committed with the reservation
        if not await self._publish(s, req, stage="order", reservation_id=res_id):
            return
        self.last_entry[key] = s.time
        self.pending.add(key, ids.cycle_id(req_id), self.ctx.clock.now_ms())

    # --- manual entries -------------------------------------------------------------------------------
    async def manual_entry(self, req: OrderRequest, price: Decimal) -> dict[str, Any]:
        """A manual BUY (the trader's POST /order) through the same money rules as a signal's entry: the
        risk check (a refusal, or a shrink, refuses it: a person asked for that quantity), a pocket
        reservation with its "accepted" decision in one transaction, the request published on
        `order.requests` with its reservation, which `on_cycle` settles when the cycle fills and closes.
        The strategy filters (strength, regime, cooldown, one open cycle) do not apply. `price` is the
        limit price or the trader's last price, used for the notional.

        Why here: the coordinator owns the pockets and the risk client; the trader's API reaches this method
        directly when both run in one process, else over HTTP (POST /manual), so the rules are the same in
        every deployment. Idempotent by request id (decision keyed `manual:<request id>`). Returns
        {"decision", "reason", "request"} (request: the funded OrderRequest, when accepted)."""
        s = Signal(
            id=f"manual:{req.id}",
            time=req.time,
            symbol=req.symbol,
            strategy=req.strategy,
            side=Side.BUY,
            strength=SignalStrength.VERY_STRONG,
            price=float(price),
        )
        async with self._lock:
            if await self._prior_decision(s) not in FINAL:
                await self._manual(s, req, price)
        rows = [d for d in await self.decisions.query(signal_id=s.id, limit=5) if d["decision"] in FINAL]
        if not rows:
            return {"decision": "failed", "reason": "no decision stored", "request": None}
        d = rows[0]
        request = (d.get("details") or {}).get("request") if d["decision"] == "accepted" else None
        return {"decision": d["decision"], "reason": d["reason"], "request": request}

    async def _manual(self, s: Signal, req: OrderRequest, price: Decimal) -> None:
        for dep in ("risk", "ledger", "bus"):
            if self.breakers[dep].state == "open":
                await self._record(s, "rejected", f"circuit open: {dep}", stage="breaker")
                return
        qty = req.quantity if req.quantity is not None else (req.quote_quantity or Decimal(0)) / price
        verdict = await self._risk_check(s, req.id, qty)
        if verdict is None:
            return
        if verdict.quantity < qty:
            await self._record(
                s,
                "rejected",
                f"risk allows at most {plain_text(verdict.quantity)}: {'; '.join(verdict.reasons)}",
                stage="risk",
                risk=verdict.reasons,
            )
            return
        # the same reservation rule as a signal's entry: fee and slippage buffers (a market buy may fill worse)
        amount = reservation_amount(
            qty, price, reserve_multiplier(self.cfg.fee_buffer_pct, self.cfg.slippage_buffer_pct)
        )
        res_id = reservation_id_for_signal(s.id)
        funded = msgspec.structs.replace(req, reservation_id=res_id, signal_id=s.id)
        accepted = self._decision_row(
            s,
            "accepted",
            f"manual buy {plain_text(qty)} {s.symbol} (~{(qty * price).quantize(Decimal('0.01'))} quote)",
            {
                "stage": "order",
                "manual": True,
                "request_id": req.id,
                "reservation_id": res_id,
                "quantity": qty,
                "price": price,
                "reserved": amount,
                "risk": verdict.reasons,
                "request": m.to_builtins(funded),
            },
        )
        if not await self._reserve(
            s, res_id, amount, ids.cycle_id(req.id), also=lambda conn: DecisionRepo.add_in(conn, accepted)
        ):
            return
        self._decided(accepted)
        await self._publish(s, funded, stage="order", reservation_id=res_id)

    def _open_count(self, s: Signal) -> int:
        """Open cycles of the signal's symbol/strategy (memory view), plus the accepted entries the trader has
        not announced yet."""
        ttl_ms = int(self.cfg.pending_ttl_s * 1000)
        pend = self.pending.count((s.symbol, s.strategy), self.ctx.clock.now_ms(), ttl_ms, self.open_view.seen)
        return self.open_view.count(s.symbol, s.strategy) + pend

    # --- steps behind breakers ------------------------------------------------------------------------
    def _rules(self, symbol: str) -> Any:
        return self.symbol_rules.get(symbol)

    def _round(self, symbol: str, qty: Decimal) -> Decimal:
        r = self._rules(symbol)
        return r.round_quantity(qty) if r is not None else fixed_step_rounder(self.cfg.default_step)(qty)

    def _tick(self, symbol: str, price: Decimal) -> Decimal:
        """A limit price on the symbol's tick grid (rounded down: a buy never pays more than asked)."""
        r = self._rules(symbol)
        return r.round_price(price) if r is not None else price

    def _min_notional(self, symbol: str) -> Decimal:
        r = self._rules(symbol)
        return Decimal(r.min_notional) if r is not None else self.cfg.default_min_notional

    async def _size(self, s: Signal, fresh: bool = False, stake: Decimal | None = None) -> Sizing | None:
        br = self.breakers["ledger"]
        try:
            br.check()
            listed = await self.ledger.pockets(max_age_s=0.0 if fresh else self.cfg.pocket_view_s)
            br.success()
            pockets = {p.pocket_type: p for p in listed}
        except LEDGER_ERRORS as exc:
            br.failure()
            await self._record(s, "failed", f"ledger unavailable: {exc!r}", stage="sizing")
            return None
        except CircuitOpen as exc:
            await self._record(s, "rejected", str(exc), stage="breaker")
            return None
        pocket = pockets.get(self.cfg.pocket)
        available = pocket.available_value if pocket is not None else Decimal(0)
        sym = s.symbol.upper()
        sizing = size_entry(
            SizeRequest(
                equity=await self.equity(listed),
                price=to_decimal(s.price),
                stop=_dec(s.stop_loss),
                risk_pct=self.cfg.risk_pct,
                default_stop_pct=self.cfg.default_stop_pct,
                available=available,
                fee_buffer_pct=self.cfg.fee_buffer_pct,
                slippage_buffer_pct=self.cfg.slippage_buffer_pct,
                max_quantity=self.cfg.max_quantity.get(sym),
                max_notional=self.cfg.max_notional.get(sym),
                stake=stake if stake is not None else self.cfg.stake_quote,
            ),
            lambda q: self._round(s.symbol, q),
            self._min_notional(s.symbol),
        )
        if not sizing.ok:
            await self._record(
                s,
                "rejected",
                f"sizing: {sizing.reject_reason}",
                stage="sizing",
                pocket=self.cfg.pocket,
                available=available,
            )
            return None
        return sizing

    async def _risk_check(self, s: Signal, req_id: str, qty: Decimal, cycle_id: str | None = None) -> Any:
        br = self.breakers["risk"]
        if not br.allow():
            await self._record(s, "rejected", "circuit open: risk", stage="breaker")
            return None
        intent = OrderIntent(
            id=req_id,
            symbol=s.symbol,
            side=Side.BUY,
            quantity=qty,
            price=to_decimal(s.price),
            strategy=s.strategy,
            time=s.time,
            cycle_id=cycle_id,
        )
        try:
            verdict = await self.risk.check(intent)
        except RiskUnavailable as exc:
            br.failure()
            await self._record(s, "failed", f"risk unavailable: {exc}", stage="risk")
            return None
        br.success()
        if not verdict.allowed:
            await self._record(
                s,
                "rejected",
                "risk: " + "; ".join(verdict.reasons),
                stage="risk",
                risk_action=verdict.action,
                rule=verdict.rule,
            )
            return None
        return verdict

    async def _reserve(
        self, s: Signal, res_id: str, amount: Decimal, cycle_id: str, also: Any = None, sized_from_view: bool = False
    ) -> bool:
        br = self.breakers["ledger"]
        if not br.allow():
            await self._record(s, "rejected", "circuit open: ledger", stage="breaker")
            return False
        try:
            await self.ledger.reserve(
                res_id,
                amount,
                pocket=self.cfg.pocket,
                cycle_id=cycle_id,
                reason=f"entry {s.symbol} {s.strategy}",
                also=also,
            )
        except InsufficientFunds as exc:
            br.success()
            if sized_from_view and self.cfg.pocket_view_s > 0:
                raise _SizedFromStaleView from exc
            await self._record(s, "rejected", f"insufficient funds: {exc}", stage="reserve")
            return False
        except LEDGER_ERRORS as exc:
            br.failure()
            await self._release(res_id, "reservation failed")
            await self._record(s, "failed", f"ledger unavailable: {exc!r}", stage="reserve")
            return False
        br.success()
        return True

    async def _publish(self, s: Signal, req: OrderRequest, *, stage: str, reservation_id: str | None = None) -> bool:
        br = self.breakers["bus"]
        if not br.allow():
            self._unaccept()
            if reservation_id:
                await self._release(reservation_id, "circuit open: bus")
            await self._record(s, "rejected", "circuit open: bus", stage=stage)
            return False
        try:
            await self.ctx.publish(m.ORDER_REQUESTS, req, key=req.symbol, msg_id=req.id)
        except BUS_ERRORS as exc:
            br.failure()
            self._unaccept()
            if reservation_id:
                await self._release(reservation_id, f"order not sent: {exc!r}")
            await self._record(s, "failed", f"bus unavailable: {exc!r}", stage=stage, released=bool(reservation_id))
            return False
        br.success()
        self.requests_sent += 1
        return True

    async def _release(self, res_id: str, reason: str) -> None:
        try:
            await self.ledger.release(res_id, reason)
        except LEDGER_ERRORS as exc:  # the portfolio's reconciliation frees it later
            self.log.error("release failed; reservation left for reconciliation", reservation=res_id, error=repr(exc))

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


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else to_decimal(x).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
