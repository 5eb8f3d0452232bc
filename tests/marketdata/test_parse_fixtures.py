"""Every Binance sample in shared/data/binance_fixtures either parses or is rejected with a reason.

The walk is exhaustive: a file that no rule below claims makes the test fail, so new fixtures cannot be
silently skipped.
"""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from pathlib import Path

import pytest

from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.parse import (
    Ignored,
    ParseError,
    parse_rest,
    parse_ws_message,
    read_kline_csv,
)

# Files in the folder that are not Binance wire samples (licences, nautilus' own metadata and formats).
NOT_SAMPLES = {
    "LICENSE",
    "README.md",
    "SOURCES.md",
    "Apache-2.0-RealLogic-SBE.txt",
    "__init__.py",
    "manifest.json",
    "btcusdt-depth-snap.csv",
    "btcusdt-depth-update.csv",
    "btcusdt-quotes.parquet",
    "btcusdt-trades.parquet",
}

SPOT_HTTP = {  # nautilus python http_responses/http_spot_*, rust spot/http_json/* -> real endpoint
    "agg_trades": "/api/v3/aggTrades",
    "avg_price": "/api/v3/avgPrice",
    "book_ticker": "/api/v3/ticker/bookTicker",
    "depth": "/api/v3/depth",
    "exchange_info": "/api/v3/exchangeInfo",
    "historical_trades": "/api/v3/historicalTrades",
    "klines": "/api/v3/klines",
    "ping": "/api/v3/ping",
    "ticker_price": "/api/v3/ticker/price",
    "time": "/api/v3/time",
    "server_time": "/api/v3/time",
    "trades": "/api/v3/trades",
    "ticker_24hr": "/api/v3/ticker/24hr",
    "account": "/api/v3/account",
    "wallet_account": "/api/v3/account",
    "account_trades": "/api/v3/myTrades",
    "all_orders": "/api/v3/allOrders",
    "cancel_open_orders": "/api/v3/openOrders",
    "open_orders": "/api/v3/openOrders",
    "cancel_order": "/api/v3/order",
    "new_order_full": "/api/v3/order",
    "order": "/api/v3/order",
    "wallet_trading_fee": "/sapi/v1/asset/tradeFee",
    "wallet_trading_fees": "/sapi/v1/asset/tradeFee",
}
BASANA = {
    "binance_btc_usdt_exchange_info.json": "/api/v3/exchangeInfo",
    "binance_cross_margin_account_details.json": "/sapi/v1/margin/account",
    "binance_isolated_margin_account_details.json": "/sapi/v1/margin/isolated/account",
}


def endpoint_for(path: Path) -> str | None:
    """The REST endpoint a JSON file is a response of, or None when it is a WebSocket message."""
    name = path.name
    if name in BASANA:
        return BASANA[name]
    if path.parent.name == "http_responses":
        stem = path.stem.removeprefix("http_")
        if stem.startswith("futures_"):
            return "/fapi/v1/" + stem
        return SPOT_HTTP[stem.removeprefix("spot_market_").removeprefix("spot_")]
    if path.parent.name == "http_json":
        if "futures" in path.parts:
            return "/fapi/v2/" + path.stem
        return SPOT_HTTP[path.stem.removesuffix("_response")]
    return None


def classify(result: object) -> str:
    if isinstance(result, Candle):
        return "candle"
    if isinstance(result, Tick):
        return "tick"
    assert isinstance(result, Ignored) and result.reason, result
    return "ignored:" + result.kind


def parse_recording_line(line: str, sep: str) -> object:
    ts, _, payload = line.partition(sep)
    recv_ms = int(float(ts) * 1000) if sep == ": " else int(ts) // 1_000_000
    return parse_ws_message(payload, recv_ms=recv_ms)


def test_every_fixture_parses_or_is_rejected_with_a_reason(shared_data: Path) -> None:
    root = shared_data / "binance_fixtures"
    outcomes: Counter[str] = Counter()
    unclaimed = []
    rejected: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.name in NOT_SAMPLES or path.name.endswith(".metadata.json"):
            continue
        if path.suffix == ".sbe":
            with pytest.raises(ParseError, match=r"binary|SBE|JSON"):
                parse_ws_message(path.read_bytes())
            outcomes["rejected:sbe"] += 1
        elif path.suffix == ".gz":
            with gzip.open(path, "rt") as fh:
                for line in fh:
                    outcomes["hft:" + classify(parse_recording_line(line.rstrip("\n"), " "))] += 1
        elif path.name.startswith(("BINANCE.ws", "BINANCE_FUTURES.ws")):
            lines = path.read_text().splitlines()
            assert " <-> " in lines[0]  # header: URL <-> connect time
            for line in filter(None, lines[1:]):
                outcomes["cf_ws:" + classify(parse_recording_line(line, ": "))] += 1
        elif path.name.startswith("BINANCE"):  # cryptofeed REST recordings: "URL -> ts: body"
            for line in path.read_text().splitlines():
                if not line.strip() or line.startswith("configuration: "):
                    continue
                url, _, rest = line.partition(" -> ")
                body = rest.partition(": ")[2]
                endpoint = "/" + url.split("/", 3)[3]
                result = parse_rest(endpoint, body)
                outcomes["cf_http:" + (result.kind if isinstance(result, Ignored) else "events")] += 1
        elif path.suffix == ".json":
            endpoint = endpoint_for(path)
            if endpoint is None:
                try:
                    outcomes["ws_json:" + classify(parse_ws_message(path.read_bytes(), recv_ms=0))] += 1
                except ParseError as exc:
                    rejected[rel] = exc.reason
            else:
                symbol = "BTCUSDT" if "klines" in endpoint or "trades" in endpoint.lower() else None
                result = parse_rest(endpoint, path.read_bytes(), symbol=symbol, interval="1m", now_ms=0)
                if isinstance(result, Ignored):
                    assert result.reason
                    outcomes["rest:ignored"] += 1
                else:
                    assert result, rel
                    outcomes["rest:events"] += len(result)
        else:
            unclaimed.append(rel)
    assert not unclaimed, f"fixtures no rule claims: {unclaimed}"
    # Hand-written doc-style samples that are internally inconsistent are rejected, with the reason.
    assert rejected == {
        "nautilus/rust_crate/futures/market_data_json/kline_stream_open.json": "kline: inconsistent OHLC o=0.001 h=0.0025 l=0.0015 c=0.002",
    }
    # Real captures: exact counts of what the recordings hold.
    assert outcomes["cf_ws:candle"] == 2 + 67  # spot kline_1m + futures kline
    assert outcomes["cf_ws:ignored:depthUpdate"] == 177 + 764
    assert outcomes["hft:tick"] > 20_000 and outcomes["hft:ignored:depthUpdate"] > 10_000
    assert outcomes["rejected:sbe"] == 6
    assert outcomes["ws_json:ignored:executionReport"] >= 20
    assert outcomes["ws_json:ignored:ORDER_TRADE_UPDATE"] >= 10
    assert outcomes["rest:events"] > 10 and outcomes["rest:ignored"] > 20


def test_spot_kline_and_trade_values(shared_data: Path) -> None:
    d = shared_data / "binance_fixtures/nautilus"
    trade = parse_ws_message((d / "python_integration/ws_messages/ws_spot_trade.json").read_bytes())
    assert trade == Tick(
        symbol="ETHUSDT", time=1639351062243, price=4149.74, quantity=0.4387, trade_id=705291099, is_buyer_maker=True
    )
    closed_k = parse_ws_message((d / "rust_crate/futures/market_data_json/kline_stream_closed.json").read_bytes())
    assert isinstance(closed_k, Candle) and closed_k.closed
    with pytest.raises(ParseError, match="inconsistent OHLC"):  # doc sample has low > open
        parse_ws_message((d / "rust_crate/futures/market_data_json/kline_stream_open.json").read_bytes())
    assert (closed_k.open_time, closed_k.close_time, closed_k.high, closed_k.trades) == (
        1638747660000,
        1638747719999,
        0.0025,
        100,
    )
    rows = parse_rest(
        "/api/v3/klines",
        (d / "python_integration/http_responses/http_spot_market_klines.json").read_bytes(),
        symbol="BTCUSDT",
        interval="1m",
    )
    assert isinstance(rows, list) and rows[0] == Candle(
        symbol="BTCUSDT",
        interval="1m",
        open_time=1634943780000,
        close_time=1634943839999,
        open=60685.22,
        high=60729.84,
        low=60670.90,
        close=60719.27,
        volume=21.63272,
        quote_volume=1313200.0134041,
        trades=617,
    )
    assert all(b.open_time - a.open_time == 60_000 for a, b in itertools.pairwise(rows))


def test_cryptofeed_combined_kline_is_in_progress(shared_data: Path) -> None:
    lines = (shared_data / "binance_fixtures/cryptofeed/BINANCE.ws.1.0").read_text().splitlines()[1:]
    klines = [r for r in (parse_recording_line(x, ": ") for x in lines if x) if isinstance(r, Candle)]
    assert {k.symbol for k in klines} <= {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}
    assert all(k.interval == "1m" and k.close_time - k.open_time == 59_999 for k in klines)


def test_kline_csv_ms_and_microseconds(shared_data: Path) -> None:
    path = shared_data / "ohlcv/nautilus/ADABTC-1m-2021-11-27.csv"
    candles = read_kline_csv(path, "ADABTC", "1m")
    assert len(candles) == 10 and candles[0].open == 0.00002853 and candles[0].trades == 79
    assert all(b.open_time - a.open_time == 60_000 for a, b in itertools.pairwise(candles))
    # data.binance.vision switched to microseconds in 2025: same candle, same result.
    micro = "1637971200000000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,1637971259999999,1.03547608,79,0,0,0"
    assert read_kline_csv([micro], "ADABTC", "1m")[0] == candles[0]
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,tbv,tbqv,ignore"
    assert read_kline_csv([header, micro], "ADABTC", "1m") == [candles[0]]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1,2]", "expected a JSON object"),
        (b'{"e":"kline","E":1,"s":"X"}', "missing object 'k'"),
        (b'{"e":"trade","s":"X","t":1,"p":"abc","q":"1","T":1}', "not a number"),
        (b'{"e":"nope"}', "unknown WebSocket event type"),
        (
            b'{"e":"kline","k":{"t":1,"T":2,"s":"X","i":"1m","o":"2","h":"1","l":"1","c":"1","v":"1","x":true}}',
            "inconsistent OHLC",
        ),
        (b"\x00\x01\xfe binary", "binary"),
    ],
)
def test_bad_messages_raise_parse_error_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_ws_message(raw)


def test_control_messages_are_ignored_not_errors() -> None:
    assert parse_ws_message(b'{"result":null,"id":1}').kind == "control"  # type: ignore[union-attr]
    assert parse_ws_message(b'{"code":2,"msg":"Invalid request"}').kind == "server_error"  # type: ignore[union-attr]
