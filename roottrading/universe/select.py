"""The selection: config + statistics at T + the previous state -> the universe at T, with a reason per pair.

Pure (no I/O, no clock): the live service and a backtest call the same function with statistics computed
from history up to T, so both see the same universe.

Order of the chain: source (static list, or top-N by quote volume with a `keep_top` band), then filters in
the order written (the first failing one is the reason), then scoring (top `size` by a weighted score, a
member stays while it ranks within `keep_rank`, a pair that left waits `cooldown` before it may re-enter),
then forced pairs (always in, not counted in `size`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from roottrading.universe.config import StaticSource, UniverseConfig, VolumeSource
from roottrading.universe.filters import why_out
from roottrading.universe.stats import MarketStats

METRICS = ("volatility", "momentum", "volume")


@dataclass(frozen=True)
class UniverseState:
    """What the next refresh must remember: who is in, and when each pair last left (for the cooldown)."""

    members: frozenset[str] = frozenset()
    left_at: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PairReport:
    """One pair's verdict. `scores` holds the normalised metric scores (0..1) and `total` when scored."""

    symbol: str
    selected: bool
    reason: str
    rank: int | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    stats: MarketStats | None = None


@dataclass(frozen=True)
class Selection:
    at: int
    members: tuple[str, ...]  # forced first, then by rank (or source order)
    pairs: tuple[PairReport, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    state: UniverseState


def _percentiles(values: Mapping[str, float]) -> dict[str, float]:
    """Rank-normalised 0..1 (the best 1.0): scales of volume and volatility differ by orders of magnitude."""
    n = len(values)
    if n == 1:
        return dict.fromkeys(values, 1.0)
    order = sorted(values, key=lambda s: (values[s], s))
    return {s: i / (n - 1) for i, s in enumerate(order)}


def _scores(cfg: UniverseConfig, eligible: Mapping[str, MarketStats]) -> dict[str, dict[str, float]]:
    assert cfg.scoring is not None
    w = cfg.scoring.weights
    weights = {"volatility": w.volatility, "momentum": w.momentum, "volume": w.volume}
    raw = {
        "volatility": {s: st.volatility for s, st in eligible.items()},
        "momentum": {s: st.momentum for s, st in eligible.items()},
        "volume": {s: st.quote_volume for s, st in eligible.items()},
    }
    pct = {k: _percentiles(v) for k, v in raw.items()}
    total_w = sum(weights.values())
    out: dict[str, dict[str, float]] = {}
    for s in eligible:
        row = {k: round(pct[k][s], 6) for k in METRICS}
        row["total"] = round(sum(weights[k] * pct[k][s] for k in METRICS) / total_w, 6)
        out[s] = row
    return out


def _volume_ranks(src: VolumeSource, stats: Mapping[str, MarketStats]) -> dict[str, int]:
    quoted = [s for s, st in stats.items() if (st.quote_asset or "") == src.quote or s.endswith(src.quote)]
    quoted.sort(key=lambda s: (-stats[s].quote_volume, s))
    return {s: i + 1 for i, s in enumerate(quoted)}


def select(cfg: UniverseConfig, stats: Mapping[str, MarketStats], state: UniverseState, at: int) -> Selection:
    """The universe at `at`. `stats` must hold statistics computed at `at` (see stats.compute_stats)."""
    reports: dict[str, PairReport] = {}
    forced = list(dict.fromkeys(cfg.forced))
    members_before = state.members
    eligible: dict[str, MarketStats] = {}  # passed source and filters, in source order
    order: list[str] = []

    if isinstance(cfg.source, StaticSource):
        for sym in cfg.source.symbols:
            st = stats.get(sym)
            if cfg.is_static:
                reports[sym] = PairReport(sym, True, "static list", stats=st)
                order.append(sym)
            elif st is None:
                reports[sym] = PairReport(sym, False, "no candle closed yet")
            else:
                eligible[sym] = st
    else:
        ranks = _volume_ranks(cfg.source, stats)
        src = cfg.source
        for sym, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            if rank <= src.top:
                eligible[sym] = stats[sym]
            elif rank <= src.keep and sym in members_before:
                eligible[sym] = stats[sym]  # hysteresis: a member stays within keep_top
            else:
                reports[sym] = PairReport(sym, False, f"volume rank {rank} > top {src.top}", stats=stats[sym])

    for f in cfg.filters:
        for sym in list(eligible):
            reason = why_out(f, eligible[sym])
            if reason is not None:
                reports[sym] = PairReport(sym, False, reason, stats=eligible.pop(sym))

    if cfg.scoring is None:
        for sym, st in eligible.items():
            reports[sym] = PairReport(sym, True, _source_reason(cfg, sym, sym in members_before), stats=st)
            order.append(sym)
    else:
        order.extend(_score_and_pick(cfg, eligible, state, at, reports))

    for sym in forced:
        prev = reports.get(sym)
        why = "forced" if prev is None or prev.selected else f"forced (else out: {prev.reason})"
        st = prev.stats if prev is not None else stats.get(sym)
        reports[sym] = PairReport(
            sym, True, why, rank=prev.rank if prev else None, scores=prev.scores if prev else {}, stats=st
        )
    members = tuple(forced + [s for s in order if s not in forced])
    now_in = frozenset(members)
    left_at = dict(state.left_at)
    removed = tuple(sorted(members_before - now_in))
    for sym in removed:
        left_at[sym] = at
    added = tuple(s for s in members if s not in members_before)
    pairs = tuple(sorted(reports.values(), key=lambda r: (not r.selected, r.rank or 1 << 30, r.symbol)))
    return Selection(at, members, pairs, added, removed, UniverseState(now_in, left_at))


def _source_reason(cfg: UniverseConfig, sym: str, member: bool) -> str:
    if isinstance(cfg.source, VolumeSource):
        return "volume top, filters passed" if not member else "volume top (or kept), filters passed"
    return "static list, filters passed"


def _score_and_pick(
    cfg: UniverseConfig,
    eligible: dict[str, MarketStats],
    state: UniverseState,
    at: int,
    reports: dict[str, PairReport],
) -> list[str]:
    """Members within `keep_rank` stay; free slots go to the best newcomers ranked within `size` and out of
    their cooldown. Returns the selected symbols in rank order."""
    sc = cfg.scoring
    assert sc is not None
    scores = _scores(cfg, eligible)
    ranked = sorted(eligible, key=lambda s: (-scores[s]["total"], s))
    rank = {s: i + 1 for i, s in enumerate(ranked)}
    forced = set(cfg.forced)  # in anyway, and not counted in `size`
    kept = [s for s in ranked if s in state.members and s not in forced and rank[s] <= sc.keep][: sc.size]
    chosen = set(kept)
    for s in ranked:
        st, r = eligible[s], rank[s]
        if s in forced:
            reports[s] = PairReport(s, True, "forced", rank=r, scores=scores[s], stats=st)
            continue
        if s in chosen:
            why = f"rank {r} <= size {sc.size}" if r <= sc.size else f"kept: rank {r} <= keep_rank {sc.keep}"
            reports[s] = PairReport(s, True, why, rank=r, scores=scores[s], stats=st)
            continue
        if s in state.members:
            why = f"rank {r} > keep_rank {sc.keep}" if r > sc.keep else f"more than size {sc.size} members kept"
        elif r > sc.size:
            why = f"rank {r} > size {sc.size}"
        elif (left := state.left_at.get(s)) is not None and at - left < sc.cooldown_ms:
            why = f"cooldown until {left + sc.cooldown_ms}"
        elif len(chosen) >= sc.size:
            why = f"rank {r} but no free slot (members kept by hysteresis)"
        else:
            chosen.add(s)
            reports[s] = PairReport(s, True, f"rank {r} <= size {sc.size}", rank=r, scores=scores[s], stats=st)
            continue
        reports[s] = PairReport(s, False, why, rank=r, scores=scores[s], stats=st)
    return [s for s in ranked if s in chosen]
