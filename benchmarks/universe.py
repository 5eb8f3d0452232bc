"""Universe refresh over many symbols: statistics at T + the selection, from candles in memory.

Prints the time of one refresh (stats_at + select with a volume source, filters and scoring) over N symbols.
Baseline, measured in the same run: one plain Python pass over the same candles that only sums each
symbol's quote volume in the lookback (the least any refresh must do: touch the data once). Target
(issue 16): < 1 s for 1,000 symbols. Reading the candles from the store is not included (it is the store's
cost, the same for any consumer); the live service reads them from the exchange over REST.

    .venv/bin/python benchmarks/universe.py [--symbols 1000] [--candles 1440] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roottrading.datasets import synthetic_candles
from roottrading.universe import UniverseState, parse_universe, select, stats_at

CONFIG = {
    "source": {"type": "volume", "top": 200, "keep_top": 250},
    "lookback": "1d",
    "filters": [
        {"type": "patterns", "blacklist": ["*UPUSDT", "*DOWNUSDT"]},
        {"type": "price", "min": 0.0001},
        {"type": "volatility", "min": 0.001, "max": 5},
    ],
    "scoring": {"size": 50, "keep_rank": 70, "cooldown": "4h"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--candles", type=int, default=1440)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = {
        f"S{i:04d}USDT": synthetic_candles(
            f"S{i:04d}USDT", "1m", args.candles, seed=i, start_price=1.0 + i, base_volume=10.0 + i % 97
        )
        for i in range(args.symbols)
    }
    print(f"generated {args.symbols} x {args.candles} candles in {time.perf_counter() - t0:.1f}s")
    at = max(cs[-1].close_time for cs in data.values()) + 1
    cfg = parse_universe(CONFIG)
    lookback = cfg.lookback_ms

    base, run = [], []
    sel = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        total = {s: sum(c.quote_volume for c in cs if c.open_time >= at - lookback) for s, cs in data.items()}
        base.append(time.perf_counter() - t)
        assert len(total) == args.symbols
        t = time.perf_counter()
        sel = select(cfg, stats_at(data, at, lookback), UniverseState(), at)
        run.append(time.perf_counter() - t)
    assert sel is not None and len(sel.members) == 50
    b, r = statistics.median(base), statistics.median(run)
    print(f"baseline (one pass summing quote volume): {b * 1000:8.1f} ms")
    print(f"refresh (stats_at + select):              {r * 1000:8.1f} ms   ratio {r / b:.2f}x baseline")
    print(f"target < 1000 ms for 1000 symbols: {'met' if r < 1.0 or args.symbols < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
