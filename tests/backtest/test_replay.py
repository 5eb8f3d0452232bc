"""The replay engine: the real services on history, deterministic, interruptible, with a fixed stake."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from roottrading.backtest.overrides import parse_overrides
from roottrading.backtest.replay import run_replay
from tests.backtest.helpers import config, hourly


async def test_two_runs_give_identical_results() -> None:
    cfg = config()
    a = await run_replay(cfg, {"BTCUSDT": hourly()})
    b = await run_replay(cfg, {"BTCUSDT": hourly()})
    assert a.trades, "three classic strategies trade on 120 real hourly candles"
    assert a.trades == b.trades
    assert a.equity == b.equity
    assert a.metrics == b.metrics
    assert a.candles == b.candles == 120


async def test_trades_come_from_the_cycles_and_add_up_to_the_account() -> None:
    """Trades are the stored cycles with their fills: their PnL (realised, and open ones marked at the last
    close) is what the simulated account gained, up to base-asset dust below the step size."""
    r = await run_replay(config(), {"BTCUSDT": hourly()})
    for t in r.trades:
        assert t.entry_price > 0 and t.quantity > 0 and t.fees > 0
        assert t.exit_time is None or t.exit_time > t.entry_time
    net = sum((t.pnl for t in r.trades), Decimal(0))
    final = Decimal(r.metrics["final_equity"])
    assert abs(final - (Decimal(10_000) + net)) < Decimal("0.5"), (final, net)
    assert r.equity[-1][0] == hourly()[-1].close_time
    assert r.metrics["buy_and_hold"]["return"] == pytest.approx(
        hourly()[-1].close / hourly()[0].open * 0.999**2 - 1, abs=1e-6
    )


async def test_progress_raising_keyboard_interrupt_stops_with_a_partial_result() -> None:
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 60:
            raise KeyboardInterrupt

    r = await run_replay(config(), {"BTCUSDT": hourly()}, progress=progress)
    assert r.interrupted and r.candles == 60
    assert seen[-1] == 60 and seen == sorted(seen)
    assert len(r.equity) == 60
    assert any("interrupted after 60 of 120" in w for w in r.warnings)
    full = await run_replay(config(), {"BTCUSDT": hourly()})
    cut = hourly()[59].close_time
    done_before = [t for t in full.trades if t.exit_time is not None and t.exit_time <= cut]
    assert [t for t in r.trades if t.exit_time is not None] == done_before  # the same trades, up to the cut


async def test_fixed_stake_sizes_every_entry_at_the_stake() -> None:
    r = await run_replay(config(stake=Decimal(500)), {"BTCUSDT": hourly()})
    assert r.trades
    for t in r.trades:
        notional = t.entry_price * t.quantity
        # the quantity is the stake at the signal's price, rounded down to the step; the fill price may differ
        assert Decimal(480) < notional <= Decimal(510), (t, notional)
    default = await run_replay(config(), {"BTCUSDT": hourly()})
    assert max(t.entry_price * t.quantity for t in default.trades) > 1000  # risk sizing is much larger here


async def test_set_overrides_reach_the_services() -> None:
    """--set sim.taker_fee=0 removes the fees; risk.max_open_cycles.limit=0 refuses every entry."""
    cfg = config(settings={"sim.taker_fee": "0", "sim.maker_fee": "0"})
    r = await run_replay(cfg, {"BTCUSDT": hourly()}, overrides=parse_overrides(cfg.settings))
    assert r.trades and all(t.fees == 0 for t in r.trades)
    blocked = config(settings={"risk.max_open_cycles.limit": "0"})
    assert (await run_replay(blocked, {"BTCUSDT": hourly()})).trades == []


async def test_periodic_jobs_run_on_market_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PnL snapshot job runs on market time: with jobs.pnl_snapshot_s=300 (its live period) once per
    hourly candle, with 7200 every other candle (first due two hours after the start), by default (a day in a
    backtest, overrides.JOB_DEFAULTS) once a day."""
    from roottrading.services.pnl.service import PnlService

    calls: list[int] = []
    original = PnlService.snapshot

    async def counting(self: PnlService) -> None:
        calls.append(self.ctx.clock.now_ms())
        await original(self)

    monkeypatch.setattr(PnlService, "snapshot", counting)
    await run_replay(config(settings={"jobs.pnl_snapshot_s": "300"}), {"BTCUSDT": hourly()})
    assert len(calls) == 120 and calls[0] == hourly()[0].close_time
    calls.clear()
    await run_replay(config(settings={"jobs.pnl_snapshot_s": "7200"}), {"BTCUSDT": hourly()})
    assert len(calls) == 59 and {b - a for a, b in itertools.pairwise(calls)} == {7_200_000}
    calls.clear()
    await run_replay(config(), {"BTCUSDT": hourly()})
    assert len(calls) == 4 and {b - a for a, b in itertools.pairwise(calls)} == {86_400_000}


async def test_strategy_parameters_go_through_the_analyzer_and_are_checked() -> None:
    default = await run_replay(config(strategies=("macd_crossover",)), {"BTCUSDT": hourly()})
    params = {"macd_crossover": {"fast": 6, "slow": 13, "signal": 4}}
    tuned = await run_replay(config(strategies=("macd_crossover",), params=params), {"BTCUSDT": hourly()})
    assert default.trades and tuned.trades and tuned.trades != default.trades
    with pytest.raises(ValueError, match="ema_cross"):
        await run_replay(config(params={"ema_cross": {"fast": 500}}), {"BTCUSDT": hourly()})


async def test_several_symbols_share_one_account_in_close_time_order() -> None:
    from roottrading.backtest.replay import merge_candles
    from roottrading.datasets import synthetic_candles

    data = {
        "BTCUSDT": synthetic_candles("BTCUSDT", "1h", 150, seed=1, start_price=20_000.0),
        "ETHUSDT": synthetic_candles("ETHUSDT", "1h", 150, seed=2, start_price=1_500.0)[10:],  # starts later
    }
    merged = merge_candles(data)
    assert [(c.close_time, c.symbol) for c in merged] == sorted((c.close_time, c.symbol) for c in merged)
    cfg = config(
        symbols=("BTCUSDT", "ETHUSDT"),
        strategies=("macd_crossover", "rsi_cross"),
        start_ms=data["BTCUSDT"][0].open_time,
        end_ms=data["BTCUSDT"][-1].close_time + 1,
    )
    a = await run_replay(cfg, data)
    assert a.candles == 290 and len(a.equity) == 150  # one equity point per candle time
    assert {t.symbol for t in a.trades} == {"BTCUSDT", "ETHUSDT"}
    assert a.trades == (await run_replay(cfg, data)).trades
