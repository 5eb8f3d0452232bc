"""Every Binance sample in tests/fixtures/binance_fixtures, and every sample of tests/binance_samples.py,
either parses or is rejected with a reason.

The walk is exhaustive: a file that no rule below claims makes the test fail, so new fixtures cannot be
silently skipped. Recordings are stored gzip-compressed (see tests/fixtures/README.md).
"""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.parse import (
    Ignored,
    ParseError,
    parse_rest,
    parse_ws_message,
    read_kline_csv,
)
from tests.binance_samples import OTHER_WS_EVENTS, REST_SAMPLES, user_data_frames

BASANA = {"binance_btc_usdt_exchange_info.json": "/api/v3/exchangeInfo"}


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


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def test_every_fixture_parses_or_is_rejected_with_a_reason(fixtures_dir: Path) -> None:
    root = fixtures_dir / "binance_fixtures"
    outcomes: Counter[str] = Counter()
    unclaimed = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.name == "LICENSE":
            continue
        if rel.startswith("hftbacktest/") and path.suffix == ".gz":  # "local_ns <json>" per line
            for line in read_lines(path):
                outcomes["hft:" + classify(parse_recording_line(line, " "))] += 1
        elif rel.startswith("cryptofeed/BINANCE") and ".ws." in path.name:
            lines = read_lines(path)
            assert " <-> " in lines[0]  # header: URL <-> connect time
            for line in filter(None, lines[1:]):
                outcomes["cf_ws:" + classify(parse_recording_line(line, ": "))] += 1
        elif rel.startswith("cryptofeed/BINANCE"):  # cryptofeed REST recordings: "URL -> ts: body"
            for line in read_lines(path):
                if not line.strip() or line.startswith("configuration: "):
                    continue
                url, _, rest = line.partition(" -> ")
                body = rest.partition(": ")[2]
                endpoint = "/" + url.split("/", 3)[3]
                result = parse_rest(endpoint, body)
                outcomes["cf_http:" + (result.kind if isinstance(result, Ignored) else "events")] += 1
        elif path.name in BASANA:
            result = parse_rest(BASANA[path.name], path.read_bytes())
            outcomes["rest:" + classify(result)] += 1
        else:
            unclaimed.append(rel)
    assert not unclaimed, f"fixtures no rule claims: {unclaimed}"
    # Real captures: exact counts of what the recordings hold.
    assert outcomes == {
        "cf_ws:candle": 2 + 67,  # spot kline_1m + futures kline
        "cf_ws:ignored:depthUpdate": 177 + 764,
        "cf_ws:tick": 84 + 2 + 613 + 91,  # bookTicker + aggTrade, spot and futures
        "cf_http:/api/v3/depth": 4,  # depth snapshots (ignored, with the reason)
        "cf_http:futures": 5,  # 4 depth snapshots + exchangeInfo
        "cf_http:/api/v3/exchangeInfo": 1,
        "hft:tick": 2200 + 518 + 2296 + 469,  # first 3,000 lines: bookTicker + trade, spot and USDT-M
        "hft:ignored:depthUpdate": 281 + 234,
        "hft:ignored:depth": 2,  # the REST depth snapshot each recording starts with
        "rest:ignored:/api/v3/exchangeInfo": 1,
    }


def test_every_own_sample_parses_or_is_ignored_with_a_reason() -> None:
    outcomes: Counter[str] = Counter()
    for frame in [*user_data_frames().values(), *OTHER_WS_EVENTS.values()]:
        outcomes["ws:" + classify(parse_ws_message(msgspec.json.encode(frame), recv_ms=0))] += 1
    for endpoint, body in REST_SAMPLES:
        result = parse_rest(endpoint, msgspec.json.encode(body), symbol="BTCUSDT", interval="1m", now_ms=0)
        if isinstance(result, Ignored):
            assert result.reason
            outcomes["rest:ignored"] += 1
        else:
            assert result, endpoint
            outcomes["rest:events"] += len(result)
    assert outcomes["ws:ignored:executionReport"] >= 20
    assert outcomes["ws:ignored:ORDER_TRADE_UPDATE"] == 1 and outcomes["ws:ignored:forceOrder"] == 1
    assert outcomes["rest:events"] == 2 + 2 + 1 + 2 + 1 + 1 and outcomes["rest:ignored"] == 6


def test_spot_kline_and_trade_values(fixtures_dir: Path) -> None:
    d = fixtures_dir / "binance_fixtures"
    trade_line = next(x for x in read_lines(d / "hftbacktest/spot/btcusdt_20240808_first3000.gz") if "@trade" in x)
    trade = parse_recording_line(trade_line, " ")
    assert trade == Tick(
        symbol="BTCUSDT", time=1723161255342, price=61837.63, quantity=0.02, trade_id=3735683259, is_buyer_maker=True
    )
    ws = read_lines(d / "cryptofeed/BINANCE_FUTURES.ws.1.0.gz")[1:]
    closed = [r for r in (parse_recording_line(x, ": ") for x in ws if '"x":true' in x) if isinstance(r, Candle)]
    assert len(closed) == 4 and all(k.closed for k in closed)
    k = closed[0]
    assert (k.symbol, k.open_time, k.close_time, k.open, k.high, k.low, k.close, k.trades) == (
        "SUSHIUSDT",
        1626992700000,
        1626992759999,
        7.608,
        7.618,
        7.607,
        7.617,
        113,
    )
    frame = msgspec.json.decode(next(x for x in ws if '"x":true' in x).partition(": ")[2])
    frame["data"]["k"]["l"] = "7.6090"  # low above the open: rejected, never a candle
    with pytest.raises(ParseError, match="inconsistent OHLC"):
        parse_ws_message(msgspec.json.encode(frame))
    body = REST_SAMPLES[0][1]
    rows = parse_rest("/api/v3/klines", msgspec.json.encode(body), symbol="BTCUSDT", interval="1m")
    assert isinstance(rows, list) and rows[0] == Candle(
        symbol="BTCUSDT",
        interval="1m",
        open_time=1733220000000,
        close_time=1733220059999,
        open=96010.0,
        high=96050.0,
        low=95990.01,
        close=96030.5,
        volume=12.345,
        quote_volume=1185248.9,
        trades=812,
    )
    assert all(b.open_time - a.open_time == 60_000 for a, b in itertools.pairwise(rows))


def test_cryptofeed_combined_kline_is_in_progress(fixtures_dir: Path) -> None:
    lines = read_lines(fixtures_dir / "binance_fixtures/cryptofeed/BINANCE.ws.1.0.gz")[1:]
    klines = [r for r in (parse_recording_line(x, ": ") for x in lines if x) if isinstance(r, Candle)]
    assert {k.symbol for k in klines} <= {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}
    assert all(k.interval == "1m" and k.close_time - k.open_time == 59_999 for k in klines)


# Rows in the data.binance.vision kline layout (12 columns, no header), written for this test.
KLINE_CSV_MS = [
    "1733220000000,0.08601000,0.08605000,0.08599000,0.08604000,5120.4,1733220059999,440.5,97,2600.1,223.7,0",
    "1733220060000,0.08604000,0.08610000,0.08603000,0.08608000,3301.0,1733220119999,284.1,61,1500.0,129.1,0",
    "1733220120000,0.08608000,0.08608000,0.08590000,0.08592000,7003.7,1733220179999,602.2,133,3100.2,266.5,0",
]


def test_kline_csv_ms_and_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "ETHBTC-1m-2024-12-03.csv"
    path.write_text("\n".join(KLINE_CSV_MS) + "\n")
    candles = read_kline_csv(path, "ETHBTC", "1m")
    assert len(candles) == 3 and candles[0].open == 0.08601 and candles[0].trades == 97
    assert all(b.open_time - a.open_time == 60_000 for a, b in itertools.pairwise(candles))
    # data.binance.vision switched to microseconds in 2025: same candle, same result.
    micro = (
        "1733220000000000,0.08601000,0.08605000,0.08599000,0.08604000,5120.4,1733220059999999,440.5,97,2600.1,223.7,0"
    )
    assert read_kline_csv([micro], "ETHBTC", "1m")[0] == candles[0]
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,tbv,tbqv,ignore"
    assert read_kline_csv([header, micro], "ETHBTC", "1m") == [candles[0]]


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
