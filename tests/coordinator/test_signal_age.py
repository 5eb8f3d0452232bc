"""A backlog of old signals (after an outage, a stalled consumer) never opens positions at today's prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.services.coordinator.config import CoordinatorConfig
from roottrading.services.coordinator.filters import age_filter
from tests.coordinator.helpers import T0, Capture, make_host, message, sig


async def test_stale_entry_is_rejected_with_its_age_and_fresh_one_accepted(tmp_path: Path) -> None:
    clock = SimClock(T0 + 10 * 60_000)  # market time: 10 minutes after T0
    host = await make_host(tmp_path, ["risk", "coordinator"], clock=clock, max_signal_age_s=300)
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("old", time=T0)))  # closed 10 minutes ago: stale
        await co.on_signal(message(sig("fresh", strategy="s2", time=T0 + 9 * 60_000)))  # one minute old
        assert await host.bus.drain(5)
        old = await co.decisions.query(signal_id="old")
        assert [d["decision"] for d in old] == ["rejected"]
        assert "stale" in old[0]["reason"] and "600s" in old[0]["reason"]
        assert old[0]["details"]["stage"] == "filter"
        assert [d["decision"] for d in await co.decisions.query(signal_id="fresh")] == ["accepted"]
        assert [r.signal_id for r in cap.requests] == ["fresh"]
        assert len(await co.ledger.reservations()) == 1  # the stale signal reserved nothing
    finally:
        await host.stop()


def test_age_filter_limits() -> None:
    cfg = CoordinatorConfig(max_signal_age_s=120)
    assert age_filter(sig("a", time=T0), cfg, T0 + 120_000) is None  # exactly at the limit: still fresh
    assert age_filter(sig("a", time=T0), cfg, T0 + 120_001) is not None
    assert age_filter(sig("a", time=T0 + 5_000), cfg, T0) is None  # clock behind the signal: not stale
    assert age_filter(sig("a", time=T0), CoordinatorConfig(max_signal_age_s=0), T0 + 10**9) is None  # 0: off


def test_default_limit_is_a_few_minutes() -> None:
    assert 60 <= CoordinatorConfig().max_signal_age_s <= 600
    with pytest.raises(ValueError):
        CoordinatorConfig(max_signal_age_s=-1)


def test_demo_scales_the_limit_to_its_replay_speed() -> None:
    from roottrading.services.gateway.demo import demo_max_signal_age_s

    # 20 one-minute candles per wall second: 5 wall seconds late is 6000 s of market time
    assert demo_max_signal_age_s("1m", 20.0) == 6000.0
    assert demo_max_signal_age_s("1m", 0.01) == 300.0  # never below the live default
