"""Split mode: the portfolio may start before the trader's first balance sync. Its pockets must be funded from the
exchange's balances at start, or as soon as the first sync arrives, never left at 0 until the next reallocation
job (every entry was refused "no funds available" for ~30 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Balance
from roottrading.runtime import Host, Wiring

D = Decimal
T0 = 1_700_000_000_000


class Exchange:
    """The account read of the Exchange port: what the portfolio asks at start."""

    def __init__(self, balances: dict[str, Decimal] | None) -> None:
        self.given = balances
        self.calls = 0

    async def balances(self) -> dict[str, Balance]:
        self.calls += 1
        if self.given is None:
            raise ConnectionError("exchange unreachable")
        return {a: Balance(asset=a, free=v, locked=D(0)) for a, v in self.given.items()}


async def start_portfolio(tmp_path: Path, exchange: Exchange) -> Host:
    settings = load_settings(
        trading_mode="live",  # split mode on a real (or simulated) exchange: no demo seed
        binance_api_key="k",
        binance_secret_key="s",
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        api_token="t",
        data_dir=tmp_path,
    )
    # the reallocation job never runs during the test: only the start and the first sync may fund the pockets
    settings = settings.model_copy(update={"portfolio_reallocate_s": 3600, "portfolio_reconcile_s": 3600})
    host = Host(settings, ["portfolio"], clock=SimClock(T0), wiring=Wiring(portfolio_exchange=exchange))
    await host.start()
    return host


@pytest.fixture
async def hosts() -> AsyncIterator[list[Host]]:
    started: list[Host] = []
    yield started
    for h in started:
        await h.stop()


async def pockets(host: Host) -> dict[str, Any]:
    return {p.pocket_type: p for p in await host.services["portfolio"].ledger.pockets()}  # type: ignore[attr-defined]


async def test_pockets_are_funded_from_the_exchange_at_start(tmp_path: Path, hosts: list[Host]) -> None:
    ex = Exchange({"USDT": D(5000), "BNB": D(0)})
    hosts.append(host := await start_portfolio(tmp_path, ex))
    assert ex.calls == 1
    p = await pockets(host)
    assert p["active"].available_value == D(3000) and p["safety"].current_value == D(500)
    assert host.services["portfolio"].total_value == D(5000)  # type: ignore[attr-defined]


async def test_unreachable_exchange_funds_the_pockets_at_the_first_sync(tmp_path: Path, hosts: list[Host]) -> None:
    hosts.append(host := await start_portfolio(tmp_path, Exchange(None)))
    assert (await pockets(host))["active"].available_value == 0  # nothing known: no entry on unknown funds
    upd = m.BalancesUpdate(time=T0, balances=[Balance(asset="USDT", free=D(8000), locked=D(0))], total_value=D(8000))
    await host.bus.publish(m.PORTFOLIO_BALANCES, upd)
    assert await host.bus.drain(10)
    p = await pockets(host)
    assert p["active"].available_value == D(4800) and sum(x.current_value for x in p.values()) == D(8000)
