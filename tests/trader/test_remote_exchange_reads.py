"""Reads against a remote exchange: a failed read (any exchange error) never escapes the trader, and account
queries are rate-limited (one GET /account per fill batch exceeded Binance's weight budget in the soak)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roottrading.clock import SimClock
from roottrading.exchange.errors import UnknownError
from roottrading.exchange.sim import SimExchange
from tests.trader.conftest import MIN, T0, Rig, new_engine, req


class FlakyReads(SimExchange):
    """The simulated exchange, but every read answers like a Binance -1000 after the client's retries."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.fail_reads = False
        self.balance_calls = 0

    async def get_order(self, symbol: str, client_order_id: str) -> Any:
        if self.fail_reads:
            raise UnknownError("An unknown error occurred while processing the request.")
        return await super().get_order(symbol, client_order_id)

    async def balances(self) -> Any:
        self.balance_calls += 1
        if self.fail_reads:
            raise UnknownError("An unknown error occurred while processing the request.")
        return await super().balances()


async def test_reconcile_and_balances_survive_any_read_failure(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    ex = FlakyReads(engine, clock)
    rig = Rig(tmp_path, engine, clock, feed_exchange=False)
    await rig.start(ex)
    try:
        await rig.send(req("r1"))
        ex.fail_reads = True
        out = await rig.core.reconcile()  # raised UnknownError before the fix
        assert isinstance(out, dict)
        await rig.core.publish_balances()  # likewise
    finally:
        await rig.stop()


async def test_account_queries_are_rate_limited_for_a_remote_exchange(tmp_path: Path) -> None:
    engine, clock = new_engine(usdt="100000"), SimClock(T0 - MIN)
    ex = FlakyReads(engine, clock)
    rig = Rig(tmp_path, engine, clock, feed_exchange=False)
    await rig.start(ex)
    try:
        before = ex.balance_calls
        for i in range(20):  # 20 fills in well under a second
            await rig.send(req(f"rate-{i}", qty="0.001"))
        await rig.core.settle()
        assert ex.balance_calls - before <= 2, ex.balance_calls - before
        assert rig.core.balances_dirty  # the periodic job publishes what was held back
    finally:
        await rig.stop()
