"""What the trader does with each new market price: walk the watched cycles' exits along it.

Why a mixin apart from core.py: `on_price` is the trader's one entry point for market data, and the way a met
exit is placed differs live (a MARKET exit at once) and over an in-process simulator (the exit placed before
the simulator is fed, `_sim_exit`, so the simulator's own intra-bar path decides its price; what it did not
fill is sold at market after the data, `_exit_after_data`). After the data, the same walk retries failed
exits, calls the strategy's position callbacks (cycle_exits.py), moves exchange stops (exchange_stops.py)
and expires limit entries; additions asked meanwhile are funded after the lock is released (cycle_adjust.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, TradeCycle
from roottrading.services.trader.position import position, walk_exits
from roottrading.services.trader.stops import STOP_TYPES, sim_exit_order
from roottrading.strategies.cycle_callbacks import VETOABLE_EXITS

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore


class PriceWatchMixin:
    """Prices walked along the open cycles' exits (TraderCore.on_price)."""

    # ------------------------------------------------------------------ prices
    async def on_price(  # type: ignore[misc]
        self: TraderCore, symbol: str, path: Sequence[Decimal], feed: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """New market prices in time order: walk every watched cycle's exits along them.

        Without `feed` (live, or an exchange with a market of its own) a met condition becomes a MARKET exit
        at once: the trader sees prices as they come, so the market is still near the level.
        With `feed` (the trader pushes the same data into an in-process simulator) the exit the data reaches is
        placed on the simulator *before* it is fed (stops.sim_exit_order), so the simulator's own intra-bar
        path fills it at the stop, the target, or the open of a bar that gaps through; resting orders then
        fill in the same walk. One path, the engine's, decides the price. Whatever the simulator did not fill
        as expected is cancelled and sold at market after the data (the behaviour before, as a fallback)."""
        async with self.lock:
            watched = [c.id for c in self.open.values() if c.symbol == symbol and c.status is CycleStatus.ACTIVE]
            if watched and not self.owner.owns(symbol):
                watched = []  # lease expired, hand-over not run yet: the next owner watches them
            due: dict[str, tuple[str, str | None]] = {}  # cycle id -> (exit reason, exit placed before the feed)
            for cid in watched:  # cycles activated by this very data wait for the next one
                c = self.open.get(cid)
                if c is None or c.status is not CycleStatus.ACTIVE or c.close_reason is not None:
                    continue  # (an exit that expired or was rejected is retried below)
                extreme = c.trailing_extreme
                on_exchange = self._exchange_exits(cid, path)  # what rests on the exchange (exchange_stops.py)
                reason, level = walk_exits(c, path, not on_exchange[1], stops=not on_exchange[0])
                if reason in VETOABLE_EXITS and level is not None and not await self._exit_confirmed(c, reason, level):
                    c.trailing_extreme = extreme  # the target vetoed: walk the same path for the stops only
                    reason, level = walk_exits(c, path, take_profit=False, stops=not on_exchange[0])
                if reason is None or level is None:
                    if c.trailing_extreme != extreme:
                        await self.cycles.save(c)  # trailing stop moved: stored, not a transition
                    continue
                placed = None
                if feed is not None:
                    placed = await self._sim_exit(c, reason, level, c.trailing_extreme != extreme, path)
                due[cid] = (reason, placed)
            if feed is not None:
                await feed()
                await self._drain()
            self.last_price[symbol] = path[-1]
            for cid in watched:
                c = self.open.get(cid)
                if c is None:
                    continue
                if cid in due:
                    await self._exit_after_data(c, *due[cid])
                elif c.status is CycleStatus.ACTIVE and c.close_reason is not None:
                    await self._retry_exit(c)  # spaced out by exit_retry_delay_ms
                elif c.status is CycleStatus.ACTIVE:
                    await self._cycle_callbacks(c, path[-1])  # the strategy's custom exit / stop (cycle_exits.py)
                    await self._protect(c)  # a moved stop moves its exchange order (rate-limited)
            await self._expire_limit_entries(symbol)  # order_type's limit entries past their time (cycle_exits.py)
        await self._fund_additions()  # position_adjustment's, asked above, funded without the lock (cycle_adjust.py)

    async def _sim_exit(  # type: ignore[misc]
        self: TraderCore, c: TradeCycle, reason: str, level: Decimal, raised: bool, path: Sequence[Decimal]
    ) -> str | None:
        """Place the exit `reason` met at `level` as the simulator order that fills there; its client id, or
        None when no order fits (see stops.sim_exit_order). Caller holds the lock, before the feed."""
        rules = self.rules[c.symbol]
        resting_stops = sum(
            1
            for o in self.order_cache.values()
            if o.symbol == c.symbol and o.type in STOP_TYPES and not o.status.is_terminal
        )
        if rules.max_num_algo_orders is not None and resting_stops >= rules.max_num_algo_orders:
            return None
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        held = position(self.fills.get(c.id, []), base).held
        plan = sim_exit_order(reason, level, raised, self.last_price.get(c.symbol), path, rules, held)
        if plan is None:
            return None
        order = await self.start_exit(c, reason, type=plan.type, price=plan.price, stop_price=plan.stop_price)
        return order.client_order_id if order is not None else None

    async def _exit_after_data(self: TraderCore, c: TradeCycle, reason: str, placed: str | None) -> None:  # type: ignore[misc]
        """After the data: a condition met without an order placed for it exits at market now; an exit placed
        before the feed that is still open (not triggered as expected: prices off the tick grid, liquidity) is
        cancelled and the rest sold at market; one that ended (filled, or refused: then retried with back-off
        like any failed exit) needs nothing more."""
        if placed is not None:
            order = self.order_cache.get(placed)
            if order is None or order.status.is_terminal:
                return
            self.log.info("simulated exit not filled by the bar; selling at market", cycle=c.id, order=placed)
            await self._cancel(order)
            await self._advance(c.id)
        current = self.open.get(c.id)
        if current is not None and current.status is CycleStatus.ACTIVE:
            await self.start_exit(current, reason)
