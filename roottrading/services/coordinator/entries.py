"""A BUY's way to an order request: filters, the strategy's say, size, risk, reservation, publish.

Why a mixin apart from service.py: the entry pipeline is the coordinator's main job and reads best in one
place. `_entry` (a signal) runs the age / strength / regime / cooldown / one-open-cycle filters, the strategy's
confirm_entry and stake (strategy_hooks.py), then the steps behind the circuit breakers (breaker_steps.py):
size, risk check (a shrink is applied), a pocket reservation committed with its "accepted" decision, and the
publish. `manual_entry` (the trader's POST /order) takes the same money steps without the strategy filters.
The reservation id is derived from the signal id, so a redelivered signal reserves nothing twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import OrderRequest, OrderType, Side, Signal, SignalStrength
from roottrading.domain.money import plain_text, to_decimal
from roottrading.services.coordinator import filters as f
from roottrading.services.coordinator.breaker_steps import _dec
from roottrading.services.coordinator.decisions import FINAL
from roottrading.services.coordinator.sizing import reservation_amount, reserve_multiplier
from roottrading.store import DecisionRepo

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService


def reservation_id_for_signal(signal_id: str) -> str:
    return f"res-{ids.request_id_for_signal(signal_id)[4:]}"


class EntriesMixin:
    """Entry signals and manual buys into funded order requests (CoordinatorService)."""

    async def _entry(self: CoordinatorService, s: Signal, fresh: bool = False) -> None:  # type: ignore[misc]
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
    async def manual_entry(self: CoordinatorService, req: OrderRequest, price: Decimal) -> dict[str, Any]:  # type: ignore[misc]
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
        return await self._stored_answer(s.id)

    async def _manual(self: CoordinatorService, s: Signal, req: OrderRequest, price: Decimal) -> None:  # type: ignore[misc]
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

    def _open_count(self: CoordinatorService, s: Signal) -> int:  # type: ignore[misc]
        """Open cycles of the signal's symbol/strategy (memory view), plus the accepted entries the trader has
        not announced yet."""
        ttl_ms = int(self.cfg.pending_ttl_s * 1000)
        pend = self.pending.count((s.symbol, s.strategy), self.ctx.clock.now_ms(), ttl_ms, self.open_view.seen)
        return self.open_view.count(s.symbol, s.strategy) + pend
