"""BinanceTradingRest against a scripted transport: time offset, -1021 resync, 429/418, weights, 5xx."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from roottrading.exchange.binance.signing import HmacSigner, split_signature, verify_hmac
from roottrading.exchange.binance.trading import Banned, BinanceTradingRest, FateUnknown
from roottrading.exchange.errors import InvalidTimestamp, RateLimited

SECRET = "secret-for-tests"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def make(handler: Callable[[httpx.Request], httpx.Response], clock: Clock, **kw) -> BinanceTradingRest:
    client = httpx.AsyncClient(base_url="https://api.test", transport=httpx.MockTransport(handler))
    return BinanceTradingRest("KEY", HmacSigner(SECRET), client=client, sleep=clock.sleep, now=clock.now, seed=1, **kw)


def q(req: httpx.Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(str(req.url)).query).items()}


async def test_server_time_offset_is_applied_to_timestamps_and_requests_are_signed() -> None:
    clock = Clock()
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": int(clock.t * 1000) + 2500})
        return httpx.Response(200, json={"balances": []})

    rest = make(handler, clock)
    await rest.account()
    assert rest.time_offset_ms == 2500
    signed = seen[-1]
    params = q(signed)
    assert int(params["timestamp"]) == int(clock.t * 1000) + 2500
    assert params["recvWindow"] == "5000" and signed.headers["X-MBX-APIKEY"] == "KEY"
    payload, sig = split_signature(urlsplit(str(signed.url)).query)
    assert verify_hmac(SECRET, payload, sig)


async def test_absurd_offset_is_refused() -> None:
    clock = Clock()
    rest = make(lambda r: httpx.Response(200, json={"serverTime": 1_000}), clock)
    assert await rest.sync_time() == 0  # a replaying simulator's clock, not a skewed local clock


async def test_minus_1021_resyncs_and_retries_once() -> None:
    clock = Clock()
    calls = {"time": 0, "account": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/v3/time":
            calls["time"] += 1
            skew = 0 if calls["time"] == 1 else 4000  # the server clock moved: first offset is stale
            return httpx.Response(200, json={"serverTime": int(clock.t * 1000) + skew})
        calls["account"] += 1
        server_now = int(clock.t * 1000) + 4000
        if server_now - int(q(req)["timestamp"]) > 1000:  # outside recvWindow -> -1021
            return httpx.Response(
                400, json={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
            )
        return httpx.Response(200, json={"ok": True})

    rest = make(handler, clock, recv_window=1000)
    assert await rest.account() == {"ok": True}
    assert calls == {"time": 2, "account": 2} and rest.time_offset_ms == 4000


async def test_minus_1021_twice_raises() -> None:
    clock = Clock()

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": int(clock.t * 1000)})
        return httpx.Response(
            400, json={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        )

    with pytest.raises(InvalidTimestamp):
        await make(handler, clock).account()


async def test_429_waits_retry_after_then_succeeds() -> None:
    clock = Clock()
    times: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        times.append(clock.t)
        if len(times) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"code": -1003, "msg": "Too many requests"})
        return httpx.Response(200, json={"serverTime": 1})

    rest = make(handler, clock)
    await rest.request("GET", "/api/v3/time")
    assert times[1] - times[0] >= 7  # never retried before Retry-After
    assert rest.stats["429"] == 1


async def test_418_ban_blocks_every_request_until_it_ends() -> None:
    clock = Clock()
    sent: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        sent.append(req.url.path)
        return httpx.Response(418, headers={"Retry-After": "600"}, json={"code": -1003, "msg": "IP banned"})

    rest = make(handler, clock, max_wait_s=30)
    with pytest.raises(Banned):
        await rest.request("GET", "/api/v3/time")
    with pytest.raises(Banned):  # refused locally: nothing sent while banned
        await rest.request("GET", "/api/v3/time")
    assert sent == ["/api/v3/time"]
    assert isinstance(Banned(), RateLimited)


async def test_used_weight_near_limit_waits_for_next_minute() -> None:
    clock = Clock(1_700_000_010.0)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-MBX-USED-WEIGHT-1M": "1190"}, json={"serverTime": 1})

    rest = make(handler, clock, weight_limit=1200)
    await rest.request("GET", "/api/v3/time")
    assert clock.slept == []
    await rest.request("GET", "/api/v3/time")
    assert clock.slept and abs(clock.slept[0] - (60 - 1_700_000_010.0 % 60)) < 0.1  # to the minute boundary


async def test_order_post_5xx_and_timeout_are_fate_unknown_not_retried() -> None:
    clock = Clock()
    posts: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": int(clock.t * 1000)})
        posts.append(1)
        if len(posts) == 1:
            return httpx.Response(503, json={"code": -1001, "msg": "Internal error"})
        raise httpx.ReadTimeout("slow")

    rest = make(handler, clock)
    for _ in range(2):
        with pytest.raises(FateUnknown):
            await rest.new_order(
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "newClientOrderId": "x"}
            )
    assert len(posts) == 2


async def test_get_5xx_is_retried() -> None:
    clock = Clock()
    n = []

    def handler(req: httpx.Request) -> httpx.Response:
        n.append(1)
        return httpx.Response(502, text="bad gateway") if len(n) < 3 else httpx.Response(200, json={"serverTime": 5})

    assert (await make(handler, clock).request("GET", "/api/v3/time")) == {"serverTime": 5}
    assert len(n) == 3


def test_adapter_from_settings_and_testnet_urls() -> None:
    from types import SimpleNamespace

    from pydantic import SecretStr

    from roottrading.exchange.binance.adapter import BinanceExchange
    from roottrading.exchange.binance.trading import TESTNET_REST, TESTNET_WS

    s = SimpleNamespace(
        binance_api_key=SecretStr("APIKEY123"),
        binance_secret_key=SecretStr("topsecret"),
        binance_rest_url="http://localhost:9000",
        binance_ws_url="ws://localhost:9000",
        binance_testnet=False,
    )
    ex = BinanceExchange(s, clock=None)
    assert str(ex.rest._client.base_url).startswith("http://localhost:9000") and ex.ws_url == "ws://localhost:9000"
    assert "topsecret" not in repr(ex) and "APIKEY123" not in repr(ex)
    s.binance_testnet = True
    ex = BinanceExchange(s)
    assert str(ex.rest._client.base_url).startswith(TESTNET_REST) and ex.ws_url == TESTNET_WS
    with pytest.raises(ValueError):
        BinanceExchange("key", "")
