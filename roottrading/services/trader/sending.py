"""From an order request to a stored, sent order: entries, exits and their retries.

Why a mixin apart from core.py: the crash-safety rule "an intent is stored before it is sent" is kept here,
in one place, for every order the trader makes.
- `handle_request`: a BUY opens a cycle (`_open`: the cycle and its entry intent stored in one transaction,
  claiming the coordinator's reservation, then sent); a SELL exits the strategy's open cycles, oldest first
  (`_exit_request`, a take-profit or signal exit confirmed by the strategy first).
- `start_exit` sells what a cycle holds (its exchange stop cancelled first: never two sells of one position);
  `_retry_exit` sends a failed exit again once its back-off (exit_retry_delay_ms) has passed, never giving up.
- `_send` reads the exchange's answer (outcomes.py): a definite rejection is stored REJECTED, an unknown
  outcome stays PENDING_NEW for reconciliation, a duplicate client id adopts the exchange's state (`_adopt`);
  `_cancel` does the same for cancels.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from roottrading import ids
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Order, OrderRequest, OrderStatus, OrderType, Side, TradeCycle
from roottrading.exchange.errors import BinanceError, CancelRejected, DuplicateOrder, ExchangeError, NoSuchOrder
from roottrading.services.trader.orders import entry_order, merge
from roottrading.services.trader.outcomes import READ_RETRY, RETRY_LATER, UNKNOWN_OUTCOME
from roottrading.services.trader.position import position
from roottrading.store.repos_orders import ReservationNotLive
from roottrading.strategies.cycle_callbacks import VETOABLE_EXITS

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore

MAX_EXIT_ATTEMPTS = 5  # failed exits of one cycle before an alert-level log line; retries go on (back-off)
EXIT_RETRY_BASE_MS = 60_000  # a rejected/expired exit is tried again after 1, 2, 4, ... minutes of market time
EXIT_RETRY_MAX_MS = 3_600_000  # ... at most an hour apart, for as long as the position is open


def exit_retry_delay_ms(failed_exits: int) -> int:
    """Market time to wait after the `failed_exits`-th failed exit: never once per price, never given up."""
    return int(min(EXIT_RETRY_BASE_MS * 2 ** max(0, min(failed_exits - 1, 30)), EXIT_RETRY_MAX_MS))


class SendingMixin:
    """Requests into stored intents, intents sent, exits started and retried (TraderCore's order path)."""

    # ------------------------------------------------------------------ sending
    async def _send(self: TraderCore, order: Order) -> None:  # type: ignore[misc]
        """Send a stored intent. Definite rejection -> REJECTED; unknown outcome -> stays PENDING_NEW."""
        try:
            remote = await self.exchange.place_order(
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                client_order_id=order.client_order_id,
                quantity=order.quantity,
                price=order.price,
                stop_price=order.stop_price,
                time_in_force=order.time_in_force,
            )
        except DuplicateOrder:
            await self._adopt(order)
        except RETRY_LATER as exc:
            self.log.warning(
                "exchange busy; intent kept for the next reconciliation", order=order.client_order_id, error=str(exc)
            )
        except BinanceError as exc:
            if isinstance(exc, UNKNOWN_OUTCOME):
                await self._unknown(order, exc)
                return
            self.stats["rejected"] += 1
            self.log.warning("order rejected", order=order.client_order_id, code=exc.code, reason=exc.msg)
            rejected = msgspec.structs.replace(
                order,
                status=OrderStatus.REJECTED,
                reject_reason=f"{exc.code}: {exc.msg}",
                updated_at=self.clock.now_ms(),
            )
            await self._save_order(rejected, "REJECTED")
        except (ExchangeError, *UNKNOWN_OUTCOME) as exc:
            await self._unknown(order, exc)
        else:
            self.stats["orders_sent"] += 1
            local = self.order_cache.get(order.client_order_id, order)
            merged = merge(local, remote)
            if merged is not None:
                await self._save_order(merged, "NEW")
        await self._drain()
        if order.cycle_id:
            await self._advance(order.cycle_id)

    async def _unknown(self: TraderCore, order: Order, exc: BaseException) -> None:  # type: ignore[misc]
        self.stats["unknown_outcome"] += 1
        self.log.warning("order outcome unknown; will query by client id", order=order.client_order_id, error=repr(exc))

    async def _adopt(self: TraderCore, order: Order) -> None:  # type: ignore[misc]
        """The exchange already has this client id (a resend after an unknown outcome): take its state."""
        try:
            remote = await self.exchange.get_order(order.symbol, order.client_order_id)
        except READ_RETRY as exc:
            self.log.warning("cannot query order", order=order.client_order_id, error=repr(exc))
            return
        await self._apply_remote(remote, None, "RECONCILED")

    async def _cancel(self: TraderCore, order: Order) -> None:  # type: ignore[misc]
        try:
            remote = await self.exchange.cancel_order(order.symbol, order.client_order_id)
        except (CancelRejected, NoSuchOrder):
            try:
                remote = await self.exchange.get_order(order.symbol, order.client_order_id)
            except NoSuchOrder:
                remote = msgspec.structs.replace(
                    order, status=OrderStatus.REJECTED, reject_reason="canceled before it reached the exchange"
                )
        except UNKNOWN_OUTCOME + RETRY_LATER as exc:
            self.log.warning("cancel failed; retried by reconciliation", order=order.client_order_id, error=repr(exc))
            return
        await self._drain()
        await self._apply_remote(remote, None, "CANCELED")

    # ------------------------------------------------------------------ requests
    async def handle_request(self: TraderCore, req: OrderRequest) -> TradeCycle | None:  # type: ignore[misc]
        async with self.lock:
            self.stats["requests"] += 1
            if req.side is Side.BUY:
                return await self._open(req)
            await self._exit_request(req)
            return None

    async def _open(self: TraderCore, req: OrderRequest) -> TradeCycle | None:  # type: ignore[misc]
        cid = ids.cycle_id(req.id)
        existing = self.open.get(cid)
        if existing is not None:
            self.stats["duplicates"] += 1
            return existing  # redelivered request: one cycle, one order
        now = self.clock.now_ms()
        coid = ids.client_order_id(req.id, "entry")
        c = TradeCycle(
            id=cid,
            symbol=req.symbol,
            strategy=req.strategy,
            side=Side.BUY,
            status=CycleStatus.INITIATING,
            created_at=now,
            updated_at=now,
            entry_order_id=coid,
            stop_loss=req.stop_loss,
            take_profit=req.take_profit,
            trailing_pct=req.trailing_pct,
            signal_id=req.signal_id,
            reservation_id=req.reservation_id,
            entry_tag=req.tag,
        )
        rules = self.rules.get(req.symbol)
        order: Order | None = None
        reason: str | None = None
        if self.paused or req.strategy in self.paused_strategies:
            c.status, c.close_reason = CycleStatus.CANCELED, "trading paused: entry not sent"
        elif rules is None:
            c.status, c.close_reason = CycleStatus.FAILED, f"unknown symbol {req.symbol}"
        else:
            try:
                order = entry_order(req, rules, self.last_price.get(req.symbol), coid, cid, now)
            except BinanceError as exc:
                reason = f"{exc.code}: {exc.msg}"
                c.status, c.close_reason = CycleStatus.FAILED, reason
        if order is None:  # refused before sending: recorded once, never over an existing cycle
            if await self.cycles.get(cid) is not None:
                self.stats["duplicates"] += 1
                return await self.cycles.get(cid)
            if reason is not None:
                await self.orders.save(
                    Order(
                        client_order_id=coid,
                        symbol=req.symbol,
                        side=Side.BUY,
                        type=req.type,
                        quantity=req.quantity or Decimal(0),
                        price=req.price,
                        cycle_id=cid,
                        status=OrderStatus.REJECTED,
                        reject_reason=reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
            await self._save_cycle(c)
            return c
        # the cycle and the intent, in one transaction, before anything is sent (claiming the reservation)
        try:
            created = await self.cycles.create_with_order(c, order, demo=self.orders.demo)
        except ReservationNotLive:  # released meanwhile (reconciliation after a long delay): never sent
            self.log.warning(
                "entry not sent: its reservation was released", request=req.id, reservation=c.reservation_id
            )
            c.status, c.close_reason = CycleStatus.CANCELED, "reservation released before the entry was sent"
            await self._save_cycle(c)
            return c
        if not created:
            self.stats["duplicates"] += 1
            return await self.cycles.get(cid)
        self.open[cid] = c
        self.order_cache[order.client_order_id] = order
        await self._send(order)
        await self._advance(cid)
        return self.open.get(cid) or c

    async def _exit_request(self: TraderCore, req: OrderRequest) -> None:  # type: ignore[misc]
        targets = sorted(
            (
                c
                for c in self.open.values()
                if c.symbol == req.symbol
                and c.strategy == req.strategy
                and c.status in (CycleStatus.ACTIVE, CycleStatus.WAITING_ENTRY)
            ),
            key=lambda c: c.created_at,
        )
        if not targets:
            self.log.info(
                "exit request without an open position", request=req.id, symbol=req.symbol, strategy=req.strategy
            )
            return
        remaining = req.quantity
        for c in targets:
            if remaining is not None and remaining <= 0:
                break
            coid = ids.client_order_id(req.id, f"exit:{c.id}")
            if await self._order(coid) is not None:
                self.stats["duplicates"] += 1
                continue
            reason = "manual" if req.strategy == "manual" else "signal"
            price = self.last_price.get(c.symbol) or c.entry_price or Decimal(0)
            if reason in VETOABLE_EXITS and not await self._exit_confirmed(c, reason, price):
                continue
            c.exit_tag = req.tag or c.exit_tag
            order = await self.start_exit(
                c, reason, quantity=remaining, client_order_id=coid, type=req.type, price=req.price
            )
            if order is not None and remaining is not None:
                remaining -= order.quantity

    async def start_exit(  # type: ignore[misc]
        self: TraderCore,
        c: TradeCycle,
        reason: str,
        *,
        quantity: Decimal | None = None,
        client_order_id: str | None = None,
        type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order | None:
        """Sell what the cycle holds (or `quantity` of it). Caller holds the lock. Returns the exit order,
        None when there is nothing to sell (an unfilled entry is cancelled instead). `stop_price` makes a
        STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT exit (a simulated stop, see on_price)."""
        entry = self.order_cache.get(c.entry_order_id or "")
        if entry is not None and not entry.status.is_terminal:
            await self._cancel(entry)
            await self._advance(c.id)
        if not await self._unprotect(c, reason):  # its exchange stop first: never two sells of one position
            return None
        c = self.open.get(c.id)  # type: ignore[assignment]
        if c is None or c.status is not CycleStatus.ACTIVE:
            return None
        rules = self.rules[c.symbol]
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        held = position(self.fills.get(c.id, []), base).held
        want = held if quantity is None else min(quantity, held)
        market = type is OrderType.MARKET
        qty = rules.round_quantity(want, market=market)
        px = rules.round_price(price) if price is not None and not market else None
        stop = rules.round_price(stop_price) if stop_price is not None and not market else None
        try:
            rules.check(Side.SELL, type, qty, px, stop, self.last_price.get(c.symbol))
        except BinanceError as exc:
            self.log.warning("exit not possible", cycle=c.id, quantity=str(qty), reason=exc.msg)
            return None
        n = len(self._exit_sells(c.id))
        coid = client_order_id or ids.client_order_id(c.id, f"exit:{n}")
        now = self.clock.now_ms()
        order = Order(
            client_order_id=coid,
            symbol=c.symbol,
            side=Side.SELL,
            type=type,
            quantity=qty,
            price=px,
            stop_price=stop,
            cycle_id=c.id,
            created_at=now,
            updated_at=now,
        )
        await self._save_order(order, None)
        c.exit_order_id, c.close_reason, c.status = coid, reason, CycleStatus.WAITING_EXIT
        await self._save_cycle(c)
        await self._send(order)
        return self.order_cache.get(coid, order)

    async def _retry_exit(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        """Send the exit of a cycle whose last exit failed again once its back-off has passed. Caller holds
        the lock. After MAX_EXIT_ATTEMPTS failures an alert-level line (once per cycle) asks for a human."""
        sells = self._exit_sells(c.id)
        if sells:
            last = max(o.updated_at for o in sells)
            if self.clock.now_ms() - last < exit_retry_delay_ms(len(sells)):
                return
        if len(sells) >= MAX_EXIT_ATTEMPTS and c.id not in self.exit_alerted:
            self.exit_alerted.add(c.id)
            last_reason = max(sells, key=lambda o: o.updated_at).reject_reason if sells else None
            self.log.critical(
                "exit keeps failing; the position is still open and its exit is retried with back-off",
                cycle=c.id,
                symbol=c.symbol,
                attempts=len(sells),
                reason=c.close_reason,
                last_error=last_reason,
            )
        await self.start_exit(c, c.close_reason or "retry")
