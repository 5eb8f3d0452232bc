"""An OpenAPI fuzzer (schemathesis) over every route of the one-process app.

For each operation in the app's own OpenAPI document, schemathesis generates requests that fit the declared
parameters and bodies and requests that do not (negative mode), sends them in process (ASGI, no network)
with a valid bearer token so mutating routes run too, and checks each answer: never a 5xx, a status code the
document declares, the declared content type, and a body that matches the declared schema (error bodies
included: runtime/errors.py). Derandomized and bounded, so a run is repeatable and takes seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Candle
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app
from roottrading.runtime.registry import DEFAULT_ORDER

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every service with routes, except the gateway (it connects to an exchange's streams on start); the replay
# feeds generated candles so that the trader has prices and the fuzzer meets real cycles, orders and fills.
SERVICES = [*(n for n in DEFAULT_ORDER if n != "gateway"), "replay", "dispatcher"]
EXAMPLES_PER_OPERATION = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HOUR_MS = 3_600_000

# Decimal fields (msgspec's "decimal" format) as numbers written out, including NaN, infinities and huge ones.
schemathesis.openapi.format("decimal", st.decimals(allow_nan=True, allow_infinity=True).map(str))


def wave(n: int = 120) -> list[Candle]:
    """Hourly BTCUSDT candles on a slow sine wave around 20 000: enough movement for the strategies."""
    out = []
    for i in range(n):
        close = 20_000 + 1_500 * math.sin(i / 6)
        prev = 20_000 + 1_500 * math.sin((i - 1) / 6)
        out.append(
            Candle(
                symbol="BTCUSDT",
                interval="1h",
                open_time=1_700_000_000_000 + i * HOUR_MS,
                close_time=1_700_000_000_000 + (i + 1) * HOUR_MS - 1,
                open=prev,
                high=max(prev, close) + 20,
                low=min(prev, close) - 20,
                close=close,
                volume=10.0,
            )
        )
    return out


@dataclass
class Fuzzed:
    schema: BaseSchema
    cycle_id: str
    order_id: str


def wait_for(client: Any, path: str, ready: Callable[[Any], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready(client.get(path).json()):
        assert time.monotonic() < deadline, f"{path} not ready after {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Fuzzed]:
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/fuzz.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        strategies="ema_cross,rsi_cross",
        replay_speed=0,
    )
    wiring = Wiring(replay_candles=wave(), coordinator={"cooldown_s": 0})
    app = build_app(Host(settings, SERVICES, clock=SimClock(), wiring=wiring))
    # Loading the document through the ASGI client runs the app's lifespan, which starts the host in
    # schemathesis' event-loop thread (every request is served there); shutdown_lifespans() stops it.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        with get_client(app) as client:
            wait_for(client, "/api/replay/health", lambda h: h["total"] > 0 and h["published"] == h["total"])
            wait_for(client, "/api/trader/symbols", lambda s: s[0]["last_price"] is not None)
            r = client.post(
                "/api/trader/order", headers=AUTH, json={"symbol": "BTCUSDT", "side": "BUY", "quote_quantity": "500"}
            )
            assert r.status_code == 200, r.text
        yield Fuzzed(schema, cycle_id=r.json()["cycle_id"], order_id=r.json()["client_order_id"])
    finally:
        shutdown_lifespans()


def strategy(op: APIOperation, api: Fuzzed) -> st.SearchStrategy[schemathesis.Case]:
    """Requests that fit the operation's declared inputs and, when it has inputs, requests that do not; plus
    requests that name things that exist (a strategy, the seeded cycle and order, the traded symbol), which get
    past the 404s and into the routes' logic."""
    valid = op.as_strategy(GenerationMode.POSITIVE)
    options = [valid]
    if list(op.iter_parameters()) or op.body:
        options.append(op.as_strategy(GenerationMode.NEGATIVE))
    known = {"name": "ema_cross", "cycle_id": api.cycle_id, "order_id": api.order_id, "period": "week"}
    path_names = {p.name for p in op.iter_parameters() if p.location == "path"}
    if path_names:
        options.append(op.as_strategy(path_parameters={k: known[k] for k in path_names if k in known}))
    if op.body:
        options.append(valid.map(on_btcusdt))
    return st.one_of(options)


def describe(exc: BaseException) -> str:
    """The failure and, for a group (several distinct failures), each one: schemathesis' messages carry the
    response and a curl command to reproduce it."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def on_btcusdt(case: schemathesis.Case) -> schemathesis.Case:
    if isinstance(case.body, dict) and "symbol" in case.body:
        case.body["symbol"] = "BTCUSDT"
    return case


def test_no_route_breaks_its_contract(api: Fuzzed) -> None:
    """Every operation is fuzzed even when an earlier one fails: the report lists every broken route.

    (schemathesis' `from_fixture(...).parametrize()` is not used: with pytest 9 it fails on
    `request.node._nodeid`, and a module-level schema would start the app at collection time.)"""
    operations = [result.ok() for result in api.schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]  # every service's routes are in the document
    failures: list[str] = []
    for op in operations:

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=strategy(op, api))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            failures.append(f"{op.label}: {describe(exc)}")
    assert not failures, "\n\n".join(failures)
