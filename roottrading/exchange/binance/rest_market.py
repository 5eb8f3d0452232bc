"""Binance public REST for market data: paginated klines, exchange info, server time, gap backfill.

Why this shape: Binance bans IPs that ignore rate limits (429 then 418). The client reads the used weight
from every answer, slows down before the limit, waits out Retry-After on 429/418 instead of retrying at
once, and retries 5xx/transport errors with exponential backoff. It never hammers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog

from roottrading.domain import Candle, interval_ms
from roottrading.exchange.binance.parse import ParseError, parse_rest_klines

log = structlog.get_logger(__name__)

MAX_KLINES = 1000


class RestMarketError(RuntimeError):
    """A request that failed for good (4xx other than 429/418, retries exhausted, ban longer than allowed)."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def request_weight_limit(info: dict[str, Any]) -> int | None:
    """The per-minute REQUEST_WEIGHT limit of an exchangeInfo body (Binance: 6000 on spot), or None."""
    for lim in info.get("rateLimits", []):
        if lim.get("rateLimitType") == "REQUEST_WEIGHT" and lim.get("interval") == "MINUTE":
            return int(lim["limit"])
    return None


class BinanceMarketRest:
    """Async client for Binance's public market endpoints (spot by default; any Binance-shaped base URL)."""

    def __init__(
        self,
        base_url: str = "https://api.binance.com",
        *,
        client: httpx.AsyncClient | None = None,
        weight_limit: int = 6000,
        slow_down_ratio: float = 0.8,
        weight_window_s: float = 60.0,
        max_retries: int = 6,
        backoff_s: float = 0.25,
        backoff_max_s: float = 30.0,
        max_ban_wait_s: float = 600.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout_s)
        self._owns_client = client is None
        self.weight_limit = weight_limit
        self.slow_down_ratio = slow_down_ratio
        self.weight_window_s = weight_window_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_ban_wait_s = max_ban_wait_s
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._lock = asyncio.Lock()  # one request at a time: weight accounting stays exact
        self.used_weight = 0
        self.weight_minute = -1  # the window (epoch minute) used_weight was reported in
        self.stats = {"requests": 0, "retries": 0, "429": 0, "418": 0, "5xx": 0, "throttled_s": 0.0}

    def weight_in_use(self, now: float | None = None) -> int:
        """The weight the exchange last reported for the current window; 0 once that window has passed."""
        t = time.time() if now is None else now
        return self.used_weight if int(t // self.weight_window_s) == self.weight_minute else 0

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> BinanceMarketRest:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- transport ------------------------------------------------------------------------------------
    async def _wait(self, seconds: float, why: str) -> None:
        self.stats["throttled_s"] += seconds
        log.warning("binance_rest.waiting", seconds=round(seconds, 3), reason=why)
        await self._sleep(seconds)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET with weight awareness and retries; returns the decoded JSON body."""
        async with self._lock:
            attempt = 0
            while True:
                if self.used_weight >= self.slow_down_ratio * self.weight_limit:
                    # near the limit: wait for the next window boundary (Binance windows are calendar minutes)
                    now = time.time()
                    await self._wait(self.weight_window_s - now % self.weight_window_s + 0.05, "near weight limit")
                    self.used_weight = 0
                self.stats["requests"] += 1
                try:
                    resp = await self._client.get(path, params=params)
                except httpx.TransportError as exc:
                    status, reason = None, f"transport error {type(exc).__name__}: {exc}"
                else:
                    used = resp.headers.get("x-mbx-used-weight-1m")
                    if used is not None and used.isdigit():
                        self.used_weight, self.weight_minute = int(used), int(time.time() // self.weight_window_s)
                    status = resp.status_code
                    if status == 200:
                        return resp.json()
                    reason = f"HTTP {status}: {resp.text[:200]}"
                    if status in (429, 418):
                        self.stats[str(status)] += 1
                        retry_after = float(resp.headers.get("retry-after", "1") or 1)
                        if retry_after > self.max_ban_wait_s:
                            raise RestMarketError(f"{path}: banned for {retry_after}s ({reason})", status)
                        await self._wait(retry_after, f"{status} Retry-After")
                        attempt += 1
                        if attempt > self.max_retries * 3:
                            raise RestMarketError(f"{path}: still rate limited after {attempt} waits", status)
                        continue
                    if status < 500:
                        code = None
                        with contextlib.suppress(ValueError):
                            code = resp.json().get("code")
                        raise RestMarketError(f"{path}: {reason}", status, code)
                    self.stats["5xx"] += 1
                attempt += 1
                if attempt > self.max_retries:
                    raise RestMarketError(f"{path}: giving up after {attempt} attempts ({reason})", status)
                self.stats["retries"] += 1
                delay = self._rng.uniform(0, min(self.backoff_max_s, self.backoff_s * 2**attempt))
                await self._wait(delay, reason)

    # --- endpoints ------------------------------------------------------------------------------------
    async def server_time(self) -> int:
        return int((await self.get("/api/v3/time"))["serverTime"])

    async def exchange_info(self, symbols: list[str] | None = None) -> dict[str, Any]:
        params = None
        if symbols:
            params = {"symbols": "[" + ",".join(f'"{s.upper()}"' for s in symbols) + "]"}
        out: dict[str, Any] = await self.get("/api/v3/exchangeInfo", params)
        limit = request_weight_limit(out)
        if limit is not None:
            self.weight_limit = limit
        return out

    async def klines(
        self, symbol: str, interval: str, start: int | None = None, end: int | None = None, *, limit: int = MAX_KLINES
    ) -> list[Candle]:
        """Candles with start <= open_time <= end (UTC ms), paginated 1000 per request, oldest first.

        Without `start`, returns only the latest `limit` candles. A trailing in-progress candle (real
        Binance includes it) is returned with closed=False only when `end` is None; see `backfill`.
        """
        step = interval_ms(interval)
        sym = symbol.upper()
        if start is None:
            params: dict[str, Any] = {"symbol": sym, "interval": interval, "limit": min(limit, MAX_KLINES)}
            if end is not None:
                params["endTime"] = end
            return self._parse(await self.get("/api/v3/klines", params), sym, interval)
        out: list[Candle] = []
        cursor = start
        while end is None or cursor <= end:
            params = {"symbol": sym, "interval": interval, "startTime": cursor, "limit": MAX_KLINES}
            if end is not None:
                params["endTime"] = end
            page = self._parse(await self.get("/api/v3/klines", params), sym, interval)
            if not page:
                break
            out.extend(c for c in page if c.open_time >= cursor)
            cursor = page[-1].open_time + step
            if len(page) < MAX_KLINES:
                break
        return out

    @staticmethod
    def _parse(body: Any, symbol: str, interval: str) -> list[Candle]:
        try:
            return parse_rest_klines(body, symbol, interval)
        except ParseError as exc:
            raise RestMarketError(f"klines {symbol} {interval}: {exc.reason}") from None

    async def backfill(
        self,
        symbol: str,
        interval: str,
        last_closed_open_time: int | None,
        now_ms: int | None = None,
        *,
        max_candles: int = 10_000,
    ) -> list[Candle]:
        """The CLOSED candles after `last_closed_open_time` up to `now_ms` (server time when None).

        Pass the open time of the last candle you hold with no gap before it (a contiguous watermark),
        not merely the newest one seen: an out-of-order stream can skip a candle. With None, the most
        recent `max_candles` closed candles are returned.
        """
        step = interval_ms(interval)
        now = now_ms if now_ms is not None else await self.server_time()
        last_closable = (now - now % step) - step  # open time of the newest candle closed at `now`
        if last_closed_open_time is None:
            start = last_closable - (max_candles - 1) * step
        else:
            start = max(last_closed_open_time + step, last_closable - (max_candles - 1) * step)
        if start > last_closable:
            return []
        candles = await self.klines(symbol, interval, start, last_closable)
        return [c for c in candles if c.close_time < now]
