"""A SELL signal with an open position: one exit request for the quantity the strategy's cycles hold.

Why a mixin apart from service.py: exits take none of the entry's steps (no filter, no sizing, no risk gate,
no reservation); they read the open cycles from the store (the source of truth for what can be sold), record
the decision and publish the request behind the bus's circuit breaker.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import CycleStatus, OrderRequest, OrderType, Side, Signal, TradeCycle

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService


class ExitsMixin:
    """Exit signals into exit requests (CoordinatorService)."""

    async def _open_cycles(self: CoordinatorService, s: Signal) -> list[TradeCycle]:  # type: ignore[misc]
        """From the store (exits: the source of truth for what can be sold)."""
        live = [st.value for st in CycleStatus if not st.is_terminal]
        page, _ = await self.cycles.query(status=live, symbol=s.symbol, strategy=s.strategy, limit=1000)
        return page

    async def _exit(self: CoordinatorService, s: Signal) -> None:  # type: ignore[misc]
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
