"""Stops that survive downtime: a cycle's stop kept as a STOP_LOSS_LIMIT sell order on the exchange.

Why: the trader watches prices and sells at market when a stop is met, so while the platform is down (crash,
deploy, network cut) an open position has no stop. With exchange stops on (TRADER_EXCHANGE_STOPS, or a
strategy's `exchange_stop = True`), the exchange holds the stop instead:
- placed when the entry has filled (the cycle ACTIVE, its entry order done): a STOP_LOSS_LIMIT sell of the
  cycle's whole position at its stop level (the highest of the stop-loss and the trailing level), limit
  TRADER_EXCHANGE_STOP_LIMIT_PCT below. Stored like any order of the cycle (intent before it is sent), with a
  client id of its own (ids.protective_order_id), re-sent by reconciliation like an exit;
- moved (cancel, then place the next one) when the level or the position changes: a trailing stop rising, a
  custom_stoploss, a position adjustment. At most once per TRADER_EXCHANGE_STOP_MOVE_S per cycle (exchange
  rate limits); a new order only once the old one is known cancelled, so two stops never rest at once;
- cancelled before any exit the platform starts (signal, take-profit, custom exit, manual, kill switch): if the
  cancel finds it filled, the cycle is already closed by the exchange and nothing else is sold. A cancel whose
  outcome is unknown postpones the exit (retried with back-off like a failed exit);
- its fill (seen live, or by reconciliation after a restart) makes it the cycle's exit: the cycle closes with
  reason "stop_loss (exchange)" from the exchange's own fills;
- while it rests the trader's local stop watching does not sell for that cycle (walk_exits(stops=False)); it
  still raises the trailing extreme, and the take-profit stays local. When no stop can rest (no stop level,
  the price already below it, the symbol's MAX_NUM_ALGO_ORDERS reached, the exchange refused it) the local
  stops apply as before.
Not done: an OCO with the take-profit (the exchange port has place_oco; the target is watched locally).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from roottrading import ids
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Order, OrderType, Side, TradeCycle
from roottrading.exchange.errors import BinanceError
from roottrading.services.trader.position import position, trailing_level
from roottrading.services.trader.stops import STOP_TYPES

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore

EXCHANGE_STOP_REASON = "stop_loss (exchange)"
HUNDRED = Decimal(100)


class ExchangeStopsConfig:
    """The global switch and the tuning (config_tuning.py: trader_exchange_stop*)."""

    def __init__(self, enabled: bool = False, move_interval_ms: int = 10_000, limit_pct: Decimal = Decimal("0.5")):
        self.enabled = enabled
        self.move_interval_ms = move_interval_ms
        self.limit_pct = limit_pct


class ExchangeStopsMixin:
    xstops: ExchangeStopsConfig
    _protecting: set[str]

    def _wants_exchange_stop(self: TraderCore, c: TradeCycle) -> bool:  # type: ignore[misc]
        """The strategy's `exchange_stop` (True/False) when it says, else the global setting."""
        own = self.hooks.attribute(c.strategy, "exchange_stop")
        return bool(own) if isinstance(own, bool) else self.xstops.enabled

    def _protectives(self: TraderCore, cycle_id: str) -> list[Order]:  # type: ignore[misc]
        return [o for o in self._cycle_orders(cycle_id) if ids.is_protective_order_id(o.client_order_id, cycle_id)]

    def _resting_stop(self: TraderCore, cycle_id: str) -> Order | None:  # type: ignore[misc]
        """The cycle's protective order still open on the exchange (or on its way there), if any."""
        return next((o for o in self._protectives(cycle_id) if not o.status.is_terminal), None)

    def _exit_sells(self: TraderCore, cycle_id: str) -> list[Order]:  # type: ignore[misc]
        """The cycle's exit orders: its sells that are not protective stops (their count names the next exit)."""
        return [
            o
            for o in self._cycle_orders(cycle_id)
            if o.side is Side.SELL and not ids.is_protective_order_id(o.client_order_id, cycle_id)
        ]

    def _adopt_stop_fill(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        """A protective order that executed becomes the cycle's exit (start of `_advance`): the cycle waits
        for it, then completes from its fills, or stays ACTIVE and sells the rest if it only partly filled."""
        current = self.order_cache.get(c.exit_order_id or "")
        if current is not None and not current.status.is_terminal:
            return  # an exit under way: the protective order was cancelled before it was sent
        for o in self._protectives(c.id):
            if o.executed_quantity > 0 and o.client_order_id != c.exit_order_id:
                self.log.info("exchange stop executed", cycle=c.id, order=o.client_order_id, status=o.status.value)
                c.exit_order_id, c.close_reason, c.status = (
                    o.client_order_id,
                    EXCHANGE_STOP_REASON,
                    CycleStatus.WAITING_EXIT,
                )

    async def _unprotect(self: TraderCore, c: TradeCycle, reason: str) -> bool:  # type: ignore[misc]
        """Cancel the cycle's resting stop before an exit the platform starts. False when it may still rest
        (cancel outcome unknown): no exit may be sent then (it could sell twice); `reason` is kept so the
        exit is retried with back-off. Caller holds the lock."""
        resting = self._resting_stop(c.id)
        if resting is None:
            return True
        c.close_reason = c.close_reason or reason  # no re-placement by the _advance below
        await self._cancel(resting)
        await self._advance(c.id)
        if self._resting_stop(c.id) is None:
            return True
        self.log.warning("exit postponed: the exchange stop could not be cancelled", cycle=c.id, reason=reason)
        return False

    def _stop_level(self: TraderCore, c: TradeCycle) -> Decimal | None:  # type: ignore[misc]
        levels = [c.stop_loss] if c.stop_loss is not None else []
        if c.trailing_pct and c.trailing_extreme is not None:
            levels.append(trailing_level(c.trailing_extreme, c.trailing_pct))
        return max(levels) if levels else None

    async def _protect(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        """Place, move or keep the cycle's exchange stop so it matches its stop level and position. Called
        after `_advance` and after each price; a no-op unless the cycle wants one. Caller holds the lock."""
        if c.id in self._protecting or c.status is not CycleStatus.ACTIVE or c.close_reason is not None:
            return
        if c.symbol not in self.rules or not self._wants_exchange_stop(c):
            return
        entry = self.order_cache.get(c.entry_order_id or "")
        exit_ = self.order_cache.get(c.exit_order_id or "")
        if entry is None or not entry.status.is_terminal or (exit_ is not None and not exit_.status.is_terminal):
            return
        self._protecting.add(c.id)
        try:
            await self._protect_now(c)
        finally:
            self._protecting.discard(c.id)

    async def _protect_now(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        rules = self.rules[c.symbol]
        level = self._stop_level(c)
        resting = self._resting_stop(c.id)
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        qty = rules.round_quantity(position(self.fills.get(c.id, []), base).held)
        stop = rules.round_price(level) if level is not None else None
        if resting is not None and resting.stop_price == stop and resting.quantity == qty:
            return  # in place
        now = self.clock.now_ms()
        placed = self._protectives(c.id)
        if placed and now - max(o.created_at for o in placed) < self.xstops.move_interval_ms:
            return  # moved (or tried) a moment ago: the next price tries again
        if resting is not None:
            if resting.status.value == "PENDING_NEW":
                return  # its fate is unknown yet (reconciliation asks): never a second stop beside it
            await self._cancel(resting)
            await self._advance(c.id)
            if self._resting_stop(c.id) is not None or self.open.get(c.id) is not c or c.close_reason is not None:
                return  # not cancelled (tried again later), or it filled meanwhile: the cycle is exiting
        if stop is None or qty <= 0:
            return
        last = self.last_price.get(c.symbol)
        if last is not None and last <= stop:
            return  # would trigger at once (Binance refuses it): the local stop sells
        limit = rules.round_price(stop * (1 - self.xstops.limit_pct / HUNDRED))
        algo = sum(
            1
            for o in self.order_cache.values()
            if o.symbol == c.symbol and o.type in STOP_TYPES and not o.status.is_terminal
        )
        if rules.max_num_algo_orders is not None and algo >= rules.max_num_algo_orders:
            self.log.warning("exchange stop not placed: the symbol's stop-order limit is reached", cycle=c.id)
            return
        try:
            rules.check(Side.SELL, OrderType.STOP_LOSS_LIMIT, qty, limit, stop, last)
        except BinanceError as exc:
            self.log.warning("exchange stop not placed; the local stop applies", cycle=c.id, reason=exc.msg)
            return
        order = Order(
            client_order_id=ids.protective_order_id(c.id, len(placed)),
            symbol=c.symbol,
            side=Side.SELL,
            type=OrderType.STOP_LOSS_LIMIT,
            quantity=qty,
            price=limit,
            stop_price=stop,
            cycle_id=c.id,
            created_at=now,
            updated_at=now,
        )
        await self._save_order(order, None)  # the intent, stored before it is sent
        await self._send(order)
