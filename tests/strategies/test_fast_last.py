"""The live fast path (`may_fire` pre-check, shared indicator cache) must say exactly what `generate` says.

`may_fire` may say True when the last row is quiet (generate then decides), but never False when the last
row fires. Checked at every row of several markets, for every built-in strategy, plus the crafted firing
inputs of test_builtin (the rare patterns: pumps, spikes, sweeps, range breakouts).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_builtin import CASES

from roottrading.datasets import synthetic_candles
from roottrading.strategies import BaseStrategy
from roottrading.strategies.base import Bars
from roottrading.strategies.builtin import BUILTIN_STRATEGIES
from roottrading.strategies.builtin.trend import EmaCross

_FIELDS = ("open_time", "open", "high", "low", "close", "volume")


def _markets() -> list[Bars]:
    out = []
    for seed, vol in ((1, 0.8), (2, 3.0), (3, 0.2)):
        cs = synthetic_candles("PARUSDT", "1m", 600, seed=seed, annual_volatility=vol)
        arr = {f: np.array([getattr(c, f) for c in cs], np.int64 if f == "open_time" else np.float64) for f in _FIELDS}
        # a few shocks so that the rare patterns (spikes, pumps, sweeps) happen too
        for i in (150, 300, 451):
            arr["close"][i : i + 4] *= 1.12
            arr["high"][i : i + 4] = np.maximum(arr["high"][i : i + 4] * 1.12, arr["close"][i : i + 4])
            arr["volume"][i : i + 4] *= 6
        arr["open"][1:] = arr["close"][:-1]
        arr["high"] = np.maximum.reduce([arr["high"], arr["open"], arr["close"]])
        arr["low"] = np.minimum.reduce([arr["low"], arr["open"], arr["close"]])
        out.append(Bars(**arr))
    for case in CASES.values():
        df = case.fire()
        out.append(Bars.from_frame(df))
    return out


def _cut(b: Bars, end: int, size: int) -> Bars:
    s = max(0, end - size)
    return Bars(**{f: getattr(b, f)[s:end] for f in _FIELDS})


def _same(x: float | None, y: float | None) -> bool:
    return x == y  # exact: None == None, floats bit-identical in practice (same operations)


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_may_fire_never_misses_and_latest_equals_vectorised_row(name: str) -> None:
    strat = BUILTIN_STRATEGIES[name](**(CASES[name].params or {}))
    assert strat._fast_last, f"{name} has no may_fire pre-check"
    size = max(100, 3 * strat.warmup)
    fired = skipped = 0
    for market in _markets():
        for end in range(strat.warmup + 2, len(market) + 1):
            b = _cut(market, end, size)
            if len(b) <= strat.warmup:
                continue
            full = strat.signals_bars(Bars(**{f: getattr(b, f) for f in _FIELDS}))  # fresh cache
            row = full.row(len(b) - 1)
            if not strat.may_fire(b):
                skipped += 1
                assert row is None, (name, end, "may_fire said False on a firing row")
            fast = strat.latest_signal_bars(b, "X", "1m")
            if row is None:
                assert fast is None, (name, end)
                continue
            fired += 1
            assert fast is not None, (name, end)
            assert (fast.side, fast.strength) == (row["side"], row["strength"]), (name, end)
            for k in ("stop_loss", "take_profit", "trailing_pct"):
                assert _same(getattr(fast, k), row[k]), (name, end, k, getattr(fast, k), row[k])
    assert fired >= 1, f"{name} never fired on the test markets: the check proves nothing"
    assert skipped > fired, f"{name}: the pre-check skipped {skipped} rows only"


def test_subclass_overriding_generate_does_not_inherit_the_pre_check() -> None:
    class Always(EmaCross):
        name = "always_buy"

        def generate(self, bars: Bars):  # type: ignore[no-untyped-def]
            return self.entries(np.ones(len(bars), bool))

    class Plain(BaseStrategy):
        name = "plain"

        def generate(self, bars: Bars):  # type: ignore[no-untyped-def]
            return self.entries(np.ones(len(bars), bool))

    assert EmaCross._fast_last and not Always._fast_last and not Plain._fast_last
    cs = synthetic_candles("SUBUSDT", "1m", 120, seed=5)
    b = Bars(
        **{f: np.array([getattr(c, f) for c in cs], np.int64 if f == "open_time" else np.float64) for f in _FIELDS}
    )
    sig = Always().latest_signal_bars(b, "SUBUSDT", "1m")
    assert sig is not None and sig.side.value == "BUY"


def test_shared_indicator_cache_is_per_bars_object() -> None:
    """Two tails of different length must not share cached indicator arrays."""
    cs = synthetic_candles("CACUSDT", "1m", 300, seed=9)
    b = Bars(
        **{f: np.array([getattr(c, f) for c in cs], np.int64 if f == "open_time" else np.float64) for f in _FIELDS}
    )
    short, long_ = b.tail(100), b.tail(200)
    strat = EmaCross()
    strat.may_fire(short)
    strat.may_fire(long_)
    assert len(short.cache[("ema", 12)]) == 100 and len(long_.cache[("ema", 12)]) == 200
