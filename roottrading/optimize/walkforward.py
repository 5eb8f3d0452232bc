"""Walk-forward windows and the stitched out-of-sample result.

Why walk-forward: parameters chosen on a period always look good on that period (that is what choosing does).
Only a period the search never saw tells whether they carry over, so each window's best parameters are scored
on the NEXT `test` span alone, and the out-of-sample spans, stitched end to end, are the study's result.
Rolling: the training window slides by `step`; anchored (`--anchored`): it always starts at the beginning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roottrading.domain.market import INTERVAL_MS

DAY_MS = 86_400_000
_UNITS = {"d": DAY_MS, "h": 3_600_000, "w": 7 * DAY_MS}


@dataclass(frozen=True)
class Window:
    index: int
    train_start: int
    train_end: int  # exclusive; the test starts here
    test_start: int
    test_end: int  # exclusive

    def as_json(self) -> dict[str, int]:
        return {
            "index": self.index,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "test_start": self.test_start,
            "test_end": self.test_end,
        }


def _span(text: str, key: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhw]?)\s*", text)
    if not m:
        raise ValueError(f"--walk-forward {key}={text!r}: expected a length like 90d, 12h or 4w")
    return int(float(m.group(1)) * _UNITS[m.group(2) or "d"])


def parse_spec(text: str) -> tuple[int, int, int]:
    """`train=90d,test=30d[,step=30d]` -> (train, test, step) in ms; step defaults to test."""
    parts: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("train", "test", "step"):
            raise ValueError(f"--walk-forward {item!r}: expected train=90d,test=30d,step=30d")
        parts[key] = _span(value, key)
    if "train" not in parts or "test" not in parts:
        raise ValueError("--walk-forward needs train= and test=")
    train, test = parts["train"], parts["test"]
    step = parts.get("step", test)
    if min(train, test, step) <= 0:
        raise ValueError("--walk-forward lengths must be > 0")
    return train, test, step


def windows(start: int, end: int, train: int, test: int, step: int, *, anchored: bool = False) -> list[Window]:
    """Every window whose test span ends by `end`. Raises ValueError when none fits."""
    out: list[Window] = []
    k = 0
    while True:
        train_start = start if anchored else start + k * step
        train_end = start + train + k * step
        test_end = train_end + test
        if test_end > end:
            break
        out.append(Window(k, train_start, train_end, train_end, test_end))
        k += 1
    if not out:
        raise ValueError(
            f"--walk-forward: the period ({(end - start) / DAY_MS:.1f} days) is shorter than one train+test "
            f"window ({(train + test) / DAY_MS:.1f} days)"
        )
    return out


def check_interval(interval: str, train: int, test: int) -> None:
    if train < 10 * INTERVAL_MS[interval] or test < 2 * INTERVAL_MS[interval]:
        raise ValueError(f"--walk-forward: windows too short for {interval} candles")


def stitch(curves: Sequence[Sequence[tuple[int, float]]], balance: float) -> list[tuple[int, float]]:
    """The test windows' equity curves end to end, each window's gain or loss added to where the previous
    one ended (every window starts from the same balance with a fixed stake, so PnL adds)."""
    out: list[tuple[int, float]] = []
    offset = 0.0
    for curve in curves:
        for t, v in curve:
            out.append((t, v - balance + balance + offset))
        if curve:
            offset += curve[-1][1] - balance
    return out


def window_row(w: Window, **fields: Any) -> dict[str, Any]:
    return {**w.as_json(), **fields}
