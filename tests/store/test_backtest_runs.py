"""Backtest runs in the store (SQLite and PostgreSQL): saved, listed, read back exactly; equity thinned."""

from __future__ import annotations

from decimal import Decimal

from roottrading.backtest.model import BacktestResult, Trade
from roottrading.backtest.store import MAX_EQUITY_POINTS, BacktestRepo, thin
from roottrading.store import Database
from tests.backtest.helpers import config


def result(n_equity: int = 3) -> BacktestResult:
    trades = [
        Trade(
            "BTCUSDT",
            "ema_cross",
            10,
            Decimal("9155.12"),
            20,
            Decimal("9100"),
            Decimal("0.21823155"),
            Decimal("3.99213142"),
            Decimal("-9.66615172"),
            "stop_loss",
            entry_tag="breakout",  # strategy tags (issue 19) are stored and read back
        ),
        Trade(
            "BTCUSDT",
            "rsi_cross",
            30,
            Decimal("9200"),
            None,
            None,
            Decimal("0.1"),
            Decimal("0.92"),
            Decimal("1.5"),
            "end_of_data",
        ),
    ]
    cfg = config(stake=Decimal(500), settings={"sim.taker_fee": "0"}, params={"ema_cross": {"fast": 9}})
    return BacktestResult(
        config=cfg,
        engine="replay",
        candles=120,
        seconds=0.5,
        trades=trades,
        equity=[(i, 10_000.0 + i) for i in range(n_equity)],
        metrics={"total_return": 0.01},
    )


async def test_a_run_is_stored_and_read_back(db: Database) -> None:
    repo = BacktestRepo(db)
    await repo.start("bt-1", result().config, 1_000)
    assert (await repo.list())[0]["status"] == "running"
    r = result()
    await repo.save("bt-1", r, 2_000)
    got = await repo.get("bt-1")
    assert got is not None and got["status"] == "completed" and got["engine"] == "replay"
    money = ("entry_price", "exit_price", "quantity", "fees", "pnl")

    def exact(t: dict[str, object]) -> dict[str, object]:  # 3.990 and 3.99 are the same amount
        return {k: Decimal(str(v)) if k in money and v is not None else v for k, v in t.items()}

    assert [exact(t) for t in got["trades"]] == [exact(t.as_json()) for t in r.trades]
    assert got["equity"] == [[0, 10_000.0], [1, 10_001.0], [2, 10_002.0]]
    assert got["stake"] == "500" and got["balance"] == "10000" and got["params"] == {"ema_cross": {"fast": "9"}}
    assert got["settings"] == {"sim.taker_fee": "0"} and got["metrics"] == {"total_return": 0.01}
    assert await repo.get("bt-none") is None
    await repo.fail("bt-1", "boom")
    assert (await repo.list())[0]["status"] == "failed"


async def test_a_long_equity_curve_is_thinned_keeping_the_last_point(db: Database) -> None:
    repo = BacktestRepo(db)
    await repo.save("bt-2", result(n_equity=12_345), 1)
    got = await repo.get("bt-2")
    assert got is not None and len(got["equity"]) == MAX_EQUITY_POINTS and got["equity"][-1] == [12_344, 22_344.0]
    assert thin([(1, 1.0)]) == [(1, 1.0)]
