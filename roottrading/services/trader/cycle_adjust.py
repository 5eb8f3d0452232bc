"""Position adjustment (DCA): the trader adds to an open cycle when its strategy's `position_adjustment` asks.

Why here and how (see roottrading/strategies/cycle_callbacks.py for the strategy's side):
- The trader watches open cycles on every price, so it asks the strategy, after the custom exit and stop
  (cycle_exits.py), only while nothing of the cycle is in flight (every order terminal, no exit started) and
  while fewer than `max_entry_adjustments` additions have filled.
- The money path is the entries' one: the amount goes to the coordinator (`funder`: the coordinator peer in
  one process, else its POST /adjust, services/trader/manual.py), which sizes it on the symbol's grid, asks
  the risk manager, reserves it in the pocket (reservation tied to the cycle) and stores the decision. Only an
  accepted, funded request becomes an order; no coordinator, no addition. The coordinator is asked after
  on_price has released the trader's lock (a risk check and a ledger write, or an HTTP call, must not hold up
  other cycles' stops); the cycle is marked as being funded meanwhile, so a price arriving in between asks
  nothing, and the funded request is sent under the lock if the cycle is still active.
- The order is a MARKET buy of the SAME cycle (cycle_id set, client id from its own request id). Its fills join
  the cycle's fills, from which `_advance` derives quantity, average entry price and fees as for the entry;
  the exit sells everything the cycle holds. The stop, target and trailing stop stay as they were (a
  custom_stoploss may move the stop after the addition).
- Request ids carry the attempt number and the time, so an addition refused (funds, risk) may be asked again
  on a later price, one decision row per ask, while a redelivered answer for the same request is one order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from roottrading import ids
from roottrading.domain import CycleStatus, Order, OrderRequest, OrderType, Side, TradeCycle
from roottrading.exchange.errors import BinanceError
from roottrading.services.trader.manual import CoordinatorUnavailable
from roottrading.services.trader.orders import entry_order

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore


class CycleAdjustMixin:
    def _adds(self: TraderCore, cycle_id: str) -> list[Order]:  # type: ignore[misc]
        """The cycle's BUY orders other than its entry: the additions sent, in any state."""
        c = self.open.get(cycle_id)
        entry = c.entry_order_id if c is not None else None
        return [o for o in self._cycle_orders(cycle_id) if o.side is Side.BUY and o.client_order_id != entry]

    def _adjustments_done(self: TraderCore, cycle_id: str) -> int:  # type: ignore[misc]
        """Additions of the cycle that filled (at least in part): what `max_entry_adjustments` limits."""
        return sum(1 for o in self._adds(cycle_id) if o.executed_quantity > 0)

    async def _position_adjustment(self: TraderCore, c: TradeCycle, price: Decimal) -> None:  # type: ignore[misc]
        """Ask the strategy for an addition; queue it for funding (`_fund_additions`). Caller holds the lock."""
        funder = self.funder
        if funder is None or c.status is not CycleStatus.ACTIVE or c.close_reason is not None:
            return
        if self.paused or self.killed or c.strategy in self.paused_strategies:
            return  # paused: no new buying, additions included
        limit = self.hooks.max_adjustments(c.strategy)
        if limit <= 0 or self._adjustments_done(c.id) >= limit:
            return
        if c.id in self.adjusting or any(not o.status.is_terminal for o in self._cycle_orders(c.id)):
            return  # an addition being funded, or the entry or an addition in flight: that one first
        now = self.clock.now_ms()
        amount = self.hooks.add_amount(c, now, price)
        if amount is None:
            return
        attempt = len(self._adds(c.id)) + 1
        req = OrderRequest(
            id=ids.adjustment_request_id(c.id, attempt, now),
            time=now,
            symbol=c.symbol,
            side=Side.BUY,
            type=OrderType.MARKET,
            quote_quantity=amount,
            strategy=c.strategy,
            cycle_id=c.id,
            tag=c.entry_tag,
        )
        self.adjusting[c.id] = (req, price)

    async def _fund_additions(self: TraderCore) -> None:  # type: ignore[misc]
        """Fund the additions asked under the lock, each through the coordinator WITHOUT the trader's lock (a
        risk check and a ledger write, or an HTTP call in split mode, must not hold up the other cycles'
        stops), then send the accepted ones under the lock. Called by on_price once its lock is released."""
        for cycle_id, asked in list(self.adjusting.items()):
            if asked is None:
                continue  # claimed by a concurrent on_price (another symbol's prices)
            self.adjusting[cycle_id] = None  # claimed here: still "being funded" for _position_adjustment
            req, price = asked
            try:
                answer = await self.funder.adjust(req, price)
            except CoordinatorUnavailable as exc:  # down, timeout, a bad answer: no addition at this price
                self.log.warning("position adjustment not funded", cycle=cycle_id, error=str(exc))
                answer = {}
            except BaseException:
                self.adjusting.pop(cycle_id, None)  # anything else: not left "being funded" for ever
                raise
            funded = answer.get("request") if answer.get("decision") == "accepted" else None
            async with self.lock:
                self.adjusting.pop(cycle_id, None)
                c = self.open.get(cycle_id)
                if funded is None:
                    if answer:
                        self.log.info("position adjustment refused", cycle=cycle_id, reason=answer.get("reason"))
                elif c is not None:
                    await self._add_to_cycle(c, msgspec.convert(funded, OrderRequest, strict=False))

    async def _add_to_cycle(self: TraderCore, c: TradeCycle, req: OrderRequest) -> Order | None:  # type: ignore[misc]
        """Send the funded addition `req` as a BUY of cycle `c`. Caller holds the lock. Idempotent by request."""
        coid = ids.client_order_id(req.id, "add")
        if await self._order(coid) is not None:
            self.stats["duplicates"] += 1
            return None
        current = self.open.get(c.id)
        rules = self.rules.get(c.symbol)
        if current is None or current.status is not CycleStatus.ACTIVE or rules is None:
            self.log.warning("position adjustment dropped: cycle no longer active", cycle=c.id, request=req.id)
            return None
        now = self.clock.now_ms()
        try:
            order = entry_order(req, rules, self.last_price.get(c.symbol), coid, c.id, now)
        except BinanceError as exc:
            self.log.warning("position adjustment not possible", cycle=c.id, reason=exc.msg)
            return None
        await self._save_order(order, None)  # the intent is stored before it is sent
        self.stats["adjustments"] += 1
        self.log.info("position adjustment sent", cycle=c.id, order=coid, quantity=str(order.quantity))
        await self._send(order)
        return self.order_cache.get(coid, order)
