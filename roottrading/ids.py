"""Deterministic identifiers: the same input always gives the same id, so a retry or a replay can never
create a second order, cycle or signal. Binance client order ids: at most 36 chars of [A-Za-z0-9._:/-]."""

from __future__ import annotations

import hashlib


def _h(*parts: object, n: int = 20) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:n]


def signal_id(strategy: str, symbol: str, interval: str, open_time: int) -> str:
    return f"{strategy}:{symbol}:{interval}:{open_time}"


def request_id_for_signal(signal_id: str) -> str:
    return f"req-{_h(signal_id)}"


def client_order_id(request_id: str, leg: str = "entry") -> str:
    """`rt` + 30 hex chars: unique per (request, leg), valid as Binance newClientOrderId."""
    return f"rt{_h(request_id, leg, n=30)}"


OUR_ORDER_PREFIX = "rt"
_HEX = frozenset("0123456789abcdef")


def is_our_client_order_id(client_order_id: str) -> bool:
    """True for an id this platform made (`client_order_id`): tells our orders from a person's on the account."""
    body = client_order_id[len(OUR_ORDER_PREFIX) :]
    return client_order_id.startswith(OUR_ORDER_PREFIX) and len(body) == 30 and set(body) <= _HEX


def protective_order_id(cycle_id: str, n: int) -> str:
    """The `n`-th protective stop order of a cycle (services/trader/exchange_stops.py): `rt` + 22 hex chars
    fixed per cycle + 8 hex chars of `n`, so `is_protective_order_id` recognises one without a lookup and it
    is still one of our ids (`is_our_client_order_id`)."""
    return f"rt{_h(cycle_id, 'protect', n=22)}{n:08x}"


def is_protective_order_id(client_order_id: str, cycle_id: str) -> bool:
    return client_order_id.startswith(f"rt{_h(cycle_id, 'protect', n=22)}") and len(client_order_id) == 32


def adjustment_request_id(cycle_id: str, attempt: int, time_ms: int) -> str:
    """The request of a cycle's `attempt`-th addition (position_adjustment), asked at `time_ms`."""
    return f"req-{_h(cycle_id, 'add', attempt, time_ms)}"


def cycle_id(request_id: str) -> str:
    return f"cy-{_h(request_id, 'cycle', n=20)}"
