"""What the coordinator keeps in memory so the signal hot path needs no database read.

The database stays the source of truth: the views are loaded from it at start and again when signal partitions
are taken over from another coordinator (ownership.py), and, for anything older than what was loaded, the
caller falls back to a query.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from roottrading.domain import TradeCycle

DAY_MS = 86_400_000
SKEW_MS = 600_000  # signal clocks may lag the coordinator's: only trust memory 10 min past the load horizon


class DecidedSignals:
    """signal id -> latest decision, for every decision since `known_since` (epoch ms, decision time)."""

    def __init__(self, max_size: int = 200_000) -> None:
        self.max_size = max_size
        self.known_since: int | None = None  # None: nothing loaded, every lookup goes to the database
        self._latest: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.unsure: set[str] = set()  # accepted before a restart: was the request published? (republish)

    def load(self, since: int, rows: dict[str, str]) -> None:
        self.known_since = since
        for sid, decision in rows.items():
            self._latest[sid] = (decision, since)
            if decision == "accepted":
                self.unsure.add(sid)

    def note(self, signal_id: str, decision: str, time: int) -> None:
        self._latest[signal_id] = (decision, time)
        self._latest.move_to_end(signal_id)
        while len(self._latest) > self.max_size:  # forget the oldest; lookups before them go to the database
            _, (_, t) = self._latest.popitem(last=False)
            self.known_since = max(self.known_since or 0, t + 1)

    def get(self, signal_id: str) -> str | None:
        got = self._latest.get(signal_id)
        return got[0] if got is not None else None

    def covers(self, signal_time: int) -> bool:
        """True when a decision for a signal of this time would be in memory (its decision came after)."""
        return self.known_since is not None and signal_time >= self.known_since + SKEW_MS


class PendingEntries:
    """Accepted entries whose cycle the trader has not announced yet, per (symbol, strategy): cycle id ->
    decision time (epoch ms). They count as open for the one-open-cycle filter until their cycle is seen or
    `ttl_ms` passed. Filled by this instance's own entries and, at start and on a takeover, from the store
    (an entry the previous owner accepted just before dying counts here too: no second entry)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, key: tuple[str, str], cycle_id: str, at: int) -> None:
        self._by_key.setdefault(key, {})[cycle_id] = at

    def drop(self, key: tuple[str, str]) -> None:
        self._by_key.pop(key, None)

    def count(self, key: tuple[str, str], now: int, ttl_ms: int, seen: Callable[[str], bool]) -> int:
        """The entries of `key` still pending (the ones seen as cycles or expired are forgotten)."""
        got = self._by_key.get(key)
        if not got:
            return 0
        for cid in [c for c, at in got.items() if seen(c) or now - at > ttl_ms]:
            del got[cid]
        if not got:
            del self._by_key[key]
        return len(got)

    def cycle_ids(self) -> set[str]:
        return {c for got in self._by_key.values() for c in got}


class OpenCycles:
    """Non-terminal cycles by id (indexed by symbol/strategy), from the store at start then from
    `trade.cycles` updates."""

    def __init__(self, max_closed: int = 100_000) -> None:
        self.open: dict[str, TradeCycle] = {}
        self._by_key: dict[tuple[str, str], set[str]] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.max_closed = max_closed

    def load(self, cycles: list[TradeCycle]) -> None:
        for c in cycles:
            self.update(c)

    def update(self, c: TradeCycle) -> None:
        key = (c.symbol, c.strategy)
        if c.status.is_terminal:
            if self.open.pop(c.id, None) is not None:
                self._by_key[key].discard(c.id)
            self._closed[c.id] = None
            if len(self._closed) > self.max_closed:
                self._closed.popitem(last=False)
        elif c.id not in self._closed:  # a late, older update never reopens a closed cycle
            self.open[c.id] = c
            self._by_key.setdefault(key, set()).add(c.id)

    def seen(self, cycle_id: str) -> bool:
        return cycle_id in self.open or cycle_id in self._closed

    def count(self, symbol: str, strategy: str) -> int:
        return len(self._by_key.get((symbol, strategy), ()))
