"""How the coordinator asks the risk manager: directly when it is hosted in the same process
(`ctx.peer("risk")`), else HTTP POST <risk_url>/check with the platform's bearer token.

Several risk instances (active/standby, runtime/leader.py): `risk_url` may list several base URLs separated by
commas. A standby answers 503 and a dead instance does not answer: the client then tries the next URL, and
remembers the one that answered, so after a takeover the first check finds the new leader and the next ones
go straight to it. Why not forward from the standby to the leader: the caller already knows every instance,
and one hop fewer keeps the check's latency.

A failover in progress is waited for, not failed: when no URL decides but a standby answered, a leader will
be elected within one lease (the dead leader's lease expires, the standby takes it), so the check is tried
again every `FAILOVER_POLL_S` for up to `failover_wait_s`. Failing at once instead would open the
coordinator's risk circuit for its whole reset time and reject every entry signal meanwhile (the HA test saw
110-500 signals lost per leader kill)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec

from roottrading import messages as m
from roottrading.risk import OrderIntent, RiskDecision

FAILOVER_POLL_S = 0.25
DEFAULT_FAILOVER_WAIT_S = 12.0  # the Redis bus's default lease (10 s) and a margin


class RiskUnavailable(Exception):
    """The risk manager could not give an answer (down, timeout, bad response)."""


class RiskStandby(RiskUnavailable):
    """A standby answered (503): a leader exists or will be elected within one lease."""


class RiskClient:
    def __init__(
        self, ctx: Any, *, url: str | None = None, timeout_s: float = 2.0, failover_wait_s: float | None = None
    ) -> None:
        self.ctx = ctx
        port = ctx.settings.service_ports.get("risk", 5007)
        self.urls = [u.strip().rstrip("/") for u in (url or f"http://127.0.0.1:{port}").split(",") if u.strip()]
        self.preferred = 0  # index of the URL that answered last
        self.timeout_s = timeout_s
        self.failover_wait_s = _failover_wait(ctx) if failover_wait_s is None else failover_wait_s
        self.failovers_waited = 0  # checks that found no leader at first and waited for the election
        self._http: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        return self.urls[self.preferred]

    @property
    def mode(self) -> str:
        return "in-process" if self.ctx.peer("risk") is not None else "http"

    async def check(self, intent: OrderIntent) -> RiskDecision:
        peer = self.ctx.peer("risk")
        if peer is not None:
            try:
                return await peer.check(intent)
            except Exception as exc:
                raise RiskUnavailable(f"risk check failed in process: {exc!r}") from exc
        return await self._http_check(intent)

    async def _http_check(self, intent: OrderIntent) -> RiskDecision:
        """Every URL once; while only standbys answer (a failover), again until `failover_wait_s` is spent."""
        deadline: float | None = None
        while True:
            decision, errors, standby = await self._try_each(intent)
            if decision is not None:
                return decision
            now = time.monotonic()
            if deadline is None and standby:
                deadline = now + self.failover_wait_s
                self.failovers_waited += 1
            if deadline is None or now >= deadline:
                waited = f" (no leader within {self.failover_wait_s:g} s)" if deadline is not None else ""
                raise RiskUnavailable("; ".join(errors) + waited)
            await asyncio.sleep(FAILOVER_POLL_S)

    async def _try_each(self, intent: OrderIntent) -> tuple[RiskDecision | None, list[str], bool]:
        """The preferred URL first, then the others in order; the first that decides becomes preferred.
        Returns (decision or None, the errors, whether a standby answered)."""
        errors: list[str] = []
        standby = False
        n = len(self.urls)
        for i in (self.preferred + k for k in range(n)):
            try:
                decision = await self._check_at(self.urls[i % n], intent)
            except RiskUnavailable as exc:
                standby = standby or isinstance(exc, RiskStandby)
                errors.append(str(exc))
                continue
            self.preferred = i % n
            return decision, errors, standby
        return None, errors, standby

    async def _check_at(self, url: str, intent: OrderIntent) -> RiskDecision:
        if self._http is None:
            token, _ = self.ctx.settings.ensure_api_token()
            self._http = httpx.AsyncClient(timeout=self.timeout_s, headers={"Authorization": f"Bearer {token}"})
        try:
            resp = await self._http.post(
                f"{url}/check",
                content=msgspec.json.encode(m.to_builtins(intent)),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise RiskUnavailable(f"risk service unreachable at {url}: {exc!r}") from None
        if resp.status_code == 503 and len(self.urls) > 1:
            raise RiskStandby(f"risk service at {url} is a standby: {resp.text[:200]}")
        if resp.status_code != 200:
            raise RiskUnavailable(f"risk service at {url} answered {resp.status_code}: {resp.text[:200]}")
        try:
            return msgspec.json.decode(resp.content, type=RiskDecision)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RiskUnavailable(f"bad risk response: {exc}") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _failover_wait(ctx: Any) -> float:
    """One lease of the bus the leaders are elected on, and a margin; the default when it has none."""
    lease_ms = getattr(getattr(ctx, "bus", None), "lease_ms", None)
    return lease_ms / 1000 + 2.0 if isinstance(lease_ms, int | float) else DEFAULT_FAILOVER_WAIT_S
