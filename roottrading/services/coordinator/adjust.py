"""The coordinator's side of position adjustment (DCA): fund an addition to an open cycle like an entry.

Why the coordinator: it owns the pockets and the risk client, so an addition a strategy asks for
(`position_adjustment`, called by the trader: services/trader/cycle_adjust.py) passes the same money rules as
an entry, in every deployment (the trader calls `adjust_entry` directly in one process, else POST /adjust):

- the circuit breakers, then the quote amount turned into a quantity on the symbol's grid (below the
  exchange's minimum notional: refused);
- the risk manager's verdict for that quantity, as an addition to the cycle (OrderIntent.cycle_id: it opens
  no new cycle, and the position size limit caps the cycle's whole position); a shrink is applied; below
  the minimum notional: refused;
- a pocket reservation of the quantity at the price plus the fee and slippage buffers, tied to the cycle,
  committed with its "accepted" decision (stage "adjust"); refusals are stored decisions too. The strategy
  filters (cooldown, one open cycle, signal age) are for new cycles and do not apply.

The answer carries the funded request (quantity, reservation); the trader sends it as a BUY of the same
cycle. Settlement: an addition's reservation stays set aside (reserved) until its cycle ends; then every
reservation of the cycle is released and the cycle's realised PnL is split between them in proportion to
their amounts (`release_cycle`), so no single release caps a loss the additions made larger.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from roottrading import messages as m
from roottrading.capital.ledger import CONSUMED, RESERVED
from roottrading.domain import OrderRequest, Side, Signal, SignalStrength, TradeCycle
from roottrading.domain.money import plain_text
from roottrading.services.coordinator.sizing import reservation_amount, reserve_multiplier
from roottrading.store import DecisionRepo
from roottrading.strategies.callbacks import overrides_callbacks

FINAL = ("accepted", "rejected", "failed")

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService


def split_pnl(amounts: list[Decimal], pnl: Decimal) -> list[Decimal]:
    """`pnl` shared in proportion to `amounts` (the last one takes the rounding rest, so the parts sum to it)."""
    total = sum(amounts, Decimal(0))
    if total <= 0:
        return [pnl] + [Decimal(0)] * (len(amounts) - 1)
    parts = [pnl * a / total for a in amounts[:-1]]
    return [*parts, pnl - sum(parts, Decimal(0))]


class AdjustMixin:
    async def adjust_entry(self: CoordinatorService, req: OrderRequest, price: Decimal) -> dict[str, Any]:  # type: ignore[misc]
        """Decide an addition `req` (quote_quantity, cycle_id) at `price`. Idempotent by request id (decision
        keyed `adjust:<request id>`). Returns {"decision", "reason", "request": the funded request or None}."""
        s = Signal(
            id=f"adjust:{req.id}",
            time=req.time,
            symbol=req.symbol,
            strategy=req.strategy,
            side=Side.BUY,
            strength=SignalStrength.VERY_STRONG,
            price=float(price),
            tag=req.tag,
        )
        async with self._lock:
            if await self._prior_decision(s) not in FINAL:
                answer = await self._adjust(s, req, price)
                if answer is not None:
                    return answer
        return await self._stored_answer(s.id)

    async def _adjust(self: CoordinatorService, s: Signal, req: OrderRequest, price: Decimal) -> dict[str, Any] | None:  # type: ignore[misc]
        """The accepted answer, or None once a refusal is stored (the caller reads it back)."""
        if not req.cycle_id:
            await self._record(s, "rejected", "an adjustment needs the cycle it adds to", stage="adjust")
            return None
        for dep in ("risk", "ledger", "bus"):
            if self.breakers[dep].state == "open":
                await self._record(s, "rejected", f"circuit open: {dep}", stage="breaker")
                return None
        quote = req.quote_quantity if req.quote_quantity is not None else (req.quantity or Decimal(0)) * price
        if not (quote.is_finite() and price.is_finite() and quote > 0 and price > 0):
            await self._record(s, "rejected", "an addition needs a positive amount and price", stage="sizing")
            return None
        qty = self._round(s.symbol, quote / price)
        floor = self._min_notional(s.symbol)
        if qty <= 0 or qty * price < floor:
            await self._record(
                s,
                "rejected",
                f"sizing: {plain_text(quote)} quote is below the minimum notional {floor}",
                stage="sizing",
            )
            return None
        verdict = await self._risk_check(s, req.id, qty, cycle_id=req.cycle_id)
        if verdict is None:
            return None
        if verdict.quantity < qty:
            qty = self._round(s.symbol, verdict.quantity)
            if qty * price < floor:
                await self._record(
                    s,
                    "rejected",
                    f"risk shrank the addition below min notional: {'; '.join(verdict.reasons)}",
                    stage="risk",
                    risk=verdict.reasons,
                )
                return None
        amount = reservation_amount(
            qty, price, reserve_multiplier(self.cfg.fee_buffer_pct, self.cfg.slippage_buffer_pct)
        )
        res_id = f"res-add-{req.id[4:]}"
        funded = msgspec.structs.replace(req, quantity=qty, quote_quantity=None, reservation_id=res_id, signal_id=s.id)
        reason = (
            f"add {plain_text(qty)} {s.symbol} (~{(qty * price).quantize(Decimal('0.01'))} quote) to {req.cycle_id}"
        )
        accepted = self._decision_row(
            s,
            "accepted",
            reason,
            {
                "stage": "adjust",
                "cycle": req.cycle_id,
                "request_id": req.id,
                "reservation_id": res_id,
                "quantity": qty,
                "price": price,
                "reserved": amount,
                "risk": verdict.reasons,
                "risk_action": verdict.action,
                "request": m.to_builtins(funded),
            },
        )
        if not await self._reserve(
            s, res_id, amount, req.cycle_id, also=lambda conn: DecisionRepo.add_in(conn, accepted)
        ):
            return None
        self._decided(accepted)
        return {"decision": "accepted", "reason": reason, "request": m.to_builtins(funded)}

    def _adjusts(self: CoordinatorService, strategy: str) -> bool:  # type: ignore[misc]
        inst = self.hooks.instances().get(strategy)
        return inst is not None and "position_adjustment" in overrides_callbacks(inst)

    async def release_cycle(self: CoordinatorService, c: TradeCycle, reason: str, pnl: Decimal) -> None:  # type: ignore[misc]
        """Release every live reservation of ended cycle `c` (its entry's and its additions'), sharing `pnl`
        in proportion to their amounts. A strategy without position_adjustment has one: released as before."""
        live = []
        if self._adjusts(c.strategy):
            live = await self.ledger.reservations(status=[RESERVED, CONSUMED], cycle_id=c.id)
        if not any(r.id != c.reservation_id for r in live):
            await self.ledger.release(c.reservation_id, reason, pnl=pnl)
            return
        parts = split_pnl([r.amount for r in live], pnl)
        if not any(r.id == c.reservation_id for r in live):
            parts = [Decimal(0)] * len(live)  # the entry's was released with the PnL already (a redelivery)
        for r, part in zip(live, parts, strict=True):
            await self.ledger.release(r.id, reason, pnl=part)
