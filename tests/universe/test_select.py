"""Selection semantics: filters with reasons, scoring with hysteresis and cooldown, forced pairs.

The properties (hypothesis) run sequences of refreshes over random statistics, as a live universe sees them.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.universe.config import parse_universe
from roottrading.universe.select import UniverseState, select
from roottrading.universe.stats import DAY_MS, MarketStats

SYMS = [f"C{i:02d}USDT" for i in range(12)]
HOUR = 3_600_000


def stat(sym: str, *, qv: float = 1e6, vol: float = 0.05, mom: float = 0.0, price: float = 10.0, **kw: object):
    return MarketStats(
        symbol=sym,
        at=kw.pop("at", 100 * DAY_MS),  # type: ignore[arg-type]
        listed_since=kw.pop("listed_since", 0),  # type: ignore[arg-type]
        last_price=price,
        quote_volume=qv,
        volatility=vol,
        momentum=mom,
        candles=100,
        **kw,  # type: ignore[arg-type]
    )


def scored(size: int, keep: int, cooldown: str = "0m", forced: list[str] | None = None, **extra: object):
    return parse_universe(
        {
            "source": {"type": "static", "symbols": SYMS},
            "scoring": {
                "size": size,
                "keep_rank": keep,
                "cooldown": cooldown,
                "weights": {"momentum": 0, "volatility": 0},
            },
            "forced": forced or [],
            **extra,
        }
    )


def test_static_default_selects_the_list_without_data() -> None:
    cfg = parse_universe({"source": {"type": "static", "symbols": ["BTCUSDT", "ETHUSDT"]}})
    sel = select(cfg, {}, UniverseState(), 0)
    assert sel.members == ("BTCUSDT", "ETHUSDT") and sel.added == ("BTCUSDT", "ETHUSDT")
    assert [p.reason for p in sel.pairs] == ["static list", "static list"]


def test_filters_give_the_first_failing_reason() -> None:
    cfg = parse_universe(
        {
            "source": {"type": "static", "symbols": ["AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUPUSDT", "FUSDT", "GUSDT"]},
            "filters": [
                {"type": "patterns", "blacklist": ["*UPUSDT"]},
                {"type": "age", "min_days": 30},
                {"type": "price", "min": 1},
                {"type": "spread", "max_pct": 0.5},
                {"type": "volatility", "max": 0.2},
                {"type": "min_notional", "stake": 20},
            ],
        }
    )
    stats = {
        "AUSDT": stat("AUSDT", min_notional=Decimal(5), min_qty=Decimal("0.01"), step_size=Decimal("0.01")),
        "BUSDT": stat("BUSDT", listed_since=95 * DAY_MS),
        "CUSDT": stat("CUSDT", price=0.5),
        "DUSDT": stat("DUSDT", spread_pct=1.2),
        "EUPUSDT": stat("EUPUSDT"),
        "FUSDT": stat("FUSDT", vol=0.5),
        "GUSDT": stat("GUSDT", price=15.0, step_size=Decimal("1"), min_qty=Decimal(1)),
    }
    sel = select(cfg, stats, UniverseState(), 100 * DAY_MS)
    reasons = {p.symbol: p.reason for p in sel.pairs}
    assert sel.members == ("AUSDT",)
    assert reasons["BUSDT"] == "listed 5.0 days < 30"
    assert reasons["CUSDT"] == "price 0.5 < 1"
    assert reasons["DUSDT"] == "spread 1.200% > 0.5%"
    assert reasons["EUPUSDT"] == "blacklisted (*UPUSDT)"
    assert reasons["FUSDT"] == "volatility 0.5000 > 0.2"
    assert reasons["GUSDT"] == "lot step loses 25.00% of the stake > 1%"  # 20 USDT buys 1 lot of 15


def test_volume_source_ranks_and_keeps_members_within_keep_top() -> None:
    cfg = parse_universe({"source": {"type": "volume", "top": 2, "keep_top": 3, "quote": "USDT"}})
    stats = {s: stat(s, qv=float(100 - i)) for i, s in enumerate(["AUSDT", "BUSDT", "CUSDT", "DUSDT"])}
    stats["XBTC"] = stat("XBTC", qv=1e9)  # another quote asset: never a candidate
    first = select(cfg, stats, UniverseState(), 0)
    assert first.members == ("AUSDT", "BUSDT") and "XBTC" not in {p.symbol for p in first.pairs}
    # C overtakes B: C (2nd) enters; B (3rd) is within keep_top, so it stays (the source has no size cap)
    stats["CUSDT"] = stat("CUSDT", qv=99.5)
    second = select(cfg, stats, first.state, HOUR)
    assert set(second.members) == {"AUSDT", "BUSDT", "CUSDT"} and second.added == ("CUSDT",)
    stats["BUSDT"] = stat("BUSDT", qv=1.0)  # 4th: clearly out
    third = select(cfg, stats, second.state, 2 * HOUR)
    assert third.removed == ("BUSDT",)
    assert {p.symbol: p.reason for p in third.pairs}["BUSDT"] == "volume rank 4 > top 2"


def test_scoring_hysteresis_keeps_a_member_until_it_is_clearly_out() -> None:
    cfg = scored(size=2, keep=4)
    qv = {s: 100.0 - i for i, s in enumerate(SYMS)}
    sel = select(cfg, {s: stat(s, qv=qv[s]) for s in SYMS}, UniverseState(), 0)
    assert sel.members == (SYMS[0], SYMS[1])
    qv[SYMS[1]] = 97.5  # now 3rd: inside keep_rank, it stays; SYMS[2] waits
    sel = select(cfg, {s: stat(s, qv=qv[s]) for s in SYMS}, sel.state, HOUR)
    assert sel.members == (SYMS[0], SYMS[1])
    reasons = {p.symbol: p.reason for p in sel.pairs}
    assert reasons[SYMS[1]] == "kept: rank 3 <= keep_rank 4"
    assert reasons[SYMS[2]] == "rank 2 but no free slot (members kept by hysteresis)"
    qv[SYMS[1]] = 1.0  # last: clearly out
    sel = select(cfg, {s: stat(s, qv=qv[s]) for s in SYMS}, sel.state, 2 * HOUR)
    assert sel.members == (SYMS[0], SYMS[2]) and sel.removed == (SYMS[1],) and sel.added == (SYMS[2],)


def test_cooldown_blocks_reentry_then_expires() -> None:
    cfg = scored(size=1, keep=1, cooldown="2h")
    up = {s: stat(s, qv=1.0) for s in SYMS} | {"C00USDT": stat("C00USDT", qv=10.0)}
    down = up | {"C00USDT": stat("C00USDT", qv=0.5), "C01USDT": stat("C01USDT", qv=5.0)}
    s1 = select(cfg, up, UniverseState(), 0)
    s2 = select(cfg, down, s1.state, HOUR)
    assert s2.removed == ("C00USDT",) and s2.state.left_at["C00USDT"] == HOUR
    s3 = select(cfg, up, s2.state, 2 * HOUR)  # C00 best again, but left 1 h ago
    assert "C00USDT" not in s3.members
    assert {p.symbol: p.reason for p in s3.pairs}["C00USDT"] == f"cooldown until {3 * HOUR}"
    s4 = select(cfg, up | {"C01USDT": stat("C01USDT", qv=0.1)}, s3.state, 3 * HOUR)
    assert s4.members == ("C00USDT",)


def test_forced_pairs_are_in_even_when_filtered_and_take_no_slot() -> None:
    cfg = scored(size=1, keep=1, forced=["C05USDT", "ZZZUSDT"], filters=[{"type": "price", "max": 100}])
    stats = {s: stat(s, qv=float(i)) for i, s in enumerate(SYMS)} | {"C05USDT": stat("C05USDT", price=500.0)}
    sel = select(cfg, stats, UniverseState(), 0)
    assert sel.members == ("C05USDT", "ZZZUSDT", "C11USDT")
    reasons = {p.symbol: p.reason for p in sel.pairs}
    assert reasons["C05USDT"] == "forced (else out: price 500 > 100)" and reasons["ZZZUSDT"] == "forced"


# --- properties ---------------------------------------------------------------------------------------
volumes = st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=len(SYMS), max_size=len(SYMS))
rounds = st.lists(volumes, min_size=1, max_size=8)
configs = st.tuples(
    st.integers(1, 5),  # size
    st.integers(0, 4),  # keep - size
    st.sampled_from(["0m", "1h", "3h"]),
    st.lists(st.sampled_from([*SYMS, "NODATAUSDT"]), max_size=3, unique=True),
)


def run(cfg_t: tuple[int, int, str, list[str]], seq: list[list[float]]):
    size, extra, cooldown, forced = cfg_t
    cfg = scored(size, size + extra, cooldown, forced)
    state, out = UniverseState(), []
    for i, vols in enumerate(seq):
        stats = {s: stat(s, qv=v) for s, v in zip(SYMS, vols, strict=True)}
        sel = select(cfg, stats, state, i * HOUR)
        out.append((stats, state, sel))
        state = sel.state
    return cfg, out


@settings(max_examples=150, deadline=None)
@given(configs, rounds)
def test_property_forced_in_size_respected_and_reasons_given(cfg_t, seq) -> None:
    cfg, out = run(cfg_t, seq)
    for _, _, sel in out:
        assert set(cfg.forced) <= set(sel.members)
        assert len([s for s in sel.members if s not in cfg.forced]) <= cfg.scoring.size
        assert {p.symbol for p in sel.pairs if p.selected} == set(sel.members)
        assert all(p.reason for p in sel.pairs)


@settings(max_examples=150, deadline=None)
@given(configs, rounds)
def test_property_hysteresis_members_within_keep_rank_stay(cfg_t, seq) -> None:
    cfg, out = run(cfg_t, seq)
    for _, before, sel in out:
        for p in sel.pairs:
            if p.symbol in before.members and p.rank is not None and p.rank <= cfg.scoring.keep:
                assert p.selected, p
            if p.selected and p.symbol not in before.members and p.symbol not in cfg.forced:
                assert p.rank is not None and p.rank <= cfg.scoring.size  # newcomers only from the top


@settings(max_examples=150, deadline=None)
@given(configs, rounds)
def test_property_cooldown_no_reentry_before_it_ends(cfg_t, seq) -> None:
    cfg, out = run(cfg_t, seq)
    left: dict[str, int] = {}
    for _, before, sel in out:
        for s in sel.added:
            if s in left and s not in cfg.forced:
                assert sel.at - left[s] >= cfg.scoring.cooldown_ms
        for s in sel.removed:
            left[s] = sel.at
        assert not set(sel.added) & set(before.members)


@settings(max_examples=100, deadline=None)
@given(configs, volumes)
def test_property_same_data_twice_changes_nothing(cfg_t, vols) -> None:
    """A refresh over unchanged statistics is a fixed point: no churn without a change in the market."""
    _cfg, out = run(cfg_t, [vols, vols])
    (_, _, first), (_, _, second) = out
    assert second.members == first.members and not second.added and not second.removed
