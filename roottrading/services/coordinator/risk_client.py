"""How the coordinator asks the risk manager: directly when it is hosted in the same process
(`ctx.peer("risk")`), else HTTP POST <risk_url>/check with the platform's bearer token."""

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
        self.url = (url or f"http://127.0.0.1:{port}").rstrip("/")
        self.timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None

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
        if self._http is None:
            token, _ = self.ctx.settings.ensure_api_token()
            self._http = httpx.AsyncClient(
                base_url=self.url, timeout=self.timeout_s, headers={"Authorization": f"Bearer {token}"}
            )
        try:
            resp = await self._http.post(
                "/check",
                content=msgspec.json.encode(m.to_builtins(intent)),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise RiskUnavailable(f"risk service unreachable at {self.url}: {exc!r}") from None
        if resp.status_code != 200:
            raise RiskUnavailable(f"risk service answered {resp.status_code}: {resp.text[:200]}")
        try:
            return msgspec.json.decode(resp.content, type=RiskDecision)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RiskUnavailable(f"bad risk response: {exc}") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
