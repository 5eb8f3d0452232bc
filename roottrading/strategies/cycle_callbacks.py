"""Position-aware strategy callbacks: what a strategy sees of its open cycle, and the rules around the answers.

Why: a vectorised `generate(bars)` decides entries from candles; it cannot see the position it opened. Stops
that follow the trade (tighten after some profit, lock in a gain), exits on the strategy's own logic (time in
the trade, a level its state remembers) and state kept from its own fills need the cycle. The trader watches
open cycles on every price (roottrading/services/trader/cycle_hooks.py), so it calls these, the same code in
live, paper and the `replay` backtest:

- `custom_stoploss(cycle, now, price, profit) -> Decimal | float | None`: a new stop price for the cycle, or
  None to keep it. Only a tighter stop (higher, long-only spot) is applied, unless the strategy sets
  `stoploss_can_loosen = True`: a bug or a noisy rule then cannot move a protective stop away from the price.
- `custom_exit(cycle, now, price, profit) -> str | None`: a reason string exits the cycle at market through the
  normal exit path; the reason is the cycle's close reason (truncated to 64 characters).
- `confirm_exit(cycle, reason, price) -> str | None`: a string vetoes the exit (logged with the reason, counted
  in the trader's stats). Protective exits (stop-loss, trailing stop, manual exits, the kill switch) are never
  offered for a veto: a stop exists to limit a loss when the strategy's own view was wrong, so the strategy
  must not be able to cancel it (a buggy veto would leave a falling position without any exit).
- `on_fill(fill, cycle)`: after each fill of the strategy's entry and exit orders, with the cycle as updated by
  it; the return value is ignored.
- `position_adjustment(cycle, now, price, profit) -> Decimal | float | None`: a quote amount to ADD to the
  position now (DCA), or None. The trader asks the coordinator to fund it like an entry (risk check, pocket
  reservation, a stored decision), then sends a MARKET buy on the same cycle, whose quantity, average entry
  price and fees follow from all its fills. Asked only while nothing of the cycle is in flight, and at most
  `max_entry_adjustments` additions per cycle (class attribute, default 1) are made. Reducing a position is
  not offered (a partial exit is a SELL signal with a quantity, or a manual order).

Timing, the same in every mode: custom_stoploss and custom_exit run after a price (a tick, or a candle's whole
intra-bar path) has been checked against the cycle's exits, with `price` its last price and `now` the platform
clock. A new stop applies from the next price on; a custom exit sells at market now. Nothing is looked ahead.

A callback that raises (or answers something that is not of its type) is isolated like a failing strategy in
the analyzer: logged with the exception and treated as "no opinion": the cycle keeps its stop and exit rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from roottrading.domain import Side, TradeCycle

#: exit reasons a strategy's `confirm_exit` may veto; any other (stop_loss, trailing_stop, manual, kill switch,
#: retries of an exit already confirmed) is protective or a human's, and goes through (see the module doc)
VETOABLE_EXITS = frozenset({"signal", "take_profit"})
#: the longest custom exit reason kept (it becomes the cycle's close reason)
MAX_REASON = 64


@dataclass(frozen=True)
class CycleView:
    """A read-only view of one open trade cycle, as a position callback sees it (prices in the quote asset)."""

    id: str
    symbol: str
    strategy: str
    side: Side  # BUY: a long spot position (the only kind on spot)
    entry_price: Decimal | None  # average fill price of the entry; None before the first fill
    quantity: Decimal  # base quantity held from the entry (net of fees paid in the base asset)
    opened: int  # when the cycle was created, UTC ms
    stop_loss: Decimal | None  # the stop in force (None: none)
    take_profit: Decimal | None
    trailing_pct: Decimal | None  # the platform's own trailing stop, percent (None: none)
    trailing_extreme: Decimal | None  # highest price seen since entry (tracked when trailing_pct is set)
    entry_tag: str | None  # the tag of the signal that opened the cycle
    status: str  # the cycle's status value (ACTIVE while callbacks other than on_fill run)
    adjustments: int = 0  # additions position_adjustment made that filled (0: the entry only)

    @classmethod
    def of(cls, c: TradeCycle, adjustments: int = 0) -> CycleView:
        return cls(
            id=c.id,
            symbol=c.symbol,
            strategy=c.strategy,
            side=c.side,
            entry_price=c.entry_price,
            quantity=c.quantity,
            opened=c.created_at,
            stop_loss=c.stop_loss,
            take_profit=c.take_profit,
            trailing_pct=c.trailing_pct,
            trailing_extreme=c.trailing_extreme,
            entry_tag=c.entry_tag,
            status=c.status.value,
            adjustments=adjustments,
        )


def profit_ratio(entry: Decimal | None, price: Decimal) -> Decimal:
    """The open profit as a ratio of the entry price (0.02 = +2 %), fees left out; 0 without an entry price."""
    if not entry:
        return Decimal(0)
    return price / entry - 1


def accept_stop(current: Decimal | None, new: Decimal, can_loosen: bool) -> bool:
    """Whether a strategy's new stop replaces `current`: any stop when there is none, a higher one (tighter
    for a long), or any different one when the strategy allows loosening."""
    if current is None:
        return True
    return new > current or (can_loosen and new != current)
