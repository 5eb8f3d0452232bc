"""The strategy contract as the live analyzer and the offline evaluation both honour it (issue 17, items 1, 3, 4)."""

from __future__ import annotations

from typing import Any

import numpy as np
from strategy_shapes import frame, v_shape

from roottrading.strategies import BaseStrategy
from roottrading.strategies.base import NONE, Bars


class LowestLowStop(BaseStrategy):
    """BUY on every 7th bar; custom exits: stop at the lowest low of the last 5 bars, target 10% above."""

    name = "lowest_low_stop"

    @property
    def warmup(self) -> int:
        return 10

    def generate(self, bars: Bars) -> Any:
        return self.entries(buy=np.arange(len(bars)) % 7 == 0)

    def stops(self, bars: Bars, side: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        low5 = np.array([bars.low[max(0, i - 4) : i + 1].min() for i in range(len(bars))])
        sl, tp = low5.copy(), bars.close * 1.10
        tr = np.full(len(bars), 1.5)
        off = side == NONE
        sl[off] = tp[off] = tr[off] = np.nan
        return sl, tp, tr


def test_overridden_stops_are_honoured_live_exactly_as_offline() -> None:
    """Item 1: the live path (latest_signal_bars) used to recompute ATR stops and ignore `stops()`."""
    df = frame(v_shape())
    s = LowestLowStop()
    fired = 0
    for end in range(s.warmup + 1, len(df) + 1):
        view = Bars.from_frame(df.iloc[:end])
        row = s.signals_bars(view).row(end - 1)
        live = s.latest_signal_bars(view, "BTCUSDT", "1m")
        if row is None:
            assert live is None
            continue
        fired += 1
        assert live is not None
        assert (live.stop_loss, live.take_profit, live.trailing_pct) == (
            row["stop_loss"],
            row["take_profit"],
            row["trailing_pct"],
        )
        assert live.stop_loss == float(view.low[-5:].min())
    assert fired > 5


def test_exit_masks_are_not_part_of_the_contract() -> None:
    """Item 3: exit_long / exit_short were documented outputs nothing read. On spot a SELL signal is the exit
    (the coordinator sells the strategy's open cycles), so they are gone, and passing one says why."""
    import dataclasses

    import pytest

    from roottrading.strategies.base import Entries, SignalFrame

    assert not {"exit_long", "exit_short"} & {f.name for f in dataclasses.fields(Entries)}
    assert not {"exit_long", "exit_short"} & {f.name for f in dataclasses.fields(SignalFrame)}
    with pytest.raises(ValueError, match="SELL signal is the exit"):
        BaseStrategy.entries(buy=np.ones(3, bool), exit_long=np.zeros(3, bool))


def _bundled_day() -> tuple[list[Any], Any]:
    import pandas as pd

    from roottrading.datasets.bundled import load_candles

    cs = load_candles("BTCBUSD", "1m", as_symbol="BTCUSDT")
    cols = ("open_time", "open", "high", "low", "close", "volume")
    return cs, pd.DataFrame({k: [getattr(c, k) for c in cs] for k in cols})


def test_live_analyzer_and_offline_signals_use_one_window_rule() -> None:
    """Item 4: the live analyzer (its tails), the warm-up after a restart and offline `signals()` follow
    `evaluation_window`. Every built-in strategy, the bundled BTC day: live, candle by candle, gives exactly the
    offline signals; changing either window rule (or evaluating offline on all history) makes this fail."""
    from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
    from roottrading.strategies.base import evaluation_window

    cs, df = _bundled_day()
    eng = AnalyzerEngine(EngineConfig())
    for st in eng.registry.active("BTCUSDT"):
        assert eng.lookback(st) == evaluation_window(st)
    assert eng.window_size() == max(evaluation_window(eng.registry.get(n)) for n in eng.registry.names())
    live: dict[str, Any] = {}
    for c in cs:
        for sig in eng.on_candle(c).signals:
            live[sig.id] = sig
    offline: dict[str, Any] = {}
    for st in eng.registry.active("BTCUSDT"):
        sf = st.signals(df)
        for i in np.flatnonzero(sf.side):
            row = sf.row(int(i))
            assert row is not None
            offline[f"{st.name}:BTCUSDT:1m:{row['open_time']}"] = row
    assert len(live) > 1000
    assert live.keys() == offline.keys()
    diff = [
        k
        for k, s in live.items()
        if (s.side, s.strength, s.stop_loss, s.take_profit, s.trailing_pct, s.regime)
        != tuple(offline[k][f] for f in ("side", "strength", "stop_loss", "take_profit", "trailing_pct", "regime"))
    ]
    assert not diff, diff[:5]
