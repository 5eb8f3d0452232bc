"""A backtest's point-in-time pair universe: the live selection (roottrading.universe) at each refresh instant of
the period, from the run's own history before that instant only (no lookahead, no survivorship).

Why through the analyzer's live gate: the replay engine publishes `universe.changed` at each refresh instant,
before the first candle that closes at or after it, with `members` = the universe then and `streamed` = every
symbol of the run. The analyzer then does exactly what it does live: entries (BUY) only on members, exits
always, so a cycle opened while its pair was in is still managed to its end. Every symbol keeps streaming (its
indicators stay warm, as the live gateway's backfill keeps them), so a pair that joins signals at once.

Candidates are the run's symbols (whatever history was loaded): a pair without a candle closed before a
refresh does not exist yet at that refresh. Without exchange rules the `min_notional` filter sees none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from roottrading import messages as m
from roottrading.domain import Candle
from roottrading.universe import Selection, load_universe, universe_timeline


def backtest_timeline(
    path: Path | str, candles: Mapping[str, Sequence[Candle]], start_ms: int, end_ms: int
) -> list[Selection]:
    """The universe at `start_ms` and at each refresh instant up to `end_ms` (raises UniverseConfigError)."""
    return universe_timeline(load_universe(path), candles, start_ms, end_ms)


def changed_message(sel: Selection, streamed: Sequence[str]) -> m.UniverseChanged:
    """What the live universe service would announce at `sel.at`, every run symbol still streamed."""
    return m.UniverseChanged(
        time=sel.at,
        members=list(sel.members),
        streamed=list(streamed),
        added=list(sel.added),
        removed=list(sel.removed),
    )
