"""The `fast` engine's results: a simulated cycle as a Trade, and the equity curve from the trades.

Why apart from fast.py: one job. FastRun mixes this in; the state it reads is FastRun's, declared below.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from roottrading.backtest.fast_gates import OpenCycle
from roottrading.backtest.model import BacktestConfig, Trade
from roottrading.capital.pnl import cycle_pnl
from roottrading.domain import Side
from roottrading.domain.money import to_decimal
from roottrading.services.trader.position import apply_fills, fill_row


class Results:
    """Mixed into FastRun (fast.py), whose state these are."""

    config: BacktestConfig
    base: str
    quote: str
    series: list[Any]
    c: np.ndarray
    close_times: list[int]

    def _trade(self, cur: OpenCycle, open_at: int | None = None) -> Trade:
        c = cur.cycle
        buys = [x.time for x in cur.fills if x.side is Side.BUY]
        sells = [x.time for x in cur.fills if x.side is Side.SELL]
        closed = open_at is None
        mark = None if open_at is None else to_decimal(self.series[open_at].close)
        if closed and c.profit_loss is not None:
            # _settle applied these very fills when the cycle completed: apply_fills' cycle_pnl, whose total is
            # its realised PnL once the cycle is terminal, set the cycle's fees and profit_loss
            fees, pnl = c.fees, c.profit_loss
        else:
            apply_fills(c, cur.fills, self.base, self.quote)
            p = cycle_pnl(c, [fill_row(x) for x in cur.fills], quote_asset=self.quote, mark=mark)
            fees, pnl = p.fees, p.total
        return Trade(
            symbol=c.symbol,
            strategy=c.strategy,
            entry_time=min(buys),
            entry_price=c.entry_price or Decimal(0),
            exit_time=(max(sells) if sells else c.updated_at) if closed else None,
            exit_price=c.exit_price if closed else None,
            quantity=c.quantity,
            fees=fees,
            pnl=pnl,
            exit_reason=(c.close_reason or "closed") if closed else "end_of_data",
            entry_tag=c.entry_tag,
            exit_tag=c.exit_tag,
        )

    def _equity_curve(self, trades: list[Trade], n: int) -> list[tuple[int, float]]:
        """Account value at each of the first n candles' closes (vectorised from the trades: cash steps at
        exits, the held quantity marked at the close while a cycle is open)."""
        if not n:
            return []
        close_times = np.asarray(self.close_times[:n], np.int64)
        dcash = np.zeros(n + 1)
        dheld = np.zeros(n + 1)
        for t in trades:  # step changes, summed once (no per-trade pass over the whole curve)
            a = int(np.searchsorted(close_times, t.entry_time))
            b = n if t.exit_time is None else int(np.searchsorted(close_times, t.exit_time))
            cost = float(t.entry_price * t.quantity)  # a chart: float is enough
            dcash[a] -= cost
            dheld[a] += float(t.quantity)
            dheld[b] -= float(t.quantity)
            if t.exit_time is not None:
                dcash[b] += cost + float(t.pnl)
        cash = float(self.config.balance) + np.cumsum(dcash[:n])
        held = np.cumsum(dheld[:n])
        value = cash + held * self.c[:n]
        return list(zip(close_times.tolist(), value.tolist(), strict=True))
