"""The `fast` engine's side of the simulated exchange: feeding it the visited candles, the trader's exits.

Why apart from fast.py: one job. FastRun mixes this in; the state it reads is FastRun's, declared below.
Only the candles where something can happen are fed (see fast.py's docstring): between visits nothing rests
on the exchange, so setting its last price to the previous close and feeding the candle is the same as
feeding every candle. With an open cycle, the trader's exit walk (position.walk_exits) runs first and the
exit order it implies (stops.sim_exit_order) is placed before the candle, as TraderCore.on_price does.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from roottrading.backtest.fast_gates import OpenCycle
from roottrading.backtest.model import EngineUnavailable
from roottrading.domain import CycleStatus, OrderType, Side
from roottrading.domain.money import to_decimal
from roottrading.services.trader.position import apply_fills, position, walk_exits
from roottrading.services.trader.stops import sim_exit_order


class ExchangeFeed:
    """Mixed into FastRun (fast.py), whose state these are."""

    symbol: str
    base: str
    quote: str
    series: list[Any]
    close_times: list[int]
    h: np.ndarray
    lo: np.ndarray
    rules: Any
    engine: Any
    reported: Decimal
    px_now: Decimal
    fed: int
    step_time: int
    next_trade_id: int
    job_due: int
    job_ms: int
    job_next: int

    _after_close: Callable[[OpenCycle], None]  # RiskGates' (an annotation only: nothing to shadow it in the MRO)

    def _jobs_until(self, i: int) -> None:
        """Run the trader's periodic balances job at every candle step before candle i where it was due (market
        time, after that step: replay._run_due), with the balances as they are (no fill since the last event)."""
        import bisect

        while self.job_next < i:
            k = bisect.bisect_left(self.close_times, self.job_due, lo=self.job_next)
            if k >= i:
                self.job_next = i
                return
            self.reported = self._account(to_decimal(self.series[k].close))
            self.job_due = self.close_times[k] + self.job_ms
            self.job_next = k + 1

    def _account(self, price: Decimal) -> Decimal:
        """TraderCore.publish_balances' total: every balance (free + locked) valued at the trader's last price."""
        total = Decimal(0)
        for asset, b in sorted(self.engine.balances().items()):
            px = Decimal(1) if asset == self.quote else (price if asset == self.base else None)
            if px is None:
                continue
            total += (b.free + b.locked) * px
        return total

    def _feed_until(self, i: int, cur: OpenCycle | None) -> None:
        """Feed candle i to the exchange after setting its last price to the previous close (nothing rests
        between visits, so skipping the candles in between changes nothing). With an open cycle, the trader's
        exit walk runs first (as TraderCore.on_price with a feed)."""
        eng, sym = self.engine, self.symbol
        c = self.series[i]
        self.step_time = c.close_time
        self._jobs_until(i)
        # the trader's last price: the previous close during the feed, this close once it has processed the data
        self.px_now = to_decimal(self.series[i - 1].close) if i > 0 else Decimal(0)
        if i > 0 and self.fed != i - 1:
            prev = self.series[i - 1]
            eng.on_trade(sym, prev.close_time, to_decimal(prev.close))
        if cur is None:
            eng.on_candle(c)
            self.fed = i
            self.px_now = to_decimal(c.close)
            return
        from roottrading.exchange.sim.market import candle_path

        path = candle_path(c)
        cyc = cur.cycle
        reason, level = walk_exits(cyc, path)
        if reason is None or level is None:
            eng.on_candle(c)
            self.fed = i
            self.px_now = to_decimal(c.close)
            return
        last = eng.last_price(sym)
        held = self._held(cur)
        plan = sim_exit_order(reason, level, False, last, path, self.rules, held)
        placed = None
        if plan is not None:
            placed = self._place_sell(cur, plan.type, plan.price, plan.stop_price, reason, c.open_time)
        eng.on_candle(c)
        self.fed = i
        self._collect(cur)
        self.px_now = to_decimal(c.close)
        if placed is not None:
            o = eng.get_order(sym, placed)
            if not o.status.is_terminal:
                eng.cancel_order(sym, placed)
                self._collect(cur)
                self._sell_rest(cur, reason)
        else:
            self._sell_rest(cur, reason)
        self._settle(cur)

    def _held(self, cur: OpenCycle) -> Decimal:
        return position(cur.fills, self.base).held

    def _place_sell(
        self, cur: OpenCycle, type_: OrderType, price: Decimal | None, stop: Decimal | None, reason: str, t: int
    ) -> str | None:
        from roottrading.exchange.errors import BinanceError

        r = self.rules
        market = type_ is OrderType.MARKET
        qty = r.round_quantity(self._held(cur), market=market)
        px = r.round_price(price) if price is not None and not market else None
        sp = r.round_price(stop) if stop is not None and not market else None
        try:
            r.check(Side.SELL, type_, qty, px, sp, self.engine.last_price(self.symbol))
        except BinanceError:
            return None
        n = sum(1 for x in cur.fills if x.side is Side.SELL) + len(getattr(cur, "sells", []))
        coid = f"{cur.cycle.id}:exit:{n}:{len(cur.fills)}"
        cur.cycle.close_reason = reason
        try:
            self.engine.place_order(self.symbol, Side.SELL, type_, coid, quantity=qty, price=px, stop_price=sp)
        except BinanceError:
            return None
        return coid

    def _sell_rest(self, cur: OpenCycle, reason: str) -> None:
        if self._sellable(self._held(cur)) is None:
            return
        self._place_sell(cur, OrderType.MARKET, None, None, reason, self.engine.now)
        self._collect(cur)

    def _sellable(self, held: Decimal) -> Decimal | None:
        r = self.rules
        q = r.round_quantity(held, market=True)
        if q <= 0 or q < r.min_qty:
            return None
        px = self.engine.last_price(self.symbol)
        if px is not None and r.notional_filter and r.min_notional_apply_to_market and q * px < r.min_notional:
            return None
        return q

    def _collect(self, cur: OpenCycle) -> None:
        """The cycle's fills from the exchange (its trades of this cycle's orders), stamped with the time step's
        market time, as the trader records them on the replay's simulated clock (the candle's close)."""
        import msgspec

        # only the trades since the last look (from_id): reading the whole history each time was quadratic
        filled = False
        for fl in self.engine.my_trades(self.symbol, from_id=self.next_trade_id):
            self.next_trade_id = max(self.next_trade_id, int(fl.trade_id) + 1)
            filled = True
            if fl.client_order_id.startswith(cur.cycle.id):
                cur.fills.append(msgspec.structs.replace(fl, time=self.step_time))
        if filled and self.px_now > 0:  # the trader republishes the balances after a fill (TraderCore._drain)
            self.reported = self._account(self.px_now)

    def _settle(self, cur: OpenCycle) -> None:
        """The trader's _advance for a cycle whose exit was sent: completed when only dust is left."""
        pos = position(cur.fills, self.base)
        if pos.sold > 0 and self._sellable(pos.held) is None:
            cur.cycle.status = CycleStatus.COMPLETED
            apply_fills(cur.cycle, cur.fills, self.base, self.quote)
            self._after_close(cur)

    def _market_exit(self, cur: OpenCycle, reason: str, i: int) -> None:
        self._place_sell(cur, OrderType.MARKET, None, None, reason, self.series[i].close_time)
        self._collect(cur)
        self._settle(cur)
        if cur.cycle.status is not CycleStatus.COMPLETED:
            raise EngineUnavailable(f"an exit at candle {i} did not complete (not modelled)")

    def _next_exit_candidate(self, cur: OpenCycle, i: int, end: int) -> int:
        from roottrading.backtest.kernels import first_exit_candidate

        cyc = cur.cycle
        sl = float(cyc.stop_loss) if cyc.stop_loss is not None else np.nan
        tp = float(cyc.take_profit) if cyc.take_profit is not None else np.nan
        start = max(i, cur.index + 1)
        return int(first_exit_candidate(self.lo, self.h, start, min(end, len(self.series)), sl, tp))
