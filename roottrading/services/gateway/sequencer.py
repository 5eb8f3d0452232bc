"""Per-symbol ordering of closed candles: strictly increasing open times, no gap, no duplicate.

Why a separate, I/O-free class: this is the gateway's correctness core (the analyzer's indicators assume a
contiguous series), so it is tested on its own. Candles arrive from two sources (the WebSocket stream and
the REST backfill), possibly duplicated or swapped. The sequencer releases a candle only when every candle
before it has been released; later ones are held back until the gap is filled (by the REST backfill).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roottrading.domain import Candle, interval_ms


@dataclass
class SequencerStats:
    released: int = 0
    duplicates: int = 0  # dropped: open_time already released or already held
    held_back: int = 0  # candles that arrived after a gap and waited for it to be filled
    gaps_filled: int = 0  # gaps closed (held-back candles released once the missing ones arrived)
    skipped: int = 0  # candles declared missing for good (the exchange has none for that time)
    misaligned: int = 0  # open_time not on the interval grid (dropped)


@dataclass
class CandleSequencer:
    """`last` is the contiguous watermark: the open time of the last released candle (None: not known yet)."""

    symbol: str
    interval: str
    last: int | None = None
    pending: dict[int, Candle] = field(default_factory=dict)
    stats: SequencerStats = field(default_factory=SequencerStats)

    def __post_init__(self) -> None:
        self.step = interval_ms(self.interval)

    def offer(self, c: Candle) -> list[Candle]:
        """Take a closed candle; return the candles now releasable, oldest first (maybe empty)."""
        if self.last is None:
            self.last = c.open_time - self.step  # the first candle ever seen sets the baseline
        t = c.open_time
        if t <= self.last or t in self.pending:
            self.stats.duplicates += 1
            return []
        if (t - self.last) % self.step:
            self.stats.misaligned += 1
            return []
        nxt = self.last + self.step
        if t != nxt:
            self.pending[t] = c
            self.stats.held_back += 1
            return []
        out = [c]
        self.last = t
        if self.pending:
            out.extend(self._drain())
        self.stats.released += len(out)
        return out

    def _drain(self) -> list[Candle]:
        assert self.last is not None
        out = []
        nxt = self.last + self.step
        while nxt in self.pending:
            out.append(self.pending.pop(nxt))
            self.last = nxt
            nxt += self.step
        if not self.pending:
            self.stats.gaps_filled += 1
        return out

    @property
    def gap(self) -> tuple[int, int] | None:
        """(first, last) missing open times while candles are held back, else None."""
        if not self.pending or self.last is None:
            return None
        return self.last + self.step, min(self.pending) - self.step

    def skip_to(self, open_time: int) -> list[Candle]:
        """Declare every candle before `open_time` missing for good (the exchange has none). Only for a hole
        the exchange itself has, never for a slow stream. Returns the held-back candles at or after
        `open_time`, to be offered again (they are re-sequenced from the new watermark)."""
        if self.last is None or open_time - self.step <= self.last:
            return []
        self.stats.skipped += (open_time - self.step - self.last) // self.step
        keep = sorted((c for t, c in self.pending.items() if t >= open_time), key=lambda c: c.open_time)
        self.pending.clear()
        self.last = open_time - self.step
        return keep
