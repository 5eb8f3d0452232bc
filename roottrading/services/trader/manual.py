"""How the trader submits a manual entry (its API) or a position adjustment (cycle_adjust.py) to the
coordinator, which applies the money rules (risk check, pocket reservation) before the order exists:
directly when the coordinator is hosted in the same process (`ctx.peer("coordinator")`), else HTTP POST
<coordinator url>/manual or /adjust with the platform's bearer token. Unreachable means refused (503 for a
manual entry, no addition for an adjustment): neither bypasses the pockets and the risk manager."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import msgspec

from roottrading import messages as m
from roottrading.domain import OrderRequest


class CoordinatorUnavailable(Exception):
    """The coordinator could not decide (down, timeout, bad answer): the manual entry is not sent."""


class ManualEntryClient:
    def __init__(self, ctx: Any, *, url: str | None = None, timeout_s: float = 5.0) -> None:
        self.ctx = ctx
        port = ctx.settings.service_ports.get("coordinator", 5003)
        self.url = (url or f"http://127.0.0.1:{port}").rstrip("/")
        self.timeout_s = timeout_s

    async def submit(self, req: OrderRequest, price: Decimal) -> dict[str, Any]:
        """{"decision": accepted|rejected|failed, "reason", "request": the funded request or None}."""
        peer = self.ctx.peer("coordinator")
        if peer is not None:
            return await peer.manual_entry(req, price)
        return await self._post("/manual", req, price)

    async def adjust(self, req: OrderRequest, price: Decimal) -> dict[str, Any]:
        """The coordinator's answer to an addition to cycle `req.cycle_id` (same shape as `submit`)."""
        peer = self.ctx.peer("coordinator")
        if peer is not None:
            return await peer.adjust_entry(req, price)
        return await self._post("/adjust", req, price)

    async def _post(self, path: str, req: OrderRequest, price: Decimal) -> dict[str, Any]:
        token, _ = self.ctx.settings.ensure_api_token()
        body = {"request": m.to_builtins(req), "price": str(price)}
        try:
            async with httpx.AsyncClient(
                base_url=self.url, timeout=self.timeout_s, headers={"Authorization": f"Bearer {token}"}
            ) as http:
                resp = await http.post(
                    path, content=msgspec.json.encode(body), headers={"Content-Type": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise CoordinatorUnavailable(f"coordinator unreachable at {self.url}: {exc!r}") from None
        if resp.status_code != 200:
            raise CoordinatorUnavailable(f"coordinator answered {resp.status_code}: {resp.text[:200]}")
        try:
            answer = resp.json()
        except ValueError as exc:
            raise CoordinatorUnavailable(f"bad coordinator answer: {exc}") from None
        if not isinstance(answer, dict) or "decision" not in answer:
            raise CoordinatorUnavailable(f"bad coordinator answer: {str(answer)[:200]}")
        return answer
