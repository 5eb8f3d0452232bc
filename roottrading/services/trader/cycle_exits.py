"""Where the trader calls the position callbacks (cycle_hooks.py) on its open cycles.

Why a mixin apart from core.py: the state machine stays the state machine; this is the strategy's say in it.
- After each price (a tick, or a candle's whole path, once the simulator has been fed it): `custom_exit`
  (confirmed by `confirm_exit`) exits at market through `start_exit`; else `custom_stoploss` may move the
  stop, stored like a trailing stop's move. Both see only prices up to now; a new stop applies from the next
  price on, walked by `walk_exits` like any stop (its exit reason is "stop_loss", never vetoable).
- Before a take-profit or a signal exit is sent: `confirm_exit`. A veto keeps the cycle open with its stops;
  it is logged, counted (stats "exit_vetoes") and stored as a decision ("exit_vetoed", once per cycle and
  exit reason: a target vetoed on every candle is one row).
- After a fill of the strategy's order is applied to its cycle: `on_fill` with the updated cycle.
- Last, after the stop: `position_adjustment` may add to the position (cycle_adjust.py).
- A limit entry chosen by `order_type` that is still resting `limit_entry_timeout_s` (market time) after it
  was placed is cancelled: unfilled, the cycle ends CANCELED (its reservation released); partly filled, it
  keeps that position, managed as usual. Manual orders and strategies the trader has not loaded rest GTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from roottrading.domain import CycleStatus, Fill, OrderType, TradeCycle

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore


class CycleExitsMixin:
    async def _cycle_callbacks(self: TraderCore, c: TradeCycle, price: Decimal) -> None:  # type: ignore[misc]
        """custom_exit, then custom_stoploss, for an ACTIVE cycle with no exit under way. Caller holds the lock."""
        now = self.clock.now_ms()
        reason = self.hooks.exit_reason(c, now, price)
        if reason is not None and await self._exit_confirmed(c, reason, price):
            await self.start_exit(c, reason)
            return
        stop = self.hooks.new_stop(c, now, price)
        if stop is not None and c.status is CycleStatus.ACTIVE:
            self.log.debug("stop moved by the strategy", cycle=c.id, stop=str(stop), previous=str(c.stop_loss))
            c.stop_loss = stop
            await self.cycles.save(c)  # like a trailing stop's move: stored, not a transition
        await self._position_adjustment(c, price)  # an addition (DCA), funded by the coordinator (cycle_adjust.py)

    async def _expire_limit_entries(self: TraderCore, symbol: str) -> None:  # type: ignore[misc]
        """Cancel what is left of `symbol`'s strategy limit entries past their strategy's limit_entry_timeout_s.
        Caller holds the lock."""
        now = self.clock.now_ms()
        for c in [c for c in self.open.values() if c.symbol == symbol and c.strategy != "manual"]:
            if c.status not in (CycleStatus.WAITING_ENTRY, CycleStatus.ACTIVE):
                continue
            entry = self.order_cache.get(c.entry_order_id or "")
            if entry is None or entry.type is not OrderType.LIMIT or entry.status.is_terminal:
                continue
            timeout_s = self.hooks.attribute(c.strategy, "limit_entry_timeout_s")
            if timeout_s is None or now - entry.created_at < float(timeout_s) * 1000:
                continue
            self.log.info(
                "limit entry expired: cancelling what is left of it",
                cycle=c.id,
                symbol=c.symbol,
                strategy=c.strategy,
                price=str(entry.price),
                filled=str(entry.executed_quantity),
                age_s=(now - entry.created_at) / 1000,
            )
            self.stats["entries_expired"] += 1
            await self._cancel(entry)
            await self._advance(c.id)

    async def _exit_confirmed(self: TraderCore, c: TradeCycle, reason: str, price: Decimal) -> bool:  # type: ignore[misc]
        """False when the strategy vetoes this (vetoable) exit; the veto is logged, counted and stored."""
        now = self.clock.now_ms()
        veto = self.hooks.veto_exit(c, reason, price, now)
        if veto is None:
            return True
        self.stats["exit_vetoes"] += 1
        if self.decisions is not None:
            try:
                await self.decisions.add(
                    signal_id=f"exit:{c.id}:{reason}"[:200],
                    time=now,
                    symbol=c.symbol,
                    strategy=c.strategy,
                    decision="exit_vetoed",
                    reason=f"strategy veto of the {reason} exit: {veto}",
                    details={"cycle": c.id, "exit": reason, "price": str(price), "stage": "callback"},
                )
            except SQLAlchemyError as exc:  # the veto holds; only its record is lost (logged in cycle_hooks)
                self.log.warning("exit veto not stored", cycle=c.id, error=str(exc))
        return False

    def _fill_applied(self: TraderCore, cycle_id: str, fill: Fill) -> None:  # type: ignore[misc]
        """Queue `fill` for the strategy's on_fill, told once `_advance` has applied it to the cycle."""
        self.untold_fills.setdefault(cycle_id, []).append(fill)

    def _tell_fills(self: TraderCore, c: TradeCycle) -> None:  # type: ignore[misc]
        for fill in self.untold_fills.pop(c.id, ()):
            self.hooks.filled(fill, c)
