"""How the coordinator asks the risk manager: directly when it is hosted in the same process
(`ctx.peer("risk")`), else HTTP POST <risk_url>/check with the platform's bearer token.

Several risk instances (active/standby, runtime/leader.py): `risk_url` may list several base URLs separated by
commas. A standby answers 503 and a dead instance does not answer: the client then tries the next URL, and
remembers the one that answered, so after a takeover the first check finds the new leader and the next ones
go straight to it. Why not forward from the standby to the leader: the caller already knows every instance,
and one hop fewer keeps the check's latency."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from roottrading import messages as m
from roottrading.risk import OrderIntent, RiskDecision


class RiskUnavailable(Exception):
    """The risk manager could not give an answer (down, timeout, bad response)."""


class RiskClient:
    def __init__(self, ctx: Any, *, url: str | None = None, timeout_s: float = 2.0) -> None:
        self.ctx = ctx
        port = ctx.settings.service_ports.get("risk", 5007)
        self.urls = [u.strip().rstrip("/") for u in (url or f"http://127.0.0.1:{port}").split(",") if u.strip()]
        self.preferred = 0  # index of the URL that answered last
        self.timeout_s = timeout_s
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
        """The preferred URL first, then the others in order; the first that decides becomes preferred."""
        errors = []
        n = len(self.urls)
        for i in (self.preferred + k for k in range(n)):
            try:
                decision = await self._check_at(self.urls[i % n], intent)
            except RiskUnavailable as exc:
                errors.append(str(exc))
                continue
            self.preferred = i % n
            return decision
        raise RiskUnavailable("; ".join(errors))

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
