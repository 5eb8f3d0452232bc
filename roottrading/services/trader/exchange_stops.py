"""Stops that survive downtime: a cycle's stop kept as a STOP_LOSS_LIMIT sell order on the exchange.

Why: the trader watches prices and sells at market when a stop is met, so while the platform is down (crash,
deploy, network cut) an open position has no stop. With exchange stops on (TRADER_EXCHANGE_STOPS, or a
strategy's `exchange_stop = True`), the exchange holds the stop instead:
- placed when the entry has filled (the cycle ACTIVE, its entry order done): a STOP_LOSS_LIMIT sell of the
  cycle's whole position at its stop level (the highest of the stop-loss and the trailing level), limit
  TRADER_EXCHANGE_STOP_LIMIT_PCT below; an OCO (that stop + a LIMIT_MAKER at the take-profit) when the cycle
  has a target, the symbol allows OCO and the strategy does not define confirm_exit (a target resting on the
  exchange cannot be vetoed). Each leg is stored like any order of the cycle (intent before it is sent) with a
  client id of its own (ids.protective_order_id). An intent the exchange never received is not re-sent by
  reconciliation (an OCO leg alone would be a second sell): it is abandoned and the stop placed anew;
- moved (cancel, then place the next one) when the level or the position changes: a trailing stop rising, a
  custom_stoploss, a position adjustment, a new target (OCO). At most once per TRADER_EXCHANGE_STOP_MOVE_S per cycle (exchange
  rate limits); a new order only once the old one is known cancelled, so two stops never rest at once;
- cancelled before any exit the platform starts (signal, take-profit, custom exit, manual, kill switch): if the
  cancel finds it filled, the cycle is already closed by the exchange and nothing else is sold. A cancel whose
  outcome is unknown postpones the exit (retried with back-off like a failed exit);
- its fill (seen live, or by reconciliation after a restart) makes it the cycle's exit: the cycle closes with
  reason "stop_loss (exchange)" ("take_profit (exchange)" for an OCO's limit leg) from the exchange's fills;
- while it rests the trader's local stop watching does not sell for that cycle (walk_exits(stops=False)),
  except after a gap through both its stop and its limit price (the triggered order cannot fill: the local
  stop cancels it and sells at market); it still raises the trailing extreme; the take-profit is local
  unless an OCO rests. When no stop can rest (no stop level, the price already below it, the symbol's
  MAX_NUM_ALGO_ORDERS reached, the exchange refused it) the local stops apply as before.
An adapter without OCO (OrderTypeNotSupported) gets plain stops on that symbol for the rest of the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from roottrading import ids
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Order, OrderStatus, OrderType, Side, TradeCycle
from roottrading.exchange.errors import BinanceError, ExchangeError, OrderTypeNotSupported
from roottrading.services.trader.orders import merge
from roottrading.services.trader.outcomes import UNKNOWN_OUTCOME
from roottrading.services.trader.position import position, trailing_level
from roottrading.services.trader.stops import STOP_TYPES

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore

EXCHANGE_STOP_REASON = "stop_loss (exchange)"
EXCHANGE_TARGET_REASON = "take_profit (exchange)"
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
    _no_oco: set[str]  # symbols whose exchange refused OCO as a type: plain stops there

    def _wants_exchange_stop(self: TraderCore, c: TradeCycle) -> bool:  # type: ignore[misc]
        """The strategy's `exchange_stop` (True/False) when it says, else the global setting."""
        own = self.hooks.attribute(c.strategy, "exchange_stop")
        return bool(own) if isinstance(own, bool) else self.xstops.enabled

    def _protectives(self: TraderCore, cycle_id: str) -> list[Order]:  # type: ignore[misc]
        return [o for o in self._cycle_orders(cycle_id) if ids.is_protective_order_id(o.client_order_id, cycle_id)]

    def _resting_stop(self: TraderCore, cycle_id: str) -> Order | None:  # type: ignore[misc]
        """The cycle's protective order still open on the exchange (or on its way there), if any."""
        return next((o for o in self._protectives(cycle_id) if not o.status.is_terminal), None)

    def _exchange_exits(self: TraderCore, cycle_id: str, path: Sequence[Decimal]) -> tuple[bool, bool]:  # type: ignore[misc]
        """(the exchange holds the stop, the exchange holds the target) for prices `path`: what the trader's
        own watching leaves alone. Not the stop when the prices start below its stop and its limit price (a
        tick, or a candle's open, that gapped through both): a triggered STOP_LOSS_LIMIT cannot fill there,
        so the local stop takes over (it cancels the order, then sells at market). Inside a candle the price
        moves continuously between its points, so a fall through the stop trades at it: the exchange fills."""
        resting = [o for o in self._protectives(cycle_id) if not o.status.is_terminal]
        stop = next((o for o in resting if o.type is OrderType.STOP_LOSS_LIMIT), None)
        if stop is None:
            return False, any(o.type is OrderType.LIMIT_MAKER for o in resting)
        first = path[0] if path else None
        if first is None or stop.price is None or stop.stop_price is None:
            held = True
        else:
            held = not (first <= stop.stop_price and first < stop.price)
        return held, any(o.type is OrderType.LIMIT_MAKER for o in resting)

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
                reason = EXCHANGE_TARGET_REASON if o.type is OrderType.LIMIT_MAKER else EXCHANGE_STOP_REASON
                c.exit_order_id, c.close_reason, c.status = o.client_order_id, reason, CycleStatus.WAITING_EXIT

    async def _unprotect(self: TraderCore, c: TradeCycle, reason: str) -> bool:  # type: ignore[misc]
        """Cancel the cycle's resting stop before an exit the platform starts. False when it may still rest
        (cancel outcome unknown): no exit may be sent then (it could sell twice); `reason` is kept so the
        exit is retried with back-off. Caller holds the lock."""
        if self._resting_stop(c.id) is None:
            return True
        previous = c.close_reason
        c.close_reason = previous or reason  # no re-placement by the _advance below
        await self._cancel_protection(c)
        if self._resting_stop(c.id) is None:
            if c.close_reason == (previous or reason):
                c.close_reason = previous  # the caller's exit decides (a stop fill would have set its own)
            return True
        self.log.warning("exit postponed: the exchange stop could not be cancelled", cycle=c.id, reason=reason)
        return False

    async def _cancel_protection(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        """Cancel every resting protective order of the cycle. Each OCO leg is asked about: cancelling one
        cancels its list, but the other's news may not have arrived yet (its cancel answers -2011, then
        `_cancel` reads its state). Caller holds the lock."""
        for o in [o for o in self._protectives(c.id) if not o.status.is_terminal]:
            current = self.order_cache.get(o.client_order_id, o)
            if not current.status.is_terminal:
                await self._cancel(current)
        await self._advance(c.id)

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

    def _oco_target(self: TraderCore, c: TradeCycle) -> Decimal | None:  # type: ignore[misc]
        """The take-profit an OCO would carry (rounded up to the tick), or None: a plain stop."""
        rules = self.rules[c.symbol]
        if c.take_profit is None or not rules.oco_allowed or c.symbol in self._no_oco:
            return None
        if not hasattr(self.exchange, "place_oco") or self.hooks.defines(c.strategy, "confirm_exit"):
            return None
        return rules.round_price_up(c.take_profit)

    async def _protect_now(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        rules = self.rules[c.symbol]
        level = self._stop_level(c)
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        qty = rules.round_quantity(position(self.fills.get(c.id, []), base).held)
        stop = rules.round_price(level) if level is not None else None
        target = self._oco_target(c)
        last = self.last_price.get(c.symbol)
        if target is not None and last is not None and last >= target:
            target = None  # at the target already: the local take-profit sells
        resting = [o for o in self._protectives(c.id) if not o.status.is_terminal]
        stop_leg = next((o for o in resting if o.type is OrderType.STOP_LOSS_LIMIT), None)
        limit_leg = next((o for o in resting if o.type is OrderType.LIMIT_MAKER), None)
        if (
            stop_leg is not None
            and (stop_leg.stop_price, stop_leg.quantity) == (stop, qty)
            and (limit_leg.price if limit_leg is not None else None) == target
        ):
            return  # in place
        now = self.clock.now_ms()
        placed = self._protectives(c.id)
        if placed and now - max(o.created_at for o in placed) < self.xstops.move_interval_ms:
            return  # moved (or tried) a moment ago: the next price tries again
        if resting:
            if any(o.status is OrderStatus.PENDING_NEW for o in resting):
                return  # its fate is unknown yet (reconciliation asks): never a second stop beside it
            await self._cancel_protection(c)
            if self._resting_stop(c.id) is not None or self.open.get(c.id) is not c or c.close_reason is not None:
                return  # not cancelled (tried again later), or it filled meanwhile: the cycle is exiting
        if stop is None or qty <= 0:
            return
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
            if target is not None:
                rules.check(Side.SELL, OrderType.LIMIT_MAKER, qty, target, None, last)
        except BinanceError as exc:
            self.log.warning("exchange stop not placed; the local stop applies", cycle=c.id, reason=exc.msg)
            return
        n = len(placed)

        def leg(k: int, type: OrderType, price: Decimal, stop_price: Decimal | None) -> Order:
            return Order(
                client_order_id=ids.protective_order_id(c.id, k),
                symbol=c.symbol,
                side=Side.SELL,
                type=type,
                quantity=qty,
                price=price,
                stop_price=stop_price,
                cycle_id=c.id,
                created_at=now,
                updated_at=now,
            )

        order = leg(n, OrderType.STOP_LOSS_LIMIT, limit, stop)
        await self._save_order(order, None)  # the intent, stored before it is sent
        if target is None:
            await self._send(order)
            return
        maker = leg(n + 1, OrderType.LIMIT_MAKER, target, None)
        await self._save_order(maker, None)
        await self._send_oco(c, order, maker, ids.client_order_id(c.id, f"oco:{n}"))

    async def _send_oco(  # type: ignore[misc]
        self: TraderCore, c: TradeCycle, stop: Order, maker: Order, list_id: str
    ) -> None:
        """Send both stored legs as one OCO. Outcome unknown: the legs stay PENDING_NEW for reconciliation.
        Any definite refusal, a rate limit included, rejects both (the stop is placed again after the move
        interval; the local stops apply meanwhile)."""

        try:
            answer = await self.exchange.place_oco(
                symbol=c.symbol,
                side=Side.SELL,
                quantity=stop.quantity,
                price=maker.price,
                stop_price=stop.stop_price,
                stop_limit_price=stop.price,
                list_client_order_id=list_id,
                limit_client_order_id=maker.client_order_id,
                stop_client_order_id=stop.client_order_id,
            )
        except (ExchangeError, *UNKNOWN_OUTCOME) as exc:
            if not isinstance(exc, BinanceError) or isinstance(exc, UNKNOWN_OUTCOME):
                self.stats["unknown_outcome"] += 1
                self.log.warning(
                    "OCO outcome unknown; its legs are asked for by client id", cycle=c.id, error=repr(exc)
                )
                return
            if isinstance(exc, OrderTypeNotSupported):  # a definite refusal from here on
                self._no_oco.add(c.symbol)  # plain stops on this symbol from now on
            self.stats["rejected"] += 1
            self.log.warning("OCO rejected; the local stops apply", cycle=c.id, code=exc.code, reason=exc.msg)
            now = self.clock.now_ms()
            for o in (stop, maker):
                reason = f"{exc.code}: {exc.msg}"
                rejected = msgspec.structs.replace(o, status=OrderStatus.REJECTED, reject_reason=reason, updated_at=now)
                await self._save_order(rejected, "REJECTED")
        else:
            self.stats["orders_sent"] += 1
            for remote in answer.orders:
                local = self.order_cache.get(remote.client_order_id)
                merged = merge(local, remote) if local is not None else None
                if merged is not None:
                    await self._save_order(merged, "NEW")
        await self._drain()
        await self._advance(c.id)
