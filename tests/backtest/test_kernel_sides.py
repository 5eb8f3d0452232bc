"""Property: the ema_cross kernel's candidates and side bits are a superset of the strategy's own signals.

The fast engine confirms a candidate only when the simulation would act on a side the kernel says may fire
there, so a BUY (or SELL) at a candle the kernel marks without that side would be a trade fast silently
misses. Random walks with flat stretches (ties between the EMAs) and random periods, every window as the
analyzer gives it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from roottrading.backtest.kernels import MAY_BUY, MAY_SELL, ema_cross_candidate_sides
from roottrading.domain import Side
from roottrading.strategies.base import Bars
from roottrading.strategies.builtin.trend import EmaCross


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=hs.integers(0, 2**32 - 1),
    fast=hs.integers(2, 15),
    gap=hs.integers(1, 20),
    flat=hs.floats(0.0, 0.6),
    lookback=hs.sampled_from([60, 100, 150]),
)
def test_sides_cover_every_window_signal(seed: int, fast: int, gap: int, flat: float, lookback: int) -> None:
    rng = np.random.default_rng(seed)
    n = 260
    steps = rng.normal(0, 1, n) * (rng.random(n) >= flat)  # zero steps: flat runs, where the EMAs tie
    close = np.round(100 + np.cumsum(steps), 2)
    close = np.maximum(close, 1.0)
    high, low = close + 0.5, close - 0.5
    t = np.arange(n, dtype=np.int64) * 60_000
    st = EmaCross(fast=fast, slow=fast + gap)
    idx, sides = ema_cross_candidate_sides(close, st.fast, st.slow, lookback, st.warmup)
    side_at = dict(zip(idx.tolist(), sides.tolist(), strict=True))
    for i in range(n):
        s = max(0, i + 1 - lookback)
        if min(i + 1, lookback) <= st.warmup:
            continue
        b = Bars(t[s : i + 1], close[s : i + 1], high[s : i + 1], low[s : i + 1], close[s : i + 1], close[s : i + 1])
        sig = st.latest_signal_bars(b, "BTCUSDT", "1m")
        if sig is not None:
            bit = MAY_BUY if sig.side is Side.BUY else MAY_SELL
            assert side_at.get(i, 0) & bit, (i, sig.side, side_at.get(i))
