"""Reconciliation, kill switch, manual close/cancel: the trader's recovery and control paths.

Why separate from core.py: these paths run rarely but must be obviously right. Reconciliation asks the
exchange about every non-terminal order *by client order id* and adopts its answer; an intent the
exchange never saw is re-sent with the SAME client id (entries only while still fresh; exits always, since
an exit exists to reduce risk), so a crash at any line can neither lose nor double an order.
It then compares the open cycles with the account's balances: a position the account no longer holds (sold
by hand on the exchange, coins moved away, a paper account lost) is closed as "closed outside the platform"
with an alert, instead of an exit that would be rejected "insufficient balance" for ever.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from roottrading import ids
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Order, OrderStatus, Side, TradeCycle
from roottrading.exchange.errors import NoSuchOrder
from roottrading.ids import is_our_client_order_id
from roottrading.services.trader.outcomes import READ_RETRY
from roottrading.services.trader.position import position

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore


class ControlMixin:
    async def reconcile(self: TraderCore) -> dict[str, int]:  # type: ignore[misc]
        """Align every non-terminal stored order and open cycle with the exchange. Returns counters."""

        out = {"checked": 0, "adopted": 0, "resent": 0, "abandoned": 0, "unreachable": 0}
        out |= {"adopted_unknown": 0, "foreign": 0, "closed_outside": 0, "young": 0, "others": 0}
        async with self.lock:
            await self._drain()
            for stored in await self.orders.open_orders():
                order = self.order_cache.get(stored.client_order_id, stored)
                if order.status.is_terminal:
                    continue
                if not self.owner.owns(order.symbol):
                    out["others"] += 1  # another instance's symbol: its business
                    continue
                out["checked"] += 1
                try:
                    remote = await self.exchange.get_order(order.symbol, order.client_order_id)
                except NoSuchOrder:
                    await self._never_arrived(order, out)
                    continue
                except READ_RETRY as exc:  # any failed read: the order is left as it is, retried next pass
                    out["unreachable"] += 1
                    self.log.warning("reconcile: exchange unreachable", order=order.client_order_id, error=repr(exc))
                    continue
                out["adopted"] += 1
                await self._apply_remote(remote, None, "RECONCILED")
            await self._adopt_unknown(out)
            for cid in list(self.open):
                await self._advance(cid)
            await self._drain()
            await self._check_positions(out)
        if any(out[k] for k in ("resent", "abandoned", "adopted_unknown", "closed_outside")):
            self.log.info("reconciled with the exchange", **out)
        return out

    async def _adopt_unknown(self: TraderCore, out: dict[str, int]) -> None:  # type: ignore[misc]
        """The exchange's side of the story: its open orders and recent trades. An order with OUR client-id
        prefix that the store does not know (its intent's commit was lost: a power cut, a restored backup) is
        adopted, so the position it opened or closed is managed again; a person's orders (any other id) are
        counted and left alone. Caller holds the lock."""

        found: dict[str, Order] = {}
        try:
            for o in await self.exchange.open_orders(None):
                if self.owner.owns(o.symbol):
                    found.setdefault(o.client_order_id, o)
            for symbol in sorted(s for s in self.rules if self.owner.owns(s)):
                # from the newest trade already checked (less a minute of overlap), the lookback the first time
                since = self.adopt_checked_to.get(symbol, self.clock.now_ms() - self.adopt_lookback_ms)
                unknown: dict[str, None] = {}
                for f in await self.exchange.my_trades(symbol, start_time=since, limit=1000):
                    self.adopt_checked_to[symbol] = max(self.adopt_checked_to.get(symbol, 0), f.time - 60_000)
                    coid = f.client_order_id
                    if coid in found or coid in unknown or coid in self.order_cache:
                        continue
                    if is_our_client_order_id(coid) and await self.orders.get(coid) is None:
                        unknown[coid] = None
                for coid in unknown:
                    found[coid] = await self.exchange.get_order(symbol, coid)
        except READ_RETRY as exc:
            out["unreachable"] += 1
            self.log.warning("reconcile: exchange orders/trades unreadable", error=repr(exc))
            return
        for coid, remote in found.items():
            if not is_our_client_order_id(coid):
                out["foreign"] += 1
                continue
            if await self._order(coid) is not None:
                continue
            await self._adopt_lost(remote)
            out["adopted_unknown"] += 1

    def _quiet(self: TraderCore, c: TradeCycle) -> bool:  # type: ignore[misc]
        """No order of the cycle in flight and every executed quantity in its fills: its position is exact."""
        for o in self._cycle_orders(c.id):
            if not o.status.is_terminal:
                return False
            got = sum(
                (f.quantity for f in self.fills.get(c.id, []) if f.client_order_id == o.client_order_id), Decimal(0)
            )
            if o.executed_quantity > got:
                return False
        return True

    async def _check_positions(self: TraderCore, out: dict[str, int]) -> None:  # type: ignore[misc]
        """Close the cycles whose coins the account no longer holds, newest first, until what is left of the
        open cycles fits the balance. Only an asset whose cycles are all quiet (nothing in flight, fills
        complete) is judged: a fill not yet seen must not look like a position sold by hand. The PnL of such
        a close is unknown (the sale, if any, was not ours): `profit_loss` stays None and the reservation is
        released with 0 by whoever settles cycles. Caller holds the lock."""

        by_base: dict[str, list[tuple[TradeCycle, Decimal]]] = {}
        for c in self.open.values():
            if c.status not in (CycleStatus.ACTIVE, CycleStatus.WAITING_EXIT) or c.symbol not in self.rules:
                continue
            if not self.owner.owns(c.symbol):
                continue
            base, _ = split_symbol(c.symbol, self.rules[c.symbol].quote_asset)
            held = position(self.fills.get(c.id, []), base).held
            if held > 0:
                by_base.setdefault(base, []).append((c, held))
        if not by_base:
            return
        try:
            balances = await self.exchange.balances()
        except READ_RETRY as exc:
            self.log.warning("reconcile: balances unreadable; positions checked next time", error=repr(exc))
            return
        for base, cycles in sorted(by_base.items()):
            if not all(self._quiet(c) for c, _ in cycles):
                continue
            bal = balances.get(base)
            have = bal.free + bal.locked if bal is not None else Decimal(0)
            expected = sum((h for _, h in cycles), Decimal(0))
            tolerance = max(self.rules[c.symbol].step_size for c, _ in cycles)
            for c, held in sorted(cycles, key=lambda x: (x[0].created_at, x[0].id), reverse=True):
                if expected - have <= tolerance:
                    break
                await self._closed_outside(c, held, have, expected)
                expected -= held
                out["closed_outside"] += 1

    async def _closed_outside(  # type: ignore[misc]
        self: TraderCore, c: TradeCycle, held: Decimal, have: Decimal, expected: Decimal
    ) -> None:
        base, _ = split_symbol(c.symbol, self.rules[c.symbol].quote_asset)
        c.status = CycleStatus.COMPLETED
        c.close_reason = (
            f"closed outside the platform: the account holds {have} {base}, the open cycles {expected} "
            "(sold by hand or moved?); PnL unknown"
        )
        c.profit_loss = c.profit_loss_percent = None
        self.log.critical(
            "position gone from the account: cycle closed outside the platform",
            cycle=c.id,
            symbol=c.symbol,
            held_by_cycle=str(held),
            account_balance=str(have),
            held_by_open_cycles=str(expected),
            reservation=c.reservation_id,
        )
        await self._save_cycle(c)

    async def _adopt_lost(self: TraderCore, remote: Order) -> None:  # type: ignore[misc]
        """Store an order of ours that the store lost, attached to its cycle: a SELL to the open cycle whose
        deterministic exit id it carries, a BUY to a new cycle (strategy "adopted", no stops: a human decides)."""
        cycle = next(
            (
                c
                for c in self.open.values()
                if c.symbol == remote.symbol
                and (
                    ids.is_protective_order_id(remote.client_order_id, c.id)  # its exchange stop
                    or any(ids.client_order_id(c.id, f"exit:{n}") == remote.client_order_id for n in range(64))
                )
            ),
            None,
        )
        now = self.clock.now_ms()
        if cycle is None and remote.side is Side.BUY:
            cycle = TradeCycle(
                id=f"cy-adopted-{remote.client_order_id[2:22]}",
                symbol=remote.symbol,
                strategy="adopted",
                side=Side.BUY,
                status=CycleStatus.INITIATING,
                created_at=remote.created_at or now,
                updated_at=now,
                entry_order_id=remote.client_order_id,
                close_reason=None,
            )
            self.open[cycle.id] = cycle
            await self._save_cycle(cycle)
        elif cycle is not None and not ids.is_protective_order_id(remote.client_order_id, cycle.id):
            cycle.exit_order_id, cycle.status = remote.client_order_id, CycleStatus.WAITING_EXIT
            cycle.close_reason = cycle.close_reason or "adopted exit"
            await self._save_cycle(cycle)
        order = msgspec.structs.replace(remote, cycle_id=cycle.id if cycle is not None else None)
        await self._save_order(order, "ADOPTED")
        await self._fetch_fills(order)
        self.log.critical(
            "adopted an order of ours that the store did not know (lost commit?)",
            order=remote.client_order_id,
            symbol=remote.symbol,
            side=remote.side.value,
            status=remote.status.value,
            cycle=cycle.id if cycle is not None else None,
        )
        if cycle is not None:
            await self._advance(cycle.id)

    async def _never_arrived(self: TraderCore, order: Order, out: dict[str, int]) -> None:  # type: ignore[misc]
        if order.status is not OrderStatus.PENDING_NEW:
            gone = msgspec.structs.replace(
                order,
                status=OrderStatus.EXPIRED,
                updated_at=self.clock.now_ms(),
                reject_reason="acknowledged earlier but unknown to the exchange now",
            )
            await self._save_order(gone, "EXPIRED")
            out["abandoned"] += 1
        else:
            cycle = self.open.get(order.cycle_id or "")
            is_exit = cycle is not None and cycle.entry_order_id != order.client_order_id
            age = self.clock.now_ms() - order.created_at
            if age < self.resend_min_age_ms:
                # maybe still on its way: the process that stored it (this one before a crash, or the previous
                # owner of the symbol) may be sending it right now; a second send could fill twice, since Binance
                # refuses a duplicate client id only among OPEN orders. Left for a later pass (ownership.py).
                out["young"] += 1
                return
            # an exchange stop is placed anew instead (an OCO leg re-sent alone would be a second sell)
            protective = ids.is_protective_order_id(order.client_order_id, order.cycle_id or "")
            if not protective and (is_exit or age <= self.resend_window_ms):
                out["resent"] += 1
                self.stats["resent"] += 1
                self.log.info(
                    "re-sending an intent the exchange never received", order=order.client_order_id, age_ms=age
                )
                await self._send(order)  # same client id: never a new one
                return
            dead = msgspec.structs.replace(
                order,
                status=OrderStatus.REJECTED,
                updated_at=self.clock.now_ms(),
                reject_reason="exchange stop not sent before a restart: placed anew"
                if protective
                else f"not sent: intent {age} ms old when the trader recovered (limit {self.resend_window_ms} ms)",
            )
            await self._save_order(dead, "REJECTED")
            out["abandoned"] += 1
        if order.cycle_id:
            await self._advance(order.cycle_id)

    # ------------------------------------------------------------------ control
    async def kill_switch(self: TraderCore, reason: str) -> int:  # type: ignore[misc]
        """Stop entries, cancel every open order, close every open cycle at market. Returns cycles touched."""
        async with self.lock:
            self.paused = self.killed = True
            self.log.warning("kill switch: closing every open cycle", reason=reason)
            touched = 0
            for cid in list(self.open):
                c = self.open.get(cid)
                if c is None:
                    continue
                touched += 1
                exit_ = self.order_cache.get(c.exit_order_id or "")
                if exit_ is not None and not exit_.status.is_terminal and exit_.type.value != "MARKET":
                    await self._cancel(exit_)  # a resting limit exit becomes a market exit
                await self._advance(cid)
                c = self.open.get(cid)
                if c is not None and c.status in (
                    CycleStatus.ACTIVE,
                    CycleStatus.WAITING_ENTRY,
                    CycleStatus.INITIATING,
                ):
                    await self.start_exit(c, "kill_switch")
            for o in [
                o
                for o in self.order_cache.values()
                if not o.status.is_terminal
                and o.type.value != "MARKET"
                and o.status is not OrderStatus.PENDING_NEW
                and o.cycle_id not in self.open
            ]:
                await self._cancel(o)
            return touched

    async def close(self: TraderCore, cycle_id: str, reason: str = "manual") -> TradeCycle:  # type: ignore[misc]
        """Manual close. Raises KeyError (unknown cycle) or ValueError (not closable now)."""
        async with self.lock:
            c = self.open.get(cycle_id)
            if c is None:
                stored = await self.cycles.get(cycle_id)
                if stored is None:
                    raise KeyError(cycle_id)
                if not stored.status.is_terminal and not self.owner.owns(stored.symbol):
                    raise ValueError(
                        f"cycle {cycle_id} is managed by the trader instance that owns {stored.symbol} "
                        "(see `owns` in each trader's GET /health): ask that one"
                    )
                raise ValueError(f"cycle {cycle_id} is {stored.status.value}: nothing to close")
            if c.status in (CycleStatus.WAITING_EXIT, CycleStatus.INITIATING):
                raise ValueError(f"cycle {cycle_id} is {c.status.value}: wait for the pending order")
            await self.start_exit(c, reason)
            return self.open.get(cycle_id) or await self.cycles.get(cycle_id)

    async def cancel(self: TraderCore, client_order_id: str) -> Order:  # type: ignore[misc]
        """Cancel one order by client id. KeyError: unknown; ValueError: already terminal."""
        async with self.lock:
            order = await self._order(client_order_id)
            if order is None:
                raise KeyError(client_order_id)
            if order.status.is_terminal:
                raise ValueError(f"order {client_order_id} is {order.status.value}")
            await self._cancel(order)
            cycle = self.open.get(order.cycle_id or "")
            if cycle is not None and order.side.value == "SELL":
                cycle.close_reason = None  # a user-cancelled exit is not retried
            if order.cycle_id:
                await self._advance(order.cycle_id)
            return await self._order(client_order_id) or order

    def pause(self: TraderCore, strategy: str | None = None) -> None:  # type: ignore[misc]
        if strategy:
            self.paused_strategies.add(strategy)
        else:
            self.paused = True

    def resume(self: TraderCore, strategy: str | None = None) -> None:  # type: ignore[misc]
        if strategy:
            self.paused_strategies.discard(strategy)
        else:
            self.paused = self.killed = False
            self.paused_strategies.clear()
