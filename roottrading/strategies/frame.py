"""What a strategy returns (`Entries`, from `generate`) and what evaluation gives back (`SignalFrame`, per row).

Kept apart from base.py (the evaluation rules) so each module has one job; base.py re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from roottrading.domain import Side, SignalStrength

BUY, SELL, NONE = np.int8(1), np.int8(-1), np.int8(0)


@dataclass
class Entries:
    """What `generate` returns. side: +1 BUY / -1 SELL / 0 none; strength: rank 0..3 (WEAK..VERY_STRONG).

    stop_loss / take_profit: absolute prices (NaN = let the base class derive them from ATR multiples).
    On spot +1 is "enter long" and -1 is "exit long" (the coordinator sells the strategy's open cycles;
    there is no short to close); `outputs(enter_long=, exit_long=, enter_tag=, exit_tag=)` builds it by
    those names. tag: object array of str | None per row (None = untagged), carried into the trade cycle.
    """

    side: np.ndarray
    strength: np.ndarray
    stop_loss: np.ndarray | None = None
    take_profit: np.ndarray | None = None
    tag: np.ndarray | None = None


@dataclass
class SignalFrame:
    """Per-row output of `signals`. All arrays have the frame's length."""

    open_time: np.ndarray
    side: np.ndarray  # int8: +1 BUY, -1 SELL, 0 none
    strength: np.ndarray  # int8 rank 0..3, meaningful where side != 0
    stop_loss: np.ndarray  # float64 absolute price, NaN = none
    take_profit: np.ndarray
    trailing_pct: np.ndarray
    regime: np.ndarray | None = None  # object array of regime labels when Ride-or-React ran
    tag: np.ndarray | None = None  # object array of entry/exit tags (str | None) when the strategy tags
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.side)

    @property
    def buys(self) -> np.ndarray:
        return np.asarray(self.side == BUY)

    @property
    def sells(self) -> np.ndarray:
        return np.asarray(self.side == SELL)

    def row(self, i: int) -> dict[str, Any] | None:
        """The entry at row i as plain Python values, or None when there is none."""
        if self.side[i] == NONE:
            return None
        return {
            "open_time": int(self.open_time[i]),
            "side": Side.BUY if self.side[i] == BUY else Side.SELL,
            "strength": SignalStrength.from_rank(int(self.strength[i])),
            "stop_loss": _opt(self.stop_loss[i]),
            "take_profit": _opt(self.take_profit[i]),
            "trailing_pct": _opt(self.trailing_pct[i]),
            "regime": None if self.regime is None else self.regime[i],
            "tag": None if self.tag is None else self.tag[i],
        }

    def to_pandas(self) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "open_time": self.open_time,
                "side": self.side,
                "strength": self.strength,
                "stop_loss": self.stop_loss,
                "take_profit": self.take_profit,
                "trailing_pct": self.trailing_pct,
            }
        )
        if self.regime is not None:
            df["regime"] = self.regime
        if self.tag is not None:
            df["tag"] = self.tag
        return df


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
