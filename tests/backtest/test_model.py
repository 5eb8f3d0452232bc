"""BacktestResult's repr is a summary: asyncio.run formats the main task (and so its result) when it restores
the SIGINT handler, so a generated repr of a year of equity points cost each CLI/benchmark run ~1 s."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from roottrading.backtest.model import BacktestResult, Trade
from tests.backtest.helpers import config


def big_result(points: int) -> BacktestResult:
    z = Decimal(0)
    trades = [Trade("BTCUSDT", "ema_cross", i, Decimal(1), i + 1, Decimal(1), Decimal(1), z, z) for i in range(1_000)]
    return BacktestResult(
        config=config(),
        engine="fast",
        candles=points,
        seconds=1.25,
        trades=trades,
        equity=[(i, 1.0) for i in range(points)],
        metrics={},
    )


def test_repr_summarises_instead_of_listing_every_point() -> None:
    r = big_result(100_000)
    text = repr(r)
    assert len(text) < 300
    assert "engine='fast'" in text and "candles=100000" in text and "trades=1000" in text
    assert "equity=100000 points" in text


def test_asyncio_run_does_not_format_the_whole_result() -> None:
    calls: list[int] = []

    class Counting(list):  # the equity list records whether anything formats it
        def __repr__(self) -> str:
            calls.append(1)
            return super().__repr__()

    r = big_result(10)
    r.equity = Counting(r.equity)

    async def main() -> BacktestResult:
        return r

    assert asyncio.run(main()) is r
    assert calls == []
