"""What the risk manager needs to run as leader or standby (runtime/leader.py): a fresh view on takeover."""

from __future__ import annotations

from decimal import Decimal

from roottrading.risk import StateTracker


def fresh_tracker(old: StateTracker, initial_equity: Decimal, now_ms: int) -> StateTracker:
    """A tracker to be filled from the store (safety document + cycles), keeping what only the bus gives: the
    last reported equity, the ATRs and the recent orders. Why fresh: replaying the stored cycles into the warm
    tracker could count a close twice, and the stored locks must replace what the standby believed."""
    t = StateTracker(initial_equity, now_ms, old.atr_period)
    t.atr = old.atr
    t.orders, t.order_ids = old.orders, old.order_ids
    t.reported_equity = old.reported_equity  # the value only; the peak and the day come from the document
    return t
