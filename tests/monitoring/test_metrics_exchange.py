"""Exchange REST weight used vs limit and 429/418 counts on /metrics, against the project's fake Binance
(which sends X-MBX-USED-WEIGHT-1M on every answer, its limit in exchangeInfo, and answers 429/418 on demand).

The fake runs with a weight limit of 1500 (Binance's is 6000, the clients' default): a limit of 1500 on
/metrics proves it was read from exchangeInfo."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from roottrading.config import load_settings
from roottrading.exchange.binance.rest_market import BinanceMarketRest
from roottrading.exchange.errors import RateLimited
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.runtime.metrics_exchange import exchange_rest_families
from roottrading.runtime.wiring import Wiring
from tests.binance_trading.conftest import run_server
from tests.monitoring.conftest import samples

LIMIT = 1500
IP = "127.0.0.1"


def _series(families: Any, name: str) -> dict[tuple[str, ...], float]:
    """{label values: value} of one sample name in collected families."""
    return {tuple(s.labels.values()): s.value for fam in families for s in fam.samples if s.name == name}


async def _until(check: Callable[[], Any], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_gateway_market_client_weight_limit_and_rate_limits() -> None:
    async with run_server(weight_limit=LIMIT) as srv:
        rest = BinanceMarketRest(srv.url, backoff_s=0.01, max_retries=1)
        services = {"gateway": SimpleNamespace(rest=rest)}
        try:
            await rest.exchange_info(["BTCUSDT"])
            assert rest.weight_limit == LIMIT
            await rest.klines("BTCUSDT", "1m", limit=10)
            fams = list(exchange_rest_families(services))
            assert _series(fams, "roottrading_exchange_rest_weight_limit") == {("gateway",): LIMIT}
            used = _series(fams, "roottrading_exchange_rest_weight_used")[("gateway",)]
            assert used == srv.state.limiter.used(IP) == 22  # exchangeInfo 20 + klines 2
            assert rest.weight_in_use(time.time() + 60) == 0  # the next minute starts from nothing

            srv.state.limiter.cfg.rest_429_prob = 1.0  # every answer a 429 (Retry-After 1 s)
            rest.max_ban_wait_s = 0.5  # give up instead of waiting it out
            with pytest.raises(RuntimeError, match="banned for"):
                await rest.server_time()
            srv.state.limiter.cfg.rest_429_prob = 0.0
            srv.state.limiter.cfg.rest_418_prob = 1.0
            with pytest.raises(RuntimeError, match="banned for"):
                await rest.server_time()
            codes = _series(exchange_rest_families(services), "roottrading_exchange_rest_rate_limited_total")
            assert codes == {("gateway", "429"): 1.0, ("gateway", "418"): 1.0}
            assert srv.state.limiter.counts["429"] == 1 and srv.state.limiter.counts["418"] == 1
        finally:
            await rest.aclose()


async def test_trader_binance_client_on_metrics(tmp_path: Path) -> None:
    """A Host running the trader on the (fake) Binance adapter: /metrics shows its REST weight and refusals."""
    async with run_server(weight_limit=LIMIT) as srv:
        exchange = srv.exchange(max_retries=0)  # a 429 is raised at once rather than waited out
        settings = load_settings(
            symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", api_token="t", data_dir=tmp_path
        )
        host = Host(settings, ["trader"], wiring=Wiring(exchange=exchange), per_service_http=True)
        app = build_app(host, per_service=True)
        await host.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

                async def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
                    return samples((await client.get("/metrics")).text)

                got = await scrape()
                assert got["roottrading_exchange_rest_weight_limit"] == [({"service": "trader"}, LIMIT)]
                [(_, used)] = got["roottrading_exchange_rest_weight_used"]
                assert 20 <= used <= srv.state.limiter.used(IP)  # exchangeInfo alone weighs 20

                limiter = srv.state.limiter
                limiter.cfg.rest_429_prob = 1.0
                with pytest.raises(RateLimited):
                    await exchange.balances()  # GET /api/v3/account
                limiter.cfg.rest_429_prob = 0.0

                async def counted() -> bool:  # the trader's own jobs may have met 429s too: all are counted
                    rows = {
                        lab["code"]: v for lab, v in (await scrape())["roottrading_exchange_rest_rate_limited_total"]
                    }
                    return rows == {"429": float(limiter.counts["429"]), "418": 0.0} and rows["429"] >= 1

                assert await _until(counted)
        finally:
            await host.stop()
