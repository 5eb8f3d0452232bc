"""Fake Binance REST semantics (klines windows, errors, weights/429/418) and the REST client against it."""

from __future__ import annotations

import httpx
import pytest

from roottrading.datasets import load_candles, synthetic_candles
from roottrading.exchange.binance.rest_market import BinanceMarketRest, RestMarketError
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app


def client_for(cfg: FakeBinanceConfig) -> tuple[httpx.AsyncClient, object]:
    app = build_app(cfg)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake"), app.state.fake


SERIES = {"BTCUSDT": synthetic_candles("BTCUSDT", "1m", 3000, seed=3, start_price=30000)}


async def test_klines_binance_semantics() -> None:
    http, state = client_for(
        FakeBinanceConfig(symbols=("BTCUSDT",), source="candles", candles=SERIES, history_candles=2500)
    )
    src = SERIES["BTCUSDT"]
    async with http:
        r = await http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"})
        rows = r.json()
        assert len(rows) == 500 and rows[-1][0] == src[2499].open_time  # latest 500 CLOSED candles
        assert rows[-1] == [
            src[2499].open_time,
            f"{src[2499].open:.8f}",
            f"{src[2499].high:.8f}",
            f"{src[2499].low:.8f}",
            f"{src[2499].close:.8f}",
            f"{src[2499].volume:.8f}",
            src[2499].close_time,
            f"{src[2499].quote_volume:.8f}",
            src[2499].trades,
            "0.00000000",
            "0.00000000",
            "0",
        ]
        r = await http.get(
            "/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1m", "startTime": src[10].open_time + 1, "limit": 1000},
        )
        assert [x[0] for x in r.json()] == [c.open_time for c in src[11:1011]]
        r = await http.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "endTime": src[100].open_time, "limit": 5}
        )
        assert [x[0] for x in r.json()] == [c.open_time for c in src[96:101]]
        r = await http.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "startTime": src[2490].open_time}
        )
        assert len(r.json()) == 10  # nothing beyond simulated now
        for params, code in [
            ({"symbol": "NOPE", "interval": "1m"}, -1121),
            ({"symbol": "BTCUSDT"}, -1102),
            ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, -1130),
            ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 5, "endTime": 1}, -1023),
        ]:
            r = await http.get("/api/v3/klines", params=params)
            assert r.status_code == 400 and r.json()["code"] == code, params
        assert (await http.get("/api/v3/time")).json() == {"serverTime": state.market.now_ms}
        info = (await http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"})).json()
        f = {x["filterType"]: x for x in info["symbols"][0]["filters"]}
        assert f["PRICE_FILTER"]["tickSize"] == "0.01000000" and info["symbols"][0]["quoteAsset"] == "USDT"
        price = (await http.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
        assert float(price["price"]) == src[2499].close
        depth = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})).json()
        assert len(depth["bids"]) == 5 and float(depth["bids"][0][0]) < float(depth["asks"][0][0])


async def test_rest_client_paginates_and_backfills_exactly() -> None:
    http, state = client_for(
        FakeBinanceConfig(symbols=("BTCUSDT",), source="candles", candles=SERIES, history_candles=2999)
    )
    src = SERIES["BTCUSDT"]
    rest = BinanceMarketRest(client=http)
    got = await rest.klines("BTCUSDT", "1m", src[0].open_time, src[2998].open_time)
    assert got == src[:2999]
    assert rest.stats["requests"] == 3
    missing = await rest.backfill("BTCUSDT", "1m", src[1234].open_time)  # now = server time
    assert missing == src[1235:2999]
    assert await rest.backfill("BTCUSDT", "1m", src[2998].open_time) == []
    assert rest.used_weight == state.limiter.used("127.0.0.1") > 0


async def test_real_binance_open_candle_is_not_backfilled() -> None:
    http, state = client_for(
        FakeBinanceConfig(
            symbols=("BTCUSDT",), source="candles", candles=SERIES, history_candles=100, rest_include_open_candle=True
        )
    )
    state.market.now_ms += 30_000  # mid-candle, like real Binance between closes
    rest = BinanceMarketRest(client=http)
    rows = (await http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 3})).json()
    assert rows[-1][0] == SERIES["BTCUSDT"][100].open_time  # the open candle is there ...
    got = await rest.backfill("BTCUSDT", "1m", SERIES["BTCUSDT"][90].open_time)
    assert got == SERIES["BTCUSDT"][91:100]  # ... but backfill returns closed candles only


async def test_weight_limit_429_then_418_ban() -> None:
    http, state = client_for(
        FakeBinanceConfig(
            symbols=("BTCUSDT",),
            weight_limit=10,
            weight_window_s=3600,
            ban_s=300,
            synthetic_count=50,
            history_candles=10,
        )
    )
    async with http:
        for i in range(10):
            r = await http.get("/api/v3/ping")
            assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == str(i + 1)
        r = await http.get("/api/v3/ping")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and r.json()["code"] == -1003
        r = await http.get("/api/v3/ping")  # ignored the 429
        assert r.status_code == 418 and 299 <= int(r.headers["retry-after"]) <= 300
        assert (await http.get("/api/v3/time")).status_code == 418  # still banned
        assert state.limiter.counts["while_banned"] == 1


async def test_client_waits_out_429_and_retries_5xx_without_hammering() -> None:
    cfg = FakeBinanceConfig(
        symbols=("BTCUSDT",),
        synthetic_count=3000,
        history_candles=2500,
        seed=5,
        rest_429_prob=0.2,
        rest_5xx_prob=0.2,
        rest_418_prob=0.05,
        fault_ban_s=30,
    )
    http, state = client_for(cfg)
    now = [1_000_000.0]
    state.limiter.clock = lambda: now[0]  # the server's wall clock moves only when the client sleeps
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    rest = BinanceMarketRest(client=http, sleep=fake_sleep, seed=1, max_retries=20)
    src = state.market.series["BTCUSDT"]
    for i in range(0, 2500, 100):  # 25 pages of 100 -> many requests, many faults
        assert await rest.klines("BTCUSDT", "1m", src[i].open_time, src[i + 99].open_time) == src[i : i + 100]
    assert rest.stats["429"] > 0 and rest.stats["418"] > 0 and rest.stats["5xx"] > 0
    assert len(slept) == rest.stats["429"] + rest.stats["418"] + rest.stats["retries"]  # a wait before each retry
    assert state.limiter.counts["while_banned"] == 0  # never hammers: no request sent during a ban
    assert sum(slept) >= rest.stats["429"] + 30 * rest.stats["418"]  # Retry-After honoured


async def test_client_slows_down_near_limit_and_raises_on_4xx() -> None:
    http, _ = client_for(
        FakeBinanceConfig(symbols=("BTCUSDT",), weight_limit=10, synthetic_count=50, history_candles=10)
    )
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    rest = BinanceMarketRest(client=http, sleep=fake_sleep, weight_limit=10, slow_down_ratio=0.5)
    for _ in range(5):
        await rest.server_time()
    assert not slept
    await rest.server_time()  # used weight 5 >= 0.5 * 10: waits for the next window first
    assert len(slept) == 1 and 0 < slept[0] <= 60.1
    with pytest.raises(RestMarketError) as err:
        await rest.klines("NOPE", "1m", limit=5)
    assert err.value.status == 400 and err.value.code == -1121


def test_bundled_source_serves_real_candles() -> None:
    app = build_app(
        FakeBinanceConfig(symbols=("BTCUSDT",), source="bundled", aliases={"BTCUSDT": "BTCBUSD"}, history_candles=100)
    )
    m = app.state.fake.market
    assert m.closed_candles("BTCUSDT") == load_candles("BTCBUSD", "1m", as_symbol="BTCUSDT")[:100]
