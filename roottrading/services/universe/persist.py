"""The universe's state as a stored document (safety_state, key "universe"): what a restart must not forget.

Why: without it a restart starts from SYMBOLS, forgets the cooldown of every pair that left, and drops members
the hysteresis was keeping (they would have to re-qualify at `size`, not `keep_rank`). The document holds the
members in rank order, when each pair last left (cooldowns), the last refresh instant, the next one due (so a
restart does not refresh early) and the last refresh's per-pair verdicts (reason, rank, scores) for the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roottrading.universe import UniverseState

STATE_KEY = "universe"
VERSION = 1


@dataclass(frozen=True)
class SavedUniverse:
    """A restored document: `members` in rank order, `state` for the next selection."""

    members: tuple[str, ...]
    state: UniverseState
    at: int
    next_due: int
    pairs: list[dict[str, Any]]


def to_doc(
    members: tuple[str, ...], state: UniverseState, at: int, next_due: int, pairs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "version": VERSION,
        "members": list(members),
        "left_at": dict(sorted(state.left_at.items())),
        "at": at,
        "next_due": next_due,
        "pairs": pairs,
    }


def from_doc(doc: dict[str, Any]) -> SavedUniverse | None:
    """None for a document of another version (the first refresh then starts from SYMBOLS, as before)."""
    if doc.get("version") != VERSION:
        return None
    members = tuple(str(s) for s in doc["members"])
    left_at = {str(s): int(t) for s, t in doc["left_at"].items()}
    return SavedUniverse(
        members=members,
        state=UniverseState(members=frozenset(members), left_at=left_at),
        at=int(doc["at"]),
        next_due=int(doc["next_due"]),
        pairs=list(doc.get("pairs", [])),
    )
