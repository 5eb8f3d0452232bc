"""ccxt's Binance client, as it comes (DEFAULT options), against the fake Binance.

Only where ccxt connects changes: every `urls['api']` entry points at the local server. Nothing in `options`
is touched, so ccxt asks for what it asks a real Binance for by default: the coin list
(`/sapi/v1/capital/config/getall`), margin pairs, the USD-M and COIN-M futures exchangeInfo, the 24h ticker...
The market is paused so that every value the client reads can be checked against the simulator's state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from roottrading.exchange.fake_binance.rest import symbol_info

from .conftest import API_KEY, API_SECRET, Server

DAY_MS = 86_400_000


def d(x: Any) -> Decimal:
    """ccxt hands back floats; compare them as the decimal strings they were parsed from."""
    return Decimal(str(x))


@contextlib.asynccontextmanager
async def ccxt_client(srv: Server) -> AsyncIterator[ccxt.binance]:
    """A ccxt Binance client with default options whose every API host is the fake server."""
    ex = ccxt.binance({"apiKey": API_KEY, "secret": API_SECRET})
    defaults = ccxt.binance().options
    assert ex.options == defaults  # nothing but the keys was configured
    for name, url in ex.urls["api"].items():
        parts = urlsplit(url)
        ex.urls["api"][name] = srv.url + parts.path
    try:
        yield ex
    finally:
        await ex.close()


async def test_ccxt_default_options_loads_markets_and_reads_market_data(fake_binance) -> None:
    async with fake_binance(start_paused=True) as srv, ccxt_client(srv) as ex:
        market = srv.state.market
        candles = market.closed_candles("BTCUSDT")
        info = symbol_info("BTCUSDT", market.series["BTCUSDT"])
        tick = Decimal(info["filters"][0]["tickSize"])
        step = Decimal(info["filters"][1]["stepSize"])

        markets = await ex.load_markets()
        assert list(markets) == ["BTC/USDT"]  # no futures markets: the simulator trades spot only
        m = markets["BTC/USDT"]
        assert (m["id"], m["type"], m["spot"], m["active"]) == ("BTCUSDT", "spot", True, True)
        assert (d(m["precision"]["price"]), d(m["precision"]["amount"])) == (tick, step)
        assert d(m["limits"]["cost"]["min"]) == Decimal("5")
        # the currencies come from /sapi/v1/capital/config/getall: the account's assets, with its balances
        assert set(ex.currencies) - {"BNFCR"} == {"BTC", "USDT"}  # BNFCR: built into ccxt (futures credit)
        btc = ex.currencies["BTC"]
        # tradable; no deposits or withdrawals in a simulator, and it says so as Binance would
        assert (btc["id"], btc["active"], btc["deposit"], btc["withdraw"]) == ("BTC", True, False, False)
        assert list(btc["networks"]) == ["BTC"] and btc["networks"]["BTC"]["deposit"] is False
        assert d(btc["fees"]["BTC"]) == Decimal(btc["info"]["networkList"][0]["withdrawFee"])
        assert (btc["info"]["free"], ex.currencies["USDT"]["info"]["free"]) == ("1", "10000")

        last, (bid, ask) = Decimal(repr(market.last_price["BTCUSDT"])), market.book["BTCUSDT"]
        window = [c for c in candles if c.open_time >= market.now_ms - DAY_MS]
        ticker = await ex.fetch_ticker("BTC/USDT")
        assert ticker["symbol"] == "BTC/USDT" and ticker["timestamp"] == market.now_ms
        assert d(ticker["last"]) == last == Decimal(repr(candles[-1].close))
        assert d(ticker["open"]) == Decimal(repr(window[0].open))
        assert d(ticker["high"]) == Decimal(repr(max(c.high for c in window)))
        assert d(ticker["low"]) == Decimal(repr(min(c.low for c in window)))
        assert d(ticker["baseVolume"]) == sum(Decimal(repr(c.volume)) for c in window)
        assert (d(ticker["bid"]), d(ticker["ask"])) == (Decimal(repr(bid)), Decimal(repr(ask)))
        assert d(ticker["change"]) == last - Decimal(repr(window[0].open))

        tickers = await ex.fetch_tickers()
        assert list(tickers) == ["BTC/USDT"] and tickers["BTC/USDT"]["last"] == ticker["last"]
        book_tickers = await ex.fetch_bids_asks()
        assert (book_tickers["BTC/USDT"]["bid"], book_tickers["BTC/USDT"]["ask"]) == (bid, ask)
        prices = await ex.fetch_last_prices()
        assert prices["BTC/USDT"]["price"] == ticker["last"]

        book = await ex.fetch_order_book("BTC/USDT", limit=5)
        assert (book["bids"][0][0], book["asks"][0][0]) == (bid, ask)
        assert len(book["bids"]) == len(book["asks"]) == 5

        ohlcv = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=3)
        assert ohlcv == [[c.open_time, c.open, c.high, c.low, c.close, c.volume] for c in candles[-3:]]


async def test_ccxt_default_options_trades_and_reads_back_fills(fake_binance) -> None:
    async with fake_binance(start_paused=True) as srv, ccxt_client(srv) as ex:
        engine = srv.state.trading.engine
        bal0 = await ex.fetch_balance()
        assert (d(bal0["BTC"]["free"]), d(bal0["USDT"]["free"])) == (Decimal(1), Decimal(10000))

        bought = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        assert bought["status"] == "closed" and d(bought["filled"]) == Decimal("0.01")
        (fill,) = bought["trades"]
        fee = d(fill["fee"]["cost"])
        assert fill["fee"]["currency"] == "BTC" and fee == Decimal("0.01") * Decimal(srv.state.config.taker_fee)
        cost = d(bought["cost"])
        assert cost == d(fill["price"]) * Decimal("0.01")

        bal1 = await ex.fetch_balance()
        assert d(bal1["BTC"]["free"]) == 1 + Decimal("0.01") - fee
        assert d(bal1["USDT"]["free"]) == 10000 - cost

        price = (engine.last_price("BTCUSDT") / 2).quantize(Decimal("0.01"))
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(price))
        assert placed["status"] == "open" and d(placed["price"]) == price and placed["filled"] == 0
        assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [placed["id"]]
        bal2 = await ex.fetch_balance()
        assert d(bal2["USDT"]["used"]) == price * Decimal("0.01")
        assert d(bal2["USDT"]["free"]) == d(bal1["USDT"]["free"]) - price * Decimal("0.01")

        canceled = await ex.cancel_order(placed["id"], "BTC/USDT")
        assert canceled["id"] == placed["id"] and canceled["status"] == "canceled"
        assert (await ex.fetch_order(placed["id"], "BTC/USDT"))["status"] == "canceled"
        assert await ex.fetch_open_orders("BTC/USDT") == []
        bal3 = await ex.fetch_balance()
        assert (d(bal3["USDT"]["free"]), d(bal3["USDT"]["used"])) == (d(bal1["USDT"]["free"]), 0)

        trades = await ex.fetch_my_trades("BTC/USDT")
        assert [(t["order"], t["id"], t["side"]) for t in trades] == [(bought["id"], fill["id"], "buy")]
        (t,) = trades
        assert (d(t["price"]), d(t["amount"]), d(t["cost"])) == (d(fill["price"]), Decimal("0.01"), cost)
        assert (d(t["fee"]["cost"]), t["fee"]["currency"]) == (fee, "BTC")
        (record,) = engine.my_trades("BTCUSDT")
        assert str(record.trade_id) == t["id"]
