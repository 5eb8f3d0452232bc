"""Circuit breaker: opens after N consecutive failures, refuses for T seconds, lets one probe through."""

from __future__ import annotations

from roottrading.clock import SimClock
from roottrading.services.coordinator.breaker import CircuitBreaker


def test_open_half_open_closed_cycle() -> None:
    clock = SimClock(0)
    b = CircuitBreaker("risk", clock.now_ms, failure_threshold=3, reset_timeout_s=10)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    b.success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state == "open" and not b.allow()
    clock.advance(9_999)
    assert not b.allow()
    clock.advance(1)
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # exactly one probe
    b.failure()  # probe failed: open again for T
    assert b.state == "open" and b.opened_count == 2
    clock.advance(10_000)
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.snapshot()["failures"] == 0
