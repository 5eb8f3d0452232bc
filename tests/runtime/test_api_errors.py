"""The API's error contract: out-of-range numbers are a 422 (never a 500), and every error body matches the
schema the OpenAPI document declares for that route and status code (one error shape for the whole API).

Regression tests for what an OpenAPI fuzzer found (issue 12, item 3); tests/runtime/test_api_fuzz.py runs
the fuzzer itself over every route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES = ["logger", "portfolio", "pnl", "trader", "risk", "coordinator", "analyzer", "market"]
HUGE = 10**20  # beyond a 64-bit SQL integer


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        strategies="ema_cross",
    )
    host = Host(settings, SERVICES, clock=SimClock())
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            yield c
    finally:
        await host.stop()


def declared_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema the OpenAPI document declares for `status` on `method path` (fails if undeclared)."""
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path}: {status} not declared (declared: {sorted(responses)})"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}  # so that "#/components/..." references resolve


def assert_matches_declared(doc: dict[str, Any], path: str, method: str, r: httpx.Response) -> None:
    validator = jsonschema_rs.Draft202012Validator(declared_schema(doc, path, method, r.status_code))
    errors = [str(e) for e in validator.iter_errors(r.json())]
    assert not errors, f"{method} {path} -> {r.status_code} {r.text}: {errors}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/trader/trades",
        "/api/trader/cycles",
        "/api/trader/orders",
        "/api/portfolio/trades",
        "/api/pnl/cycles",
    ],
)
async def test_a_huge_offset_is_a_422_not_a_500(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, params={"offset": HUGE})
    assert r.status_code == 422, r.text
    assert_matches_declared((await client.get("/openapi.json")).json(), path, "GET", r)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/portfolio/trades", {"since": HUGE}),
        ("/api/logger/logs", {"since": HUGE}),
        ("/api/market/candles", {"symbol": "BTCUSDT", "start": str(HUGE)}),
        ("/api/market/candles", {"symbol": "BTCUSDT", "end": str(-HUGE)}),
    ],
)
async def test_out_of_range_times_are_a_422(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> None:
    r = await client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert_matches_declared((await client.get("/openapi.json")).json(), path, "GET", r)


@pytest.mark.parametrize(
    ("method", "url", "path", "kwargs", "needle"),
    [
        ("GET", "/api/market/candles", None, {"params": {"symbol": "BTCUSDT", "start": "xx"}}, "ISO"),
        ("POST", "/api/trader/order", None, {"json": {"symbol": "FOO", "side": "BUY"}}, "unknown symbol"),
        (
            "PUT",
            "/api/analyzer/strategies/ema_cross",
            "/api/analyzer/strategies/{name}",
            {"json": {"params": {"no_such_param": 1}}},
            "unknown parameter",
        ),
        ("PUT", "/api/portfolio/pockets/allocation", None, {"json": {"active": 200}}, "sum to 100"),
    ],
)
async def test_a_422_raised_by_a_route_matches_the_declared_schema(
    client: httpx.AsyncClient, method: str, url: str, path: str | None, kwargs: dict[str, Any], needle: str
) -> None:
    r = await client.request(method, url, headers=AUTH, **kwargs)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text  # the reason stays readable
    assert_matches_declared((await client.get("/openapi.json")).json(), path or url, method, r)


async def test_a_request_validation_422_has_the_same_shape(client: httpx.AsyncClient) -> None:
    """FastAPI's own validation errors use the same schema, with a readable `detail` and the per-field list."""
    r = await client.get("/api/trader/trades", params={"limit": 0})
    assert r.status_code == 422
    body = r.json()
    assert isinstance(body["detail"], str) and "limit" in body["detail"], body
    assert body["errors"][0]["loc"] == ["query", "limit"], body
    assert_matches_declared((await client.get("/openapi.json")).json(), "/api/trader/trades", "GET", r)


async def test_other_error_codes_match_the_declared_schema(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    r = await client.post("/api/trader/config/pause")  # no token
    assert r.status_code == 401
    assert_matches_declared(doc, "/api/trader/config/pause", "POST", r)
    r = await client.get("/api/trader/cycles/nope")
    assert r.status_code == 404
    assert_matches_declared(doc, "/api/trader/cycles/{cycle_id}", "GET", r)
    r = await client.post("/api/trader/close/nope", headers=AUTH)
    assert r.status_code == 404
    assert_matches_declared(doc, "/api/trader/close/{cycle_id}", "POST", r)
    r = await client.get("/api/portfolio/performance/fortnight")
    assert r.status_code == 404
    assert_matches_declared(doc, "/api/portfolio/performance/{period}", "GET", r)
    r = await client.put("/api/analyzer/strategies/nope", headers=AUTH, json={"enabled": True})
    assert r.status_code == 404
    assert_matches_declared(doc, "/api/analyzer/strategies/{name}", "PUT", r)


@pytest.mark.parametrize("field", ["quantity", "price"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-1", "0"])
async def test_a_risk_check_of_an_unjudgeable_amount_is_a_422(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    """Found by the fuzzer: msgspec decodes "NaN" as a Decimal and the rules' arithmetic raised (a 500)."""
    intent = {"id": "i1", "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01", "price": "20000"} | {field: value}
    r = await client.post("/api/risk/check", headers=AUTH, json=intent)
    assert r.status_code == 422 and field in r.json()["detail"], r.text
    assert_matches_declared((await client.get("/openapi.json")).json(), "/api/risk/check", "POST", r)


@pytest.mark.parametrize("value", ["1E+30", "1E+999999", "1E-999999"])
async def test_a_risk_check_of_an_out_of_range_amount_is_a_422(client: httpx.AsyncClient, value: str) -> None:
    """Found by the fuzzer: 1e30 x 1e30 cannot be quantized to cents and dividing by 1e-999999 overflows."""
    intent = {"id": "i1", "symbol": "BTCUSDT", "side": "BUY", "quantity": value, "price": value}
    r = await client.post("/api/risk/check", headers=AUTH, json=intent)
    assert r.status_code == 422 and "quantity" in r.json()["detail"], r.text


@pytest.mark.parametrize("field", ["quantity", "price"])
async def test_a_manual_order_of_an_out_of_range_amount_is_a_422(client: httpx.AsyncClient, field: str) -> None:
    """A quantity of 1e999999 made the filters' rounding raise InvalidOperation (a 500)."""
    body = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "20000"}
    r = await client.post("/api/trader/order", headers=AUTH, json=body | {field: "1E+999999"})
    assert r.status_code == 422 and field in r.json()["detail"], r.text
    assert_matches_declared((await client.get("/openapi.json")).json(), "/api/trader/order", "POST", r)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/api/market/ticker", {"params": {"symbol": "\x00"}}),
        ("GET", "/api/trader/trades", {"params": {"symbol": "BTC\x00"}}),
        ("GET", "/api/trader/cycles/a%00b", {}),
        (
            "POST",
            "/api/trader/order",
            {"json": {"symbol": "BTCUSDT", "side": "SELL", "quantity": "1", "strategy": "x\x00"}},
        ),
        ("PUT", "/api/analyzer/strategies/ema_cross", {"json": {"enabled": True, "symbol": "\x00"}}),
    ],
)
async def test_a_nul_character_is_a_422(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """Found by the fuzzer on PostgreSQL: text with NUL cannot be stored or compared there (a 500)."""
    r = await client.request(method, url, headers=AUTH, **kwargs)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
