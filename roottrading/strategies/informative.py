"""Informative data: other symbols and timeframes a strategy reads, closed candles only.

A strategy declares `informative = [("ETHUSDT", "1h"), ("BTCUSDT", "4h")]`. At each evaluated row it gets,
per pair, the higher-timeframe candles built from that symbol's base-interval candles (the platform's one
interval, as `timeframes.py` does for one symbol) and, per row of its window, which of them was already
closed. The visibility rule, the one place it lives: a higher-timeframe candle [S, S + step) is visible at
the row closing at T exactly when S + step <= T and all of it was received (its last base candle, closing
at S + step, is there). So the 1h candle 10:00-11:00 is visible to the 1m row closing at 11:00 and not to
the one closing at 10:59: no lookahead, whatever the strategy does with the arrays.

`build` computes it from base candles (a live window of the informative symbol, or the whole offline frame)
and the row's close time alone, so the live analyzer and offline `signals()` agree as long as both have the
informative candles up to T. Live, a candle of the other symbol that arrives after the evaluated symbol's
candle of the same minute makes its higher-timeframe candle visible one row later, never earlier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roottrading.domain import interval_ms
from roottrading.strategies.bars import Bars

#: higher-timeframe candles a strategy gets per informative pair unless it sets `informative_window`
DEFAULT_INFORMATIVE_WINDOW = 100


@dataclass(frozen=True)
class Informative:
    """One informative pair at one evaluated row.

    bars: the higher-timeframe candles closed at the evaluated row (oldest first, at most the strategy's
    `informative_window`), open_time = the candle's start. index: one entry per row of the strategy's window,
    the position in `bars` of the last candle closed at that row's close, -1 when none is (yet)."""

    symbol: str
    interval: str
    bars: Bars
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.bars)

    def align(self, values: np.ndarray) -> np.ndarray:
        """Values computed on `bars` (same length) broadcast to the window's rows; NaN where nothing closed."""
        v = np.asarray(values, np.float64)
        if len(v) != len(self.bars):
            raise ValueError(f"align: {len(v)} values for {len(self.bars)} informative candles")
        out = np.full(len(self.index), np.nan)
        ok = self.index >= 0
        out[ok] = v[self.index[ok]]
        return out

    @property
    def close(self) -> np.ndarray:
        """The last closed informative close at each window row (NaN before the first)."""
        return self.align(self.bars.close)


def normalise(declared: Iterable[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    """Validate a strategy's `informative` declaration: (SYMBOL, interval) pairs, known intervals."""
    out: list[tuple[str, str]] = []
    for item in declared:
        if not (isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise ValueError(f"informative entries are (symbol, interval) pairs, got {item!r}")
        symbol, interval = item[0].strip().upper(), item[1].strip()
        if not symbol.isalnum():
            raise ValueError(f"informative symbol {item[0]!r} must be letters and digits (e.g. ETHUSDT)")
        if interval_ms(interval) > interval_ms("3d"):  # (raises with the list of known intervals)
            raise ValueError(
                f"informative interval {interval}: at most 3d (buckets are epoch multiples; the exchange's weeks "
                "start on Monday and its months are calendar months)"
            )
        if (symbol, interval) not in out:
            out.append((symbol, interval))
    return tuple(out)


def empty(symbol: str, interval: str, rows: int) -> Informative:
    """Nothing received for that symbol (yet): no candle visible at any row."""
    z = np.zeros(0)
    return Informative(symbol, interval, Bars(np.zeros(0, np.int64), z, z, z, z, z), np.full(rows, -1, np.int64))


def build(source: Bars, symbol: str, interval: str, base_ms: int, row_open_times: np.ndarray, keep: int) -> Informative:
    """The informative pair at the last of `row_open_times` (the strategy's window), from `source`: that
    symbol's base-interval candles, oldest first, possibly ahead of the evaluated row (they are cut at T)."""
    rows = len(row_open_times)
    step = interval_ms(interval)
    if step < base_ms or step % base_ms:
        raise ValueError(f"informative {symbol} {interval}: not a multiple of the base interval ({base_ms} ms)")
    if rows == 0 or len(source) == 0:
        return empty(symbol, interval, rows)
    close_t = int(row_open_times[-1]) + base_ms
    end = int(np.searchsorted(source.open_time, close_t - base_ms, side="right"))  # candles closed by T
    if end == 0:
        return empty(symbol, interval, rows)
    # the last `source_window` candles closed by T: what the live window holds, so both paths cut alike
    begin = max(0, end - source_window(keep, interval, base_ms))
    source = source.window(end, end - begin)
    end = len(source)
    t = source.open_time
    bucket = t // step
    starts = np.r_[0, np.flatnonzero(np.diff(bucket)) + 1]
    ends = np.r_[starts[1:], end]
    # complete: its last base candle closes at the bucket's end; and whole: the first one opens at its start
    # (the first bucket of a truncated live window is not, so it is dropped on both paths alike)
    done = (t[ends - 1] + base_ms == (bucket[starts] + 1) * step) & (t[starts] == bucket[starts] * step)
    starts, ends = starts[done], ends[done]
    if len(starts) > keep:
        starts, ends = starts[-keep:], ends[-keep:]
    if len(starts) == 0:
        return empty(symbol, interval, rows)
    htf = _ohlcv(source, bucket[starts] * step, starts, ends)
    closes_at = htf.open_time + step
    idx = np.searchsorted(closes_at, np.asarray(row_open_times, np.int64) + base_ms, side="right") - 1
    return Informative(symbol, interval, htf, idx.astype(np.int64))


def _ohlcv(source: Bars, open_time: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Bars:
    """The higher-timeframe candles over exactly source rows [start, end) each. reduceat on interleaved
    (start, end) bounds reduces each bucket and each gap between kept buckets; every other one is kept."""
    bounds = np.ravel(np.column_stack([starts, ends]))
    hi, lo, vol = source.high, source.low, source.volume
    if bounds[-1] >= len(hi):  # reduceat wants indices < len: one dummy row past the end
        hi, lo, vol = np.r_[hi, 0.0], np.r_[lo, 0.0], np.r_[vol, 0.0]
    return Bars(
        open_time=open_time,
        open=source.open[starts],
        high=np.maximum.reduceat(hi, bounds)[::2],
        low=np.minimum.reduceat(lo, bounds)[::2],
        close=source.close[ends - 1],
        volume=np.add.reduceat(vol, bounds)[::2],
    )


def source_window(strategy_keep: int, interval: str, base_ms: int) -> int:
    """Base candles a live window must hold for `strategy_keep` whole candles of `interval` (+2: a truncated
    first bucket and the one in progress)."""
    return (interval_ms(interval) // base_ms) * (strategy_keep + 2)


def attach(strategy: Any, win: Bars, sources: Mapping[str, Bars], base_ms: int, keep: int | None = None) -> Bars:
    """`win` (a strategy's evaluation window) with its declared informative pairs built at its last row.
    keep: higher-timeframe candles per pair (default the strategy's `informative_window`; the bias checks
    vary it like the base history)."""
    keep = int(strategy.informative_window) if keep is None else keep
    inf = {
        (sym, tf): build(sources[sym], sym, tf, base_ms, win.open_time, keep)
        if sym in sources
        else empty(sym, tf, len(win))
        for sym, tf in normalise(strategy.informative)
    }
    return dataclasses.replace(win, informative=inf)


def sources(given: Mapping[str, Any] | None, bars: Bars) -> tuple[dict[str, Bars], int]:
    """Offline informative input (symbol -> frame or Bars of closed candles at the base interval) as Bars,
    and the base interval inferred from `bars`."""
    from roottrading.strategies.timeframes import base_interval_ms

    out: dict[str, Bars] = {}
    for sym, data in (given or {}).items():
        if isinstance(data, Bars):
            out[sym.upper()] = data
        else:
            frame = data[data["closed"].astype(bool)] if "closed" in data.columns else data
            out[sym.upper()] = Bars.from_frame(frame)
    return out, base_interval_ms(bars)
