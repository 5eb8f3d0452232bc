"""Strategy callbacks in the coordinator (issue 19): confirm_entry vetoes with a stored reason, stake sizes the
entry (still capped by risk), a callback that raises changes nothing, strategies without callbacks are
untouched; the fast backtest engine hands such strategies to replay."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.wiring import Wiring
from roottrading.services.coordinator.strategy_hooks import StrategyHooks
from tests.coordinator.helpers import T0, TOKEN, Capture, message, sig

HOOKED = '''
from decimal import Decimal
import numpy as np
from roottrading.strategies import BaseStrategy


class Hooked(BaseStrategy):
    """Never signals by itself; its callbacks are what is tested."""
    name = "hooked"

    def generate(self, bars):
        return self.entries(buy=np.zeros(len(bars), bool))

    def confirm_entry(self, request):
        if request.tag == "night":
            return f"no {request.tag} entries on {request.symbol}"
        return None

    def stake(self, request):
        if request.tag == "boom":
            raise RuntimeError("stake blew up")
        return Decimal(300) if request.tag == "small" else None
'''


async def _host(tmp_path: Path) -> Host:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "hooked.py").write_text(HOOKED)
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        symbols="BTCUSDT",
        strategies_dir=str(folder),
    )
    host = Host(
        settings,
        ["risk", "coordinator"],
        clock=SimClock(T0),
        wiring=Wiring(coordinator={"cooldown_s": 0, "allow_multiple_cycles": True}),
    )
    await host.start()
    return host


def _tagged(sid: str, tag: str | None, strategy: str = "hooked") -> Any:
    return msgspec.structs.replace(sig(sid, stop=99.0, strategy=strategy), tag=tag)


async def test_veto_stake_and_a_raising_callback(tmp_path: Path) -> None:
    host = await _host(tmp_path)
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(_tagged("veto", "night")))
        d = (await co.decisions.query(signal_id="veto"))[0]
        assert d["decision"] == "rejected" and d["reason"] == "strategy veto: no night entries on BTCUSDT"
        assert d["details"]["stage"] == "callback"
        assert await co.ledger.reservations() == []  # a veto reserves nothing

        await co.on_signal(message(_tagged("small", "small")))
        await co.on_signal(message(_tagged("boom", "boom", strategy="hooked")))  # raises: default sizing
        await co.on_signal(message(_tagged("plain", None, strategy="ema_cross")))  # no callbacks at all
        assert await host.bus.drain(5)
        by_signal = {r.signal_id: r for r in cap.requests}
        assert by_signal["small"].quantity == Decimal(3)  # stake 300 at price 100
        # default risk sizing, shrunk by the risk rule max_position_size (20 % of 10000 = 2000 quote)
        assert by_signal["boom"].quantity == Decimal(20) and by_signal["plain"].quantity == Decimal(20)
        assert co.hooks.failures == {"hooked": 1}
        boom = (await co.decisions.query(signal_id="boom"))[0]
        assert boom["decision"] == "accepted" and "stake blew up" in boom["details"]["callback_errors"][0]
        assert "callback_errors" not in (await co.decisions.query(signal_id="small"))[0]["details"]
    finally:
        await host.stop()


async def test_stake_is_still_capped_by_risk(tmp_path: Path) -> None:
    class Big:
        name = "big"

        def confirm_entry(self, request: Any) -> None:
            return None

        def stake(self, request: Any) -> Decimal:
            return Decimal(1_000_000)

    host = await _host(tmp_path)
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        co.hooks = StrategyHooks(None, {"big": Big()})
        await co.on_signal(message(_tagged("huge", None, strategy="big")))
        assert await host.bus.drain(5)
        d = (await co.decisions.query(signal_id="huge"))[0]
        # 1,000,000 asked: the pocket's available funds cap the size, then the risk rule max_position_size
        # (20 % of 10000 equity) shrinks it to 2000 quote
        assert d["decision"] == "accepted" and "shrunk" in d["reason"]
        assert cap.requests[0].quantity == Decimal(20)
    finally:
        await host.stop()


def test_fast_engine_hands_callback_strategies_to_replay(tmp_path: Path) -> None:
    import asyncio

    from roottrading.backtest.fast import run_fast
    from roottrading.backtest.model import BacktestConfig, EngineUnavailable
    from roottrading.datasets import synthetic_candles

    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "hooked.py").write_text(HOOKED)
    cs = synthetic_candles("BTCUSDT", "1m", 200, seed=1, start_price=100.0)
    cfg = BacktestConfig(
        strategies=("hooked",),
        symbols=("BTCUSDT",),
        interval="1m",
        start_ms=cs[0].open_time,
        end_ms=cs[-1].close_time + 1,
        stake=Decimal(100),
        settings={"strategies_dir": str(folder)},
    )
    with pytest.raises(EngineUnavailable, match="callbacks \\(confirm_entry, stake\\)"):
        asyncio.run(run_fast(cfg, {"BTCUSDT": cs}))


async def test_order_type_places_limit_entries(tmp_path: Path) -> None:
    """order_type: "LIMIT" -> a limit at the signal's price; LimitOrder(p) -> at p on the tick grid (rounded
    down); None/"MARKET" -> market; a bad answer is an error that falls back to a market order. A limit above
    the signal's price reserves funds at the limit price."""
    from roottrading.domain import OrderType
    from roottrading.strategies.callbacks import LimitOrder

    class Limits:
        name = "limits"

        def confirm_entry(self, request: Any) -> None:
            return None

        def stake(self, request: Any) -> Decimal:
            return Decimal(300)

        def order_type(self, request: Any) -> Any:
            return {
                "at": "LIMIT",
                "below": LimitOrder(Decimal("97.123456789")),
                "above": LimitOrder(120),
                "market": "MARKET",
                "bad": LimitOrder(-1),
            }.get(request.tag)

    host = await _host(tmp_path)
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        co.hooks = StrategyHooks(None, {"limits": Limits()})
        for tag in ("at", "below", "above", "market", "bad"):
            await co.on_signal(message(_tagged(tag, tag, strategy="limits")))
        assert await host.bus.drain(5)
        req = {r.signal_id: r for r in cap.requests}
        assert (req["at"].type, req["at"].price) == (OrderType.LIMIT, Decimal(100))
        assert (req["below"].type, req["below"].price) == (OrderType.LIMIT, Decimal("97.12"))  # tick 0.01, down
        assert (req["market"].type, req["market"].price) == (OrderType.MARKET, None)
        assert (req["bad"].type, req["bad"].price) == (OrderType.MARKET, None)
        bad = (await co.decisions.query(signal_id="bad"))[0]
        assert "order_type returned" in bad["details"]["callback_errors"][0]
        reserved = {r.id: r.amount for r in await co.ledger.reservations()}
        at, above = (reserved[req[tag].reservation_id] for tag in ("at", "above"))
        assert above > at * Decimal("1.19")  # 3 units at (up to) 120 reserve 20 % more than 3 units at 100
    finally:
        await host.stop()
