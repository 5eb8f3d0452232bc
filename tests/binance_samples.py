"""Binance message samples written for this project (MIT), from the field lists of Binance's public API
documentation (spot user-data stream, WebSocket streams, REST market endpoints). Values are invented.

Why they are ours and not copied: the best-known sample sets (e.g. nautilus_trader's) are LGPL/GPL, and this
MIT repository must not carry them. The edge cases are the ones seen on the real exchange: statuses outside
our enum (EXPIRED_IN_MATCH / TRADE_PREVENTION), TRADE events without a price or quantity, a cancel carrying
the request's own client id, GTD/GTX time in force, empty client ids, and the two wrappers (combined stream
{"stream","data"} and WebSocket API {"subscriptionId","event"}).
"""

from __future__ import annotations

from typing import Any

T0 = 1_733_220_000_000  # 2024-12-03 10:00 UTC


def execution_report(**fields: Any) -> dict[str, Any]:
    """A spot executionReport: a resting ETHUSDT limit buy, with `fields` overriding any key."""
    base: dict[str, Any] = {
        "e": "executionReport",
        "E": T0 + 7,
        "s": "ETHUSDT",
        "c": "rt-eth-0001",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.20000000",
        "p": "3120.45000000",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": "NEW",
        "X": "NEW",
        "r": "NONE",
        "i": 771001,
        "l": "0.00000000",
        "z": "0.00000000",
        "L": "0.00000000",
        "n": "0",
        "N": None,
        "T": T0 + 5,
        "t": -1,
        "I": 1540001,
        "w": True,
        "m": False,
        "M": False,
        "O": T0,
        "Z": "0.00000000",
        "Y": "0.00000000",
        "Q": "0.00000000",
        "W": T0,
        "V": "EXPIRE_MAKER",
    }
    base.update(fields)
    return base


def combined(stream: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"stream": stream, "data": event}


def ws_api(event: dict[str, Any], subscription_id: int = 0) -> dict[str, Any]:
    return {"subscriptionId": subscription_id, "event": event}


_FILL = {"x": "TRADE", "t": 4_412_001, "m": True, "N": "ETH"}

# name -> executionReport event (raw, unwrapped)
EXECUTION_REPORTS: dict[str, dict[str, Any]] = {
    "new": execution_report(),
    "new_stop_loss_limit": execution_report(
        c="rt-eth-0002", S="SELL", o="STOP_LOSS_LIMIT", p="2990.00000000", P="3000.00000000", i=771002, w=False
    ),
    "new_take_profit_limit": execution_report(
        c="rt-eth-0003", S="SELL", o="TAKE_PROFIT_LIMIT", p="3305.50000000", P="3300.00000000", i=771003, w=False
    ),
    "new_price_match": execution_report(c="rt-eth-0004", i=771004, p="3119.99000000", pm="OPPONENT_5"),
    "new_client_id_from_web_ui": execution_report(c="web_3f2a9c0d1e8b4a7f", i=771005),
    "new_empty_client_id": execution_report(c="", i=771006),
    "trade_partial": execution_report(
        **_FILL,
        X="PARTIALLY_FILLED",
        l="0.25000000",
        z="0.25000000",
        L="3120.45000000",
        n="0.00025000",
        Y="780.11250000",
        Z="780.11250000",
        w=False,
    ),
    "trade_filled_taker": execution_report(
        x="TRADE",
        X="FILLED",
        c="rt-eth-0007",
        S="SELL",
        o="MARKET",
        f="GTC",
        q="0.50000000",
        p="0.00000000",
        i=771007,
        l="0.50000000",
        z="0.50000000",
        L="3118.02000000",
        n="1.55901000",
        N="USDT",
        t=4_412_002,
        m=False,
        Y="1559.01000000",
        Z="1559.01000000",
        w=False,
    ),
    "trade_filled_without_quote_quantity": execution_report(
        **{**_FILL, "t": 4_412_003},
        X="FILLED",
        c="rt-eth-0008",
        q="0.10000000",
        i=771008,
        l="0.10000000",
        z="0.10000000",
        L="3121.00000000",
        n="0.00010000",
        Y="",
        Z="312.10000000",
        w=False,
    ),
    "calculated": execution_report(
        x="CALCULATED",
        X="FILLED",
        c="rt-eth-0009",
        S="SELL",
        q="0.02000000",
        i=771009,
        l="0.02000000",
        z="0.02000000",
        L="3090.00000000",
        t=4_412_004,
        N="USDT",
        n="0.06180000",
        Y="61.80000000",
        Z="61.80000000",
        w=False,
    ),
    # The cancel request's own id is `c`; the order's id is `C` (origClientOrderId).
    "canceled": execution_report(
        x="CANCELED", X="CANCELED", c="cxl-9d1f00aa", C="rt-eth-0001", z="0.25000000", Z="780.11250000", w=False
    ),
    "pending_cancel": execution_report(x="CANCELED", X="PENDING_CANCEL", c="rt-eth-0010", i=771010, w=False),
    "rejected": execution_report(
        x="REJECTED", X="REJECTED", c="rt-eth-0011", f="GTX", r="GTX_ORDER_REJECT", i=771011, w=False
    ),
    "expired_gtd": execution_report(x="EXPIRED", X="EXPIRED", c="rt-eth-0012", f="GTD", i=771012, w=False),
    "expired_ioc": execution_report(x="EXPIRED", X="EXPIRED", c="rt-eth-0013", f="IOC", i=771013, w=False),
    # Self-trade prevention: the order expires in the match; l/L describe the prevented quantity, no trade.
    "trade_prevention": execution_report(
        x="TRADE_PREVENTION",
        X="EXPIRED_IN_MATCH",
        c="rt-eth-0014",
        i=771014,
        l="0.40000000",
        L="3120.45000000",
        t=-1,
        r="SELF_TRADE_PREVENTION",
        u=1,
        v=2,
        U=771099,
        A="0.40000000",
        B="0.40000000",
        w=False,
    ),
    # TRADE events that carry no usable price or quantity: they update the order state only.
    "trade_zero_price": execution_report(
        x="TRADE", X="FILLED", c="rt-eth-0015", q="0.00100000", i=771015, l="0.00100000", z="0.00100000", t=4_412_005
    ),
    "trade_zero_quantity_canceled": execution_report(x="TRADE", X="CANCELED", c="rt-eth-0016", i=771016, w=False),
    "trade_zero_quantity_partial": execution_report(
        x="TRADE", X="PARTIALLY_FILLED", c="rt-eth-0017", i=771017, z="0.60000000", t=4_412_006, w=False
    ),
    "trade_zero_quantity_expired": execution_report(
        x="TRADE", X="EXPIRED", c="rt-eth-0018", f="GTD", i=771018, w=False
    ),
    "trade_zero_quantity_new": execution_report(x="TRADE", X="NEW", c="rt-eth-0019", i=771019),
}
TRADE_WITHOUT_PRICE_OR_QUANTITY = [
    "trade_zero_price",
    "trade_zero_quantity_canceled",
    "trade_zero_quantity_partial",
    "trade_zero_quantity_expired",
    "trade_zero_quantity_new",
]

ACCOUNT_POSITION = {
    "e": "outboundAccountPosition",
    "E": T0 + 9,
    "u": T0 + 8,
    "B": [
        {"a": "ETH", "f": "3.75000000", "l": "0.00000000"},
        {"a": "USDT", "f": "8250.40000000", "l": "3744.54000000"},
    ],
}
BALANCE_UPDATE = {"e": "balanceUpdate", "E": T0 + 11, "a": "USDT", "d": "-250.00000000", "T": T0 + 10}
LIST_STATUS = {
    "e": "listStatus",
    "E": T0 + 12,
    "s": "ETHUSDT",
    "g": 2201,
    "c": "OCO",
    "l": "EXEC_STARTED",
    "L": "EXECUTING",
    "r": "NONE",
    "C": "rt-oco-0001",
    "T": T0 + 12,
    "O": [
        {"s": "ETHUSDT", "i": 771020, "c": "rt-oco-0001-sl"},
        {"s": "ETHUSDT", "i": 771021, "c": "rt-oco-0001-tp"},
    ],
}


def user_data_frames() -> dict[str, dict[str, Any]]:
    """Every spot user-data sample as a frame, raw and in both wrappers (name -> frame)."""
    frames: dict[str, dict[str, Any]] = {}
    for name, ev in EXECUTION_REPORTS.items():
        frames[f"execution_report_{name}"] = combined("listenkey0", ev)
    frames["execution_report_raw"] = EXECUTION_REPORTS["new"]
    frames["execution_report_ws_api"] = ws_api(EXECUTION_REPORTS["trade_partial"])
    frames["account_position"] = ACCOUNT_POSITION
    frames["account_position_ws_api"] = ws_api(ACCOUNT_POSITION)
    frames["balance_update"] = BALANCE_UPDATE
    frames["balance_update_ws_api"] = ws_api(BALANCE_UPDATE)
    frames["list_status_ws_api"] = ws_api(LIST_STATUS)
    return frames


# Events other than spot market data that a market-data parser may meet: they must be ignored with a reason.
OTHER_WS_EVENTS: dict[str, dict[str, Any]] = {
    "futures_order_trade_update": {
        "e": "ORDER_TRADE_UPDATE",
        "E": T0,
        "T": T0,
        "o": {"s": "BTCUSDT", "c": "rt-f-1", "S": "BUY", "o": "LIMIT", "x": "NEW", "X": "NEW", "i": 9001},
    },
    "futures_account_update": {
        "e": "ACCOUNT_UPDATE",
        "E": T0,
        "T": T0,
        "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "1000", "cw": "1000", "bc": "0"}], "P": []},
    },
    "futures_mark_price": {"e": "markPriceUpdate", "E": T0, "s": "BTCUSDT", "p": "96000.1", "r": "0.0001"},
    "futures_liquidation": {"e": "forceOrder", "E": T0, "o": {"s": "BTCUSDT", "S": "SELL", "q": "0.01"}},
    "spot_mini_ticker": {"e": "24hrMiniTicker", "E": T0, "s": "BTCUSDT", "c": "96000.0", "o": "95000.0"},
}

# REST bodies: (endpoint, body). Market endpoints give events; the others are ignored with a reason.
REST_SAMPLES: list[tuple[str, Any]] = [
    (
        "/api/v3/klines",
        [
            [
                T0,
                "96010.00",
                "96050.00",
                "95990.01",
                "96030.50",
                "12.34500",
                T0 + 59_999,
                "1185248.9",
                812,
                "6.1",
                "585800.1",
                "0",
            ],
            [
                T0 + 60_000,
                "96030.50",
                "96031.00",
                "95900.00",
                "95950.25",
                "20.00100",
                T0 + 119_999,
                "1919466.0",
                1204,
                "9.9",
                "950000.0",
                "0",
            ],
        ],
    ),
    (
        "/api/v3/trades",
        [
            {
                "id": 5001,
                "price": "96030.10",
                "qty": "0.00150",
                "quoteQty": "144.04515",
                "time": T0 + 1,
                "isBuyerMaker": False,
                "isBestMatch": True,
            },
            {
                "id": 5002,
                "price": "96030.00",
                "qty": "0.20000",
                "quoteQty": "19206.0",
                "time": T0 + 2,
                "isBuyerMaker": True,
                "isBestMatch": True,
            },
        ],
    ),
    (
        "/api/v3/aggTrades",
        [{"a": 7001, "p": "96030.10", "q": "0.35000", "f": 5001, "l": 5004, "T": T0 + 3, "m": False, "M": True}],
    ),
    ("/api/v3/ticker/price", [{"symbol": "BTCUSDT", "price": "96030.10"}, {"symbol": "ETHUSDT", "price": "3120.45"}]),
    (
        "/api/v3/ticker/bookTicker",
        {"symbol": "BTCUSDT", "bidPrice": "96030.00", "bidQty": "1.2", "askPrice": "96030.01", "askQty": "0.4"},
    ),
    (
        "/api/v3/ticker/24hr",
        {
            "symbol": "BTCUSDT",
            "priceChange": "1030.10",
            "priceChangePercent": "1.084",
            "weightedAvgPrice": "95500.2",
            "prevClosePrice": "95000.00",
            "lastPrice": "96030.10",
            "lastQty": "0.0015",
            "bidPrice": "96030.00",
            "bidQty": "1.2",
            "askPrice": "96030.01",
            "askQty": "0.4",
            "openPrice": "95000.00",
            "highPrice": "96500.00",
            "lowPrice": "94100.00",
            "volume": "18000.5",
            "quoteVolume": "1719000000.0",
            "openTime": T0 - 86_400_000,
            "closeTime": T0,
            "firstId": 1,
            "lastId": 5002,
            "count": 5002,
        },
    ),
    ("/api/v3/ping", {}),
    ("/api/v3/time", {"serverTime": T0}),
    ("/api/v3/avgPrice", {"mins": 5, "price": "96001.5", "closeTime": T0}),
    ("/api/v3/openOrders", []),
    ("/api/v3/myTrades", []),
    (
        "/api/v3/account",
        {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "updateTime": T0,
            "accountType": "SPOT",
            "balances": [{"asset": "USDT", "free": "1000.0", "locked": "0.0"}],
            "permissions": ["SPOT"],
        },
    ),
]
