"""A simulated market of many symbols (hundreds), unlike one another: what a volume-ranked universe needs.

Prices spread over eight orders of magnitude (so tick and lot sizes, which the simulator derives from the
data's precision, differ), volumes over five (so the volume ranking is clear), and about one pair in ten is
quoted in BTC (another quote asset, another minimum notional). Deterministic for a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def many_symbols(n: int, *, seed: int = 0, btc_every: int = 10) -> dict[str, Any]:
    """FakeBinanceConfig keyword arguments for `n` synthetic symbols: `symbols`, `start_prices`, `base_volumes`.
    Symbols are `S000USDT`, `S001USDT`, ... (every `btc_every`-th one `S<k>BTC`)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}{'BTC' if btc_every and i % btc_every == btc_every - 1 else 'USDT'}" for i in range(n)]
    prices = 10 ** rng.uniform(-3, 5, size=n)
    volumes = 10 ** rng.uniform(0, 5, size=n)
    return {
        "symbols": tuple(symbols),
        "start_prices": {s: float(f"{p:.6g}") for s, p in zip(symbols, prices, strict=True)},
        "base_volumes": {s: float(f"{v:.6g}") for s, v in zip(symbols, volumes, strict=True)},
    }
