"""A circuit breaker per dependency (risk, ledger, bus).

closed --N consecutive failures--> open --T seconds--> half_open --probe succeeds--> closed
                                                                  --probe fails----> open (T again)
While open, calls are refused at once ("circuit open: <name>") instead of piling up on a dead service.
Time comes from the platform Clock so backtests and tests control it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CircuitOpen(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"circuit open: {name}")
        self.name = name


class CircuitBreaker:
    def __init__(
        self, name: str, now_ms: Callable[[], int], *, failure_threshold: int = 3, reset_timeout_s: float = 30.0
    ) -> None:
        self.name, self.now_ms = name, now_ms
        self.failure_threshold, self.reset_ms = failure_threshold, int(reset_timeout_s * 1000)
        self.failures = 0
        self.opened_at: int | None = None
        self.probing = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.probing or self.now_ms() - self.opened_at >= self.reset_ms:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open state exactly one probe is let through."""
        st = self.state
        if st == "closed":
            return True
        if st == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def check(self) -> None:
        if not self.allow():
            raise CircuitOpen(self.name)

    def success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.failure_threshold:
            if self.opened_at is None or self.probing:
                self.opened_count += 1
            self.opened_at, self.probing = self.now_ms(), False

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures, "opened": self.opened_count}
