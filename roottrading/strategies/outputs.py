"""Explicit strategy outputs: enter long / exit long, each with an optional tag that follows the trade.

Why a separate form: `entries(buy=, sell=)` says "BUY" and "SELL", which on spot already means enter long and
exit long (the coordinator sells the strategy's open cycles on a SELL). Quants think in entries and exits
and want to know *which* rule opened or closed a trade, so `outputs()` names the two actions and carries a
tag per row (e.g. "breakout", "rsi_exit"); the tag goes signal -> coordinator decision -> order request ->
trade cycle (`entry_tag`, `exit_tag`) -> backtest trades, reports and the dashboard.

Short entries and exits are reserved for a future derivatives adapter: a strategy declaring `can_short = True`
is refused when it is loaded, and a short mask with any row set raises (the analyzer isolates that strategy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: tags are stored in String(64) columns (trading_signals.tag, trade_cycles.entry_tag/exit_tag)
MAX_TAG_LEN = 64
SPOT_ONLY = (
    "short entries/exits are reserved for a future derivatives adapter: this platform trades spot, where a "
    "strategy can only enter long and exit long (emit enter_long/exit_long, or buy/sell)"
)


class ShortNotSupported(ValueError):
    """A strategy asked for a short entry or exit on spot."""


def check_tag(tag: Any) -> str | None:
    """A valid tag (non-empty str of at most 64 characters) or None; anything else raises ValueError."""
    if tag is None or tag == "":
        return None
    if not isinstance(tag, str):
        raise ValueError(f"a tag must be a string, got {type(tag).__name__}")
    if len(tag) > MAX_TAG_LEN:
        raise ValueError(f"tag {tag[:20]!r}... is longer than {MAX_TAG_LEN} characters")
    return tag


def tag_column(tag: Any, n: int) -> np.ndarray:
    """A scalar tag (same for every row) or a per-row sequence, as an object array of str | None."""
    out = np.full(n, None, dtype=object)
    if tag is None:
        return out
    if isinstance(tag, str):
        out[:] = check_tag(tag)
        return out
    seq = list(tag)
    if len(seq) != n:
        raise ValueError(f"tag array has {len(seq)} rows, the masks {n}")
    out[:] = [check_tag(t) if not (isinstance(t, float) and np.isnan(t)) else None for t in seq]
    return out


def refuse_shorts(enter_short: Any, exit_short: Any) -> None:
    """Short masks may be passed (reserved) but no row may be set on spot."""
    for name, mask in (("enter_short", enter_short), ("exit_short", exit_short)):
        if mask is not None and np.asarray(mask, bool).any():
            raise ShortNotSupported(f"{name} is set on some rows: {SPOT_ONLY}")


def merge_tags(side: np.ndarray, enter_tag: Any, exit_tag: Any) -> np.ndarray | None:
    """One tag per row: the entry tag on enter-long rows, the exit tag on exit-long rows, None elsewhere.
    None when no tag was given at all (the built-ins' case: nothing extra to carry)."""
    if enter_tag is None and exit_tag is None:
        return None
    n = len(side)
    tags = np.full(n, None, dtype=object)
    if enter_tag is not None:
        col = tag_column(enter_tag, n)
        tags[side > 0] = col[side > 0]
    if exit_tag is not None:
        col = tag_column(exit_tag, n)
        tags[side < 0] = col[side < 0]
    return tags
