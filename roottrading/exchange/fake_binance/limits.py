"""Binance-like request-weight accounting per client IP: 429 + Retry-After, then 418 bans if ignored.

Implemented as pure ASGI middleware keyed by path, so routes added later by other modules are charged
by adding an entry to `route_weights` (a number or a function of the query parameters).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

from roottrading.exchange.fake_binance.config import FakeBinanceConfig

WeightSpec = int | Callable[[dict[str, str]], int]


def depth_weight(q: dict[str, str]) -> int:
    limit = int(q.get("limit", "100") or 100)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


DEFAULT_WEIGHTS: dict[str, WeightSpec] = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/depth": depth_weight,
    "/api/v3/ticker/price": lambda q: 2 if "symbol" in q else 4,
}


@dataclass
class _Client:
    window: int = -1
    used: int = 0
    warned: bool = False  # got a 429 in this window
    banned_until: float = 0.0


class WeightLimiter:
    def __init__(self, cfg: FakeBinanceConfig, rng: random.Random, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.rng = rng
        self.clock = clock
        self.route_weights: dict[str, WeightSpec] = dict(DEFAULT_WEIGHTS)
        self.clients: dict[str, _Client] = {}
        self.counts = {"429": 0, "418": 0, "5xx": 0, "ok": 0, "while_banned": 0}

    def used(self, ip: str) -> int:
        c = self.clients.get(ip)
        return c.used if c and c.window == self._window() else 0

    def _window(self) -> int:
        return int(self.clock() // self.cfg.weight_window_s)

    def check(self, ip: str, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """None to let the request through (weight charged), or (status, headers, body) to refuse it."""
        spec = self.route_weights.get(path)
        if spec is None:
            return None
        weight = spec(query) if callable(spec) else spec
        now = self.clock()
        c = self.clients.setdefault(ip, _Client())
        if c.window != self._window():
            c.window, c.used, c.warned = self._window(), 0, False
        if now < c.banned_until:
            self.counts["while_banned"] += 1  # a well-behaved client never gets here
            return self._ban_reply(c, now)
        r = self.rng.random()
        if r < self.cfg.rest_418_prob:
            c.banned_until = now + self.cfg.fault_ban_s
            return self._ban_reply(c, now)
        if r < self.cfg.rest_418_prob + self.cfg.rest_429_prob:
            self.counts["429"] += 1
            return 429, {"Retry-After": "1"}, {"code": -1003, "msg": "Too many requests (injected fault)."}
        if r < self.cfg.rest_418_prob + self.cfg.rest_429_prob + self.cfg.rest_5xx_prob:
            self.counts["5xx"] += 1
            return 503, {}, {"code": -1001, "msg": "Internal error; unable to process your request. (injected)"}
        if c.used + weight > self.cfg.weight_limit:
            if c.warned:  # kept hammering after a 429: ban, like Binance
                c.banned_until = now + self.cfg.ban_s
                return self._ban_reply(c, now)
            c.warned = True
            self.counts["429"] += 1
            retry = max(1, math.ceil((c.window + 1) * self.cfg.weight_window_s - now))
            return (
                429,
                {"Retry-After": str(retry)},
                {
                    "code": -1003,
                    "msg": f"Too many requests; current limit of IP({ip}) request weight is "
                    f"{self.cfg.weight_limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates.",
                },
            )
        c.used += weight
        self.counts["ok"] += 1
        return None

    def _ban_reply(self, c: _Client, now: float) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.counts["418"] += 1
        until_ms = int(c.banned_until * 1000)
        return (
            418,
            {"Retry-After": str(max(1, math.ceil(c.banned_until - now)))},
            {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            },
        )


class WeightMiddleware:
    """Charges weight before routing and adds X-MBX-USED-WEIGHT(-1M) headers to every answer."""

    def __init__(self, app: ASGIApp, limiter: WeightLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ip = (scope.get("client") or ("unknown", 0))[0]
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        refused = self.limiter.check(ip, scope["path"], query)
        used = str(self.limiter.used(ip)).encode()
        weight_headers = [(b"x-mbx-used-weight", used), (b"x-mbx-used-weight-1m", used)]
        if refused is not None:
            status, headers, body = refused
            raw = msgspec.json.encode(body)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(raw)).encode()),
                        *weight_headers,
                        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": raw})
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *weight_headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
