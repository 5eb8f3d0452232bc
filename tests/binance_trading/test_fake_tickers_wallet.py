"""The fake Binance's ticker, wallet, margin and futures-info endpoints: Binance's field names, types, parameters,
errors and weights (what clients such as ccxt read while loading markets and tickers)."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx

from roottrading.datasets import synthetic_candles
from roottrading.exchange.binance.signing import HmacSigner, signed_query
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.trading import trading_extension

from .conftest import API_KEY, API_SECRET

SERIES = {
    "BTCUSDT": synthetic_candles("BTCUSDT", "1m", 3000, seed=3, start_price=30000),
    "ETHBTC": synthetic_candles("ETHBTC", "1m", 3000, seed=4, start_price=0.05),
}
FULL_KEYS = [
    "symbol",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
    "prevClosePrice",
    "lastPrice",
    "lastQty",
    "bidPrice",
    "bidQty",
    "askPrice",
    "askQty",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
]
MINI_KEYS = ["symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume", *FULL_KEYS[-5:]]


def client() -> tuple[httpx.AsyncClient, object]:
    cfg = FakeBinanceConfig(
        symbols=("BTCUSDT", "ETHBTC"),
        source="candles",
        candles=SERIES,
        history_candles=2000,
        api_key=API_KEY,
        api_secret=API_SECRET,
    )
    app = build_app(cfg, [trading_extension])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake"), app.state.fake


def signed(params: dict | None = None) -> str:
    return signed_query({**(params or {}), "timestamp": int(time.time() * 1000)}, HmacSigner(API_SECRET))


async def test_ticker_24hr_full_mini_and_lists() -> None:
    http, state = client()
    src = SERIES["BTCUSDT"]
    async with http:
        r = await http.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})
        t = r.json()
        assert r.status_code == 200 and list(t) == FULL_KEYS
        assert all(isinstance(t[k], str) for k in FULL_KEYS[:16])
        assert all(isinstance(t[k], int) for k in FULL_KEYS[16:])
        window = src[2000 - 1440 : 2000]  # the closed candles of the last 24 h at the simulated now
        assert t["closeTime"] == state.market.now_ms == src[1999].close_time + 1
        assert (t["openTime"], t["openPrice"]) == (window[0].open_time, f"{window[0].open:.8f}")
        assert t["lastPrice"] == f"{src[1999].close:.8f}" and t["prevClosePrice"] == f"{src[559].close:.8f}"
        assert Decimal(t["highPrice"]) == max(Decimal(repr(c.high)) for c in window)
        assert Decimal(t["volume"]) == sum(Decimal(repr(c.volume)) for c in window)
        assert Decimal(t["priceChange"]) == Decimal(t["lastPrice"]) - Decimal(t["openPrice"])
        assert t["priceChangePercent"] == f"{Decimal(t['priceChange']) / Decimal(t['openPrice']) * 100:.3f}"
        assert t["count"] == sum(c.trades for c in window) == t["lastId"] - t["firstId"] + 1
        bid, ask = state.market.book["BTCUSDT"]
        assert (t["bidPrice"], t["askPrice"], t["bidQty"]) == (f"{bid:.8f}", f"{ask:.8f}", "1.00000000")

        r = await http.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "MINI"})
        mini = r.json()
        assert list(mini) == MINI_KEYS and {k: t[k] for k in MINI_KEYS} == mini

        every = (await http.get("/api/v3/ticker/24hr")).json()
        assert [x["symbol"] for x in every] == ["BTCUSDT", "ETHBTC"] and every[0] == t
        some = (await http.get("/api/v3/ticker/24hr", params={"symbols": '["ETHBTC"]'})).json()
        assert isinstance(some, list) and [x["symbol"] for x in some] == ["ETHBTC"]


async def test_book_ticker_and_ticker_errors_and_weights() -> None:
    http, state = client()
    async with http:
        r = await http.get("/api/v3/ticker/bookTicker", params={"symbol": "ETHBTC"})
        bid, ask = state.market.book["ETHBTC"]
        assert r.json() == {
            "symbol": "ETHBTC",
            "bidPrice": f"{bid:.8f}",
            "bidQty": "1.00000000",
            "askPrice": f"{ask:.8f}",
            "askQty": "1.00000000",
        }
        assert int(r.headers["x-mbx-used-weight-1m"]) == 2
        r = await http.get("/api/v3/ticker/bookTicker")
        assert [x["symbol"] for x in r.json()] == ["BTCUSDT", "ETHBTC"]
        assert int(r.headers["x-mbx-used-weight-1m"]) == 2 + 4
        r = await http.get("/api/v3/ticker/24hr")
        assert int(r.headers["x-mbx-used-weight-1m"]) == 2 + 4 + 80
        for path, params, code in [
            ("/api/v3/ticker/24hr", {"symbol": "NOPE"}, -1121),
            ("/api/v3/ticker/24hr", {"symbols": '["BTCUSDT","NOPE"]'}, -1121),
            ("/api/v3/ticker/24hr", {"symbols": "BTCUSDT"}, -1100),
            ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1101),
            ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT", "type": "HUGE"}, -1139),
            ("/api/v3/ticker/bookTicker", {"symbol": "NOPE"}, -1121),
        ]:
            r = await http.get(path, params=params)
            assert (r.status_code, r.json()["code"]) == (400, code), (path, params)


async def test_futures_exchange_info_is_empty() -> None:
    http, state = client()
    async with http:
        usdm = (await http.get("/fapi/v1/exchangeInfo")).json()
        coinm = (await http.get("/dapi/v1/exchangeInfo")).json()
    assert (usdm["symbols"], usdm["assets"], usdm["timezone"]) == ([], [], "UTC")
    assert (coinm["symbols"], coinm["serverTime"]) == ([], state.market.now_ms)
    assert {x["rateLimitType"] for x in usdm["rateLimits"] + coinm["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS"}


async def test_capital_config_getall_lists_the_account_coins_and_margin_pairs_are_empty() -> None:
    http, state = client()
    async with http:
        assert (await http.get("/sapi/v1/capital/config/getall")).json()["code"] == -2014  # no API key
        r = await http.get("/sapi/v1/capital/config/getall", headers={"X-MBX-APIKEY": API_KEY})
        assert r.json()["code"] == -1102  # not signed
        r = await http.get(f"/sapi/v1/capital/config/getall?{signed()}", headers={"X-MBX-APIKEY": API_KEY})
        coins = r.json()
        assert [c["coin"] for c in coins] == ["BTC", "ETH", "USDT"]
        btc, eth, usdt = coins
        assert (btc["free"], btc["locked"], eth["free"], usdt["free"]) == ("1", "0", "0", "10000")
        assert (btc["trading"], btc["isLegalMoney"], btc["depositAllEnable"], btc["withdrawAllEnable"]) == (
            True,
            False,
            False,
            False,
        )
        (net,) = btc["networkList"]
        assert (net["coin"], net["network"], net["isDefault"], net["depositEnable"]) == ("BTC", "BTC", True, False)
        assert isinstance(net["withdrawFee"], str) and isinstance(net["minConfirm"], int) and net["withdrawDesc"]

        # the balances are the account's: a resting order's lock shows up
        price = (state.trading.engine.last_price("BTCUSDT") / 2).quantize(Decimal(1))
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        order |= {"quantity": "0.1", "price": str(price)}
        r = await http.post(f"/api/v3/order?{signed(order)}", headers={"X-MBX-APIKEY": API_KEY})
        assert r.json()["status"] == "NEW", r.json()
        r = await http.get(f"/sapi/v1/capital/config/getall?{signed()}", headers={"X-MBX-APIKEY": API_KEY})
        usdt = r.json()[2]
        assert (Decimal(usdt["free"]), Decimal(usdt["locked"])) == (10000 - price / 10, price / 10)

        assert (await http.get("/sapi/v1/margin/allPairs")).json()["code"] == -2014
        r = await http.get("/sapi/v1/margin/allPairs", headers={"X-MBX-APIKEY": API_KEY})
        assert (r.status_code, r.json()) == (200, [])
        r = await http.get(f"/sapi/v1/margin/isolated/allPairs?{signed()}", headers={"X-MBX-APIKEY": API_KEY})
        assert (r.status_code, r.json()) == (200, [])
