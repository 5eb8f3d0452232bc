"""The trade-cycle state machine proper: exchange news applied to orders and fills, the cycle's state derived.

Why a mixin apart from core.py: core.py keeps the trader's lifecycle, its update queue and the store/announce
plumbing; this is the part docs/trade-cycle.md describes. `_apply_remote` merges an order's news monotonically
(orders.merge) and applies its fill once per trade id (`_apply_fill`, a third-asset fee valued in quote by
`_value_fee`); `_fetch_fills` reads the fills the stream missed; `_advance` derives the cycle's status and
figures from its orders and fills, then stores and announces a change. Callers hold TraderCore.lock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from roottrading import messages as m
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Fill, Order, OrderStatus, OrderType
from roottrading.services.trader.orders import digest, merge
from roottrading.services.trader.outcomes import READ_RETRY
from roottrading.services.trader.position import apply_fills, position

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore

FEE_PRICE_FRESH_MS = 300_000  # a last price this close to a fill's time values its third-asset fee


class CycleStateMixin:
    """Orders and fills of the open cycles turned into their status (TraderCore's state machine)."""

    async def _apply_remote(self: TraderCore, remote: Order, fill: Fill | None, event: str) -> None:  # type: ignore[misc]
        if not self.owner.owns(remote.symbol):
            return  # the account's update stream reaches every instance: the symbol's owner applies it
        local = await self._order(remote.client_order_id)
        if local is None:
            return  # not ours (another client on the account) or a cycle already closed
        if fill is not None:
            await self._apply_fill(local, fill)
        merged = merge(local, remote)
        if merged is not None:
            await self._save_order(merged, event)
        if local.cycle_id:
            await self._advance(local.cycle_id)

    async def _apply_fill(self: TraderCore, order: Order, fill: Fill) -> bool:  # type: ignore[misc]
        key = (fill.symbol, fill.trade_id)
        if key in self.seen_trades:
            return False
        if fill.client_order_id != order.client_order_id:
            fill = msgspec.structs.replace(fill, client_order_id=order.client_order_id)
        fill = await self._value_fee(fill)
        new = await self.orders.add_fill(fill)
        self.seen_trades.add(key)
        if order.cycle_id:  # once per trade id: a fill forgotten by seen_trades may come back
            known = self.fills.setdefault(order.cycle_id, [])
            if not any(f.trade_id == fill.trade_id and f.symbol == fill.symbol for f in known):
                known.append(fill)
                self._fill_applied(order.cycle_id, fill)
        if new:
            self.stats["fills"] += 1
            self.balances_dirty = True
            await self.publish(m.TRADE_EXECUTIONS, fill, key=fill.symbol, msg_id=f"fill:{fill.symbol}:{fill.trade_id}")
        return new

    async def _value_fee(self: TraderCore, fill: Fill) -> Fill:  # type: ignore[misc]
        """Set `commission_quote` of a fee paid in a third asset (BNB): its value in quote at the fill's
        time, stored with the fill, so the cycle's PnL, the ledger's settlement, daily loss, drawdown and the
        PnL tracker all count it at one value (capital/pnl.py).

        Price of ASSET+QUOTE, in this order: the trader's own last price of that pair when it is at most
        FEE_PRICE_FRESH_MS from the fill (a pair the trader follows: no request), else the exchange's
        optional `price_at(symbol, fill.time)` (the simulator: its book's last price; Binance: the 1-minute
        kline holding the fill, so a fill learnt of late is still priced at its own time). No price: a
        warning, and the cycle reports the fee in `unpriced_fees` instead of counting it as 0."""
        if not fill.commission or fill.commission_quote is not None:
            return fill
        rules = self.rules.get(fill.symbol)
        base, quote = split_symbol(fill.symbol, rules.quote_asset if rules else self.quote_asset)
        asset = fill.commission_asset
        if asset in (base, quote):
            return fill
        pair = f"{asset}{quote}"
        price = self.last_price.get(pair)
        if price is not None and abs(self.clock.now_ms() - fill.time) > FEE_PRICE_FRESH_MS:
            price = None
        price_at = getattr(self.exchange, "price_at", None)
        if price is None and price_at is not None:
            try:
                price = await price_at(pair, fill.time)
            except READ_RETRY as exc:
                self.log.warning("fee asset price unavailable", pair=pair, error=repr(exc))
        if price is None:
            self.log.warning(
                "fee not priced: left out of the cycle's PnL and reported in its unpriced_fees",
                asset=asset,
                commission=str(fill.commission),
                symbol=fill.symbol,
                trade=fill.trade_id,
            )
            return fill
        return msgspec.structs.replace(fill, commission_quote=fill.commission * price)

    async def _fetch_fills(self: TraderCore, order: Order) -> None:  # type: ignore[misc]
        """Fills missed (while down, or not pushed yet): from my_trades, matched by client or exchange id."""
        start = order.created_at - 60_000
        from_id: int | None = None
        while True:
            try:
                trades = await self.exchange.my_trades(
                    order.symbol, start_time=None if from_id else start, from_id=from_id, limit=500
                )
            except READ_RETRY as exc:
                self.log.warning("my_trades failed; fills fetched on the next reconciliation", error=repr(exc))
                return
            for f in trades:
                if f.client_order_id == order.client_order_id or (
                    order.exchange_order_id and f.order_id == order.exchange_order_id
                ):
                    await self._apply_fill(order, f)
            if len(trades) < 500 or not trades[-1].trade_id.isdigit():
                return
            from_id = int(trades[-1].trade_id) + 1

    # ------------------------------------------------------------------ the state machine
    def _cycle_orders(self: TraderCore, cycle_id: str) -> list[Order]:  # type: ignore[misc]
        return [o for o in self.order_cache.values() if o.cycle_id == cycle_id]

    def _sellable(self: TraderCore, symbol: str, held: Decimal) -> Decimal | None:  # type: ignore[misc]
        """The quantity a MARKET sell of `held` may carry (rounded down), or None for dust."""
        r = self.rules[symbol]
        q = r.round_quantity(held, market=True)
        if q <= 0 or q < r.min_qty:
            return None
        px = self.last_price.get(symbol)
        if px is not None and r.notional_filter and r.min_notional_apply_to_market and q * px < r.min_notional:
            return None
        return q

    async def _advance(self: TraderCore, cycle_id: str) -> None:  # type: ignore[misc]
        """Derive the cycle's status and figures from its orders and fills; store and announce a change."""
        c = self.open.get(cycle_id)
        if c is None:
            self.untold_fills.pop(cycle_id, None)
            return
        entry = self.order_cache.get(c.entry_order_id or "")
        if entry is None:
            return
        self._adopt_stop_fill(c)  # an exchange stop that executed is the cycle's exit
        exit_ = self.order_cache.get(c.exit_order_id) if c.exit_order_id else None
        for o in (entry, exit_, *self._adds(cycle_id)):
            if o is not None and o.executed_quantity > sum(
                (f.quantity for f in self.fills.get(c.id, []) if f.client_order_id == o.client_order_id), Decimal(0)
            ):
                await self._fetch_fills(o)
                got = sum(
                    (f.quantity for f in self.fills.get(c.id, []) if f.client_order_id == o.client_order_id), Decimal(0)
                )
                if o.executed_quantity > got:
                    return  # fills not visible yet: decide when they are
        before = digest(c)
        base, quote = split_symbol(c.symbol, self.rules[c.symbol].quote_asset)
        pos = position(self.fills.get(c.id, []), base)
        status = c.status
        if exit_ is not None and not exit_.status.is_terminal:
            status = CycleStatus.WAITING_EXIT
        elif exit_ is not None and c.status is CycleStatus.WAITING_EXIT:
            if self._sellable(c.symbol, pos.held) is None and exit_.executed_quantity > 0:
                status = CycleStatus.COMPLETED
            else:
                status = CycleStatus.ACTIVE  # exit failed, expired or only reduced: still holding
                if exit_.status is OrderStatus.FILLED:
                    c.close_reason = None  # a reduce: nothing left to do
                else:  # close_reason kept: the exit is retried on the next price (see on_price)
                    self.log.warning(
                        "exit did not complete; retried on the next price",
                        cycle=c.id,
                        order=exit_.client_order_id,
                        status=exit_.status.value,
                        reason=exit_.reject_reason,
                    )
        elif entry.status is OrderStatus.PENDING_NEW:
            status = CycleStatus.INITIATING
        elif not entry.status.is_terminal:
            status = CycleStatus.ACTIVE if pos.bought > 0 else CycleStatus.WAITING_ENTRY
        elif pos.bought > 0:
            status = CycleStatus.ACTIVE
        elif entry.status is OrderStatus.REJECTED or entry.type is OrderType.MARKET:
            status = CycleStatus.FAILED
            c.close_reason = c.close_reason or entry.reject_reason or f"entry {entry.status.value} without a fill"
        else:
            status = CycleStatus.CANCELED
            c.close_reason = c.close_reason or f"entry {entry.status.value} without a fill"
        if status is CycleStatus.ACTIVE and entry.status.is_terminal and self._sellable(c.symbol, pos.held) is None:
            status = CycleStatus.COMPLETED
            c.close_reason = c.close_reason or f"position {pos.held} below the exchange minimum (dust, not sold)"
        if status is CycleStatus.ACTIVE and c.trailing_pct and c.trailing_extreme is None:
            c.trailing_extreme = pos.entry_price
        c.status = status
        apply_fills(c, self.fills.get(c.id, []), base, quote)
        if digest(c) != before or self.announced.get(c.id) != digest(c):
            await self._save_cycle(c)
        self._tell_fills(c)
        await self._protect(c)  # place or move its exchange stop (exchange_stops.py)
