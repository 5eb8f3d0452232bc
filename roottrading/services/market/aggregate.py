"""Build longer-interval candles from base candles (e.g. 1h from 1m), aligned like Binance's.

Why here and not in SQL: the same code serves SQLite and PostgreSQL, and a partial last bucket is marked
`closed=False` so a chart can show the forming bar without a strategy ever mistaking it for a closed one.
"""

from __future__ import annotations

from collections.abc import Iterable

from roottrading.domain import Candle, interval_ms

_WEEK_OFFSET = 4 * 86_400_000  # 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC


def bucket_start(t: int, interval: str) -> int:
    """Open time of the `interval` candle containing epoch ms `t`."""
    step = interval_ms(interval)
    offset = _WEEK_OFFSET if interval == "1w" else 0
    return (t - offset) // step * step + offset


def check_ratio(base: str, target: str) -> int:
    """How many base candles make one target candle; ValueError when target is not a multiple of base."""
    b, t = interval_ms(base), interval_ms(target)
    if t < b or t % b:
        raise ValueError(f"cannot build {target} candles from {base} candles (not a whole multiple)")
    return t // b


def aggregate(candles: Iterable[Candle], interval: str, base_interval: str) -> list[Candle]:
    """Candles of `interval` from contiguous-or-not base candles (oldest first). A bucket holding fewer base
    candles than it should is returned with closed=False (forming, or a hole in the data)."""
    per = check_ratio(base_interval, interval)
    step = interval_ms(interval)
    out: list[Candle] = []
    cur: dict[str, float | int] | None = None
    count = 0
    sym = ""

    def emit() -> None:
        assert cur is not None
        out.append(
            Candle(
                symbol=sym,
                interval=interval,
                open_time=int(cur["t"]),
                close_time=int(cur["t"]) + step - 1,
                open=float(cur["o"]),
                high=float(cur["h"]),
                low=float(cur["l"]),
                close=float(cur["c"]),
                volume=float(cur["v"]),
                quote_volume=float(cur["q"]),
                trades=int(cur["n"]),
                closed=count == per,
            )
        )

    for c in candles:
        start = bucket_start(c.open_time, interval)
        if cur is None or start != cur["t"]:
            if cur is not None:
                emit()
            sym = c.symbol
            cur = {
                "t": start,
                "o": c.open,
                "h": c.high,
                "l": c.low,
                "c": c.close,
                "v": c.volume,
                "q": c.quote_volume,
                "n": c.trades,
            }
            count = 1
            continue
        cur["h"] = max(float(cur["h"]), c.high)
        cur["l"] = min(float(cur["l"]), c.low)
        cur["c"] = c.close
        cur["v"] = float(cur["v"]) + c.volume
        cur["q"] = float(cur["q"]) + c.quote_volume
        cur["n"] = int(cur["n"]) + c.trades
        count += 1
    if cur is not None:
        emit()
    return out
