"""Signed Binance Spot REST client: orders, account, trades, listen keys.

Why this shape (Binance's documented rules, and what a careful client does with them):
- SIGNED requests carry `timestamp` + `recvWindow` + `signature`; the timestamp is the local clock plus an
  offset measured against `/api/v3/time`. A -1021 answer re-measures the offset and retries once.
- Limits are read from every answer (X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-10S/1D); the client slows down
  before hitting them, waits out Retry-After on 429, and stops sending for the whole ban on 418. It never
  retries a refused request before the server said it may.
- An order request whose answer is lost (timeout, dropped connection, 5xx) has an UNKNOWN outcome: Binance
  may have executed it. Such requests are never blindly retried here; `FateUnknown` is raised so the caller
  (the adapter) asks the exchange by client order id.
- Secrets and signatures are never logged (only method, path and the error code).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import structlog

from roottrading.exchange.binance.signing import Signer, encode_params
from roottrading.exchange.errors import (
    BinanceError,
    ExchangeError,
    InvalidTimestamp,
    RateLimited,
    TooManyOrders,
    UnknownError,
    error_from_body,
)

log = structlog.get_logger(__name__)

MAINNET_REST = "https://api.binance.com"
MAINNET_WS = "wss://stream.binance.com:9443"
TESTNET_REST = "https://testnet.binance.vision"
TESTNET_WS = "wss://stream.testnet.binance.vision"

# Request weights of the endpoints used here (Binance spot docs); used to pace before sending.
WEIGHTS: dict[tuple[str, str], int] = {
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/openOrders"): 6,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/time"): 1,
    ("POST", "/api/v3/userDataStream"): 2,
    ("PUT", "/api/v3/userDataStream"): 2,
    ("DELETE", "/api/v3/userDataStream"): 2,
    ("POST", "/api/v3/order/test"): 1,
}


class FateUnknown(ExchangeError):
    """The request may or may not have been executed (timeout, dropped connection, 5xx)."""

    def __init__(self, method: str, path: str, cause: str) -> None:
        super().__init__(f"{method} {path}: outcome unknown ({cause})")
        self.cause = cause


class Banned(RateLimited):
    """HTTP 418: the IP is banned until `until` (epoch seconds); longer than the caller wants to wait."""

    http_status = 418

    def __init__(self, msg: str | None = None, until: float = 0.0) -> None:
        super().__init__(msg)
        self.until = until


class BinanceTradingRest:
    """Async client for Binance Spot's signed endpoints. One instance per API key."""

    def __init__(
        self,
        api_key: str,
        signer: Signer,
        *,
        base_url: str = MAINNET_REST,
        client: httpx.AsyncClient | None = None,
        recv_window: int = 5000,
        timeout_s: float = 10.0,
        weight_limit: int = 6000,
        slow_down_ratio: float = 0.9,
        order_limit_10s: int = 100,
        order_limit_1d: int = 200_000,
        max_wait_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.2,
        time_sync: bool = True,
        max_time_offset_ms: int = 3_600_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if not 0 < recv_window <= 60_000:
            raise ValueError(f"recv_window must be in (0, 60000], got {recv_window}")
        self._api_key = api_key
        self._signer = signer
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout_s)
        self._owns_client = client is None
        self.recv_window = recv_window
        self.weight_limit = weight_limit
        self.slow_down_ratio = slow_down_ratio
        self.order_limit_10s = order_limit_10s
        self.order_limit_1d = order_limit_1d
        self.max_wait_s = max_wait_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.time_sync = time_sync
        self.max_time_offset_ms = max_time_offset_ms
        self._sleep = sleep
        self._now = now
        self._rng = random.Random(seed)
        self.time_offset_ms = 0
        self._synced = False
        self.used_weight = 0
        self._weight_window = -1
        self.order_count_10s = 0
        self._order_window = -1
        self.order_count_1d = 0
        self.blocked_until = 0.0  # epoch s: no request before this (Retry-After of a 429/418)
        self.stats = {"requests": 0, "429": 0, "418": 0, "5xx": 0, "-1021": 0, "unknown": 0, "waited_s": 0.0}

    def __repr__(self) -> str:
        return f"BinanceTradingRest(base_url={str(self._client.base_url)!r}, key=<hidden>)"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------------ time
    def timestamp(self) -> int:
        return int(self._now() * 1000) + self.time_offset_ms

    async def sync_time(self) -> int:
        """Measure server time - local time (half the round trip corrects the latency). Returns the offset.

        An offset larger than `max_time_offset_ms` is refused (kept at 0, logged): it means the server clock is
        not a wall clock (e.g. a replaying simulator) rather than a skewed local clock worth following."""
        t0 = self._now()
        body = await self.request("GET", "/api/v3/time")
        t1 = self._now()
        offset = int(body["serverTime"]) - int((t0 + t1) / 2 * 1000)
        if abs(offset) > self.max_time_offset_ms:
            log.error("binance.time_offset_refused", offset_ms=offset, limit_ms=self.max_time_offset_ms)
            offset = 0
        self.time_offset_ms = offset
        self._synced = True
        log.info("binance.time_synced", offset_ms=offset)
        return offset

    # ------------------------------------------------------------------ pacing
    async def _wait(self, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        self.stats["waited_s"] += seconds
        log.warning("binance.waiting", seconds=round(seconds, 3), reason=why)
        await self._sleep(seconds)

    async def _pace(self, method: str, path: str, is_order: bool) -> None:
        now = self._now()
        if self.blocked_until > now:
            wait = self.blocked_until - now
            if wait > self.max_wait_s:
                raise Banned(f"requests blocked for {wait:.0f}s more (Retry-After)", self.blocked_until)
            await self._wait(wait, "Retry-After")
            now = self._now()
        window = int(now // 60)
        if window != self._weight_window:
            self._weight_window, self.used_weight = window, 0
        weight = WEIGHTS.get((method, path), 1)
        if self.used_weight + weight > self.slow_down_ratio * self.weight_limit:
            await self._wait(60 - now % 60 + 0.05, "near the request-weight limit")
            self.used_weight = 0
        if is_order:
            now = self._now()
            w10 = int(now // 10)
            if w10 != self._order_window:
                self._order_window, self.order_count_10s = w10, 0
            if self.order_count_10s + 1 > self.order_limit_10s:
                await self._wait(10 - now % 10 + 0.05, "near the 10s order-count limit")
                self.order_count_10s = 0
            if self.order_count_1d + 1 > self.order_limit_1d:
                raise TooManyOrders(f"daily order limit {self.order_limit_1d} reached (client-side)")

    def weight_in_use(self) -> int:
        """The weight the exchange last reported for the current minute; 0 once that minute has passed."""
        return self.used_weight if int(self._now() // 60) == self._weight_window else 0

    def _read_limits(self, headers: httpx.Headers) -> None:
        used = headers.get("x-mbx-used-weight-1m") or headers.get("x-mbx-used-weight")
        if used is not None and used.isdigit():
            self.used_weight = int(used)
        c10 = headers.get("x-mbx-order-count-10s")
        if c10 is not None and c10.isdigit():
            self.order_count_10s = int(c10)
        c1d = headers.get("x-mbx-order-count-1d")
        if c1d is not None and c1d.isdigit():
            self.order_count_1d = int(c1d)

    # ------------------------------------------------------------------ transport
    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        signed: bool = False,
        api_key: bool = False,
    ) -> Any:
        """Send one request; returns decoded JSON or raises a BinanceError subclass / FateUnknown.

        GETs (and other idempotent calls) are retried on 5xx/transport errors with jittered backoff; POST
        and DELETE on orders are not (their outcome is unknown: FateUnknown)."""
        if signed and self.time_sync and not self._synced:
            await self.sync_time()
        idempotent = method == "GET" or path in ("/api/v3/userDataStream",)
        is_order = method == "POST" and path == "/api/v3/order"
        attempt = 0
        resynced = False
        while True:
            await self._pace(method, path, is_order)
            headers = {"X-MBX-APIKEY": self._api_key} if (signed or api_key) else {}
            query = encode_params(params or {})
            if signed:
                query = encode_params({**(params or {}), "recvWindow": self.recv_window, "timestamp": self.timestamp()})
                sig = self._signer.sign(query)
                query = f"{query}&{encode_params({'signature': sig})}"
            url = f"{path}?{query}" if query else path
            self.stats["requests"] += 1
            try:
                resp = await self._client.request(method, url, headers=headers)
            except httpx.ConnectError as exc:  # never reached the server: safe to retry
                reason = f"connect error: {exc!r}"
                status = None
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if not idempotent:
                    self.stats["unknown"] += 1
                    raise FateUnknown(method, path, type(exc).__name__) from None
                reason, status = f"transport error {type(exc).__name__}", None
            else:
                self._read_limits(resp.headers)
                status = resp.status_code
                if status < 300:
                    return resp.json()
                if status in (429, 418):
                    self.stats[str(status)] += 1
                    retry_after = float(resp.headers.get("retry-after", "1") or 1)
                    self.blocked_until = max(self.blocked_until, self._now() + retry_after)
                    err = _decode_error(resp)
                    if status == 418 or retry_after > self.max_wait_s:
                        log.error("binance.refused", status=status, path=path, retry_after=retry_after)
                        if status == 418:
                            raise Banned(err.msg, self.blocked_until)
                        raise err
                    attempt += 1
                    if attempt > self.max_retries:
                        raise err
                    continue  # _pace waits until blocked_until
                if status >= 500:
                    self.stats["5xx"] += 1
                    if not idempotent:
                        self.stats["unknown"] += 1
                        raise FateUnknown(method, path, f"HTTP {status}")
                    reason = f"HTTP {status}"
                else:
                    err = _decode_error(resp)
                    if isinstance(err, InvalidTimestamp) and signed and not resynced:
                        self.stats["-1021"] += 1
                        resynced = True
                        log.warning("binance.timestamp_rejected_resync", path=path)
                        if self.time_sync:
                            await self.sync_time()
                        continue
                    raise err
            attempt += 1
            if attempt > self.max_retries:
                if status is None and not idempotent and "connect" not in reason:
                    raise FateUnknown(method, path, reason)
                raise UnknownError(f"{method} {path}: giving up after {attempt} attempts ({reason})")
            delay = self._rng.uniform(0, self.backoff_s * 2**attempt)
            await self._wait(delay, reason)

    # ------------------------------------------------------------------ endpoints
    async def exchange_info(self, symbols: list[str] | None = None) -> dict[str, Any]:
        params = {"symbols": "[" + ",".join(f'"{s}"' for s in symbols) + "]"} if symbols else None
        body: dict[str, Any] = await self.request("GET", "/api/v3/exchangeInfo", params)
        for lim in body.get("rateLimits", []):
            if lim.get("rateLimitType") == "REQUEST_WEIGHT" and lim.get("interval") == "MINUTE":
                self.weight_limit = int(lim["limit"]) * int(lim.get("intervalNum", 1))
            elif lim.get("rateLimitType") == "ORDERS" and lim.get("interval") == "SECOND":
                self.order_limit_10s = int(lim["limit"])
            elif lim.get("rateLimitType") == "ORDERS" and lim.get("interval") == "DAY":
                self.order_limit_1d = int(lim["limit"])
        return body

    async def new_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self.request(
            "POST", "/api/v3/order", {**params, "newOrderRespType": "FULL"}, signed=True
        )
        return out

    async def test_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("POST", "/api/v3/order/test", params, signed=True)
        return out

    async def query_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.request(
            "GET", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_order_id}, signed=True
        )
        return out

    async def cancel_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.request(
            "DELETE", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_order_id}, signed=True
        )
        return out

    async def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self.request("GET", "/api/v3/openOrders", {"symbol": symbol}, signed=True)
        return out

    async def cancel_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self.request("DELETE", "/api/v3/openOrders", {"symbol": symbol}, signed=True)
        return out

    async def account(self) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("GET", "/api/v3/account", signed=True)
        return out

    async def my_trades(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self.request(
            "GET",
            "/api/v3/myTrades",
            {"symbol": symbol, "startTime": start_time, "endTime": end_time, "fromId": from_id, "limit": limit},
            signed=True,
        )
        return out

    async def all_orders(self, symbol: str, *, order_id: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = await self.request(
            "GET", "/api/v3/allOrders", {"symbol": symbol, "orderId": order_id, "limit": limit}, signed=True
        )
        return out

    async def create_listen_key(self) -> str:
        return str((await self.request("POST", "/api/v3/userDataStream", api_key=True))["listenKey"])

    async def keepalive_listen_key(self, key: str) -> None:
        await self.request("PUT", "/api/v3/userDataStream", {"listenKey": key}, api_key=True)

    async def close_listen_key(self, key: str) -> None:
        await self.request("DELETE", "/api/v3/userDataStream", {"listenKey": key}, api_key=True)


def _decode_error(resp: httpx.Response) -> BinanceError:
    try:
        body = resp.json()
    except ValueError:
        return UnknownError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    return error_from_body(body)
