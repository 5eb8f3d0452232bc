"""Builders shared by the coordinator tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Candle, Side, Signal, SignalStrength
from roottrading.runtime import Host, Wiring

TOKEN = "t"
T0 = int(dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)


def sig(
    sid: str,
    side: Side = Side.BUY,
    *,
    price: float = 100.0,
    strategy: str = "s1",
    symbol: str = "BTCUSDT",
    strength: SignalStrength = SignalStrength.STRONG,
    time: int = T0,
    stop: float | None = None,
    regime: str | None = None,
) -> Signal:
    return Signal(
        id=sid,
        time=time,
        symbol=symbol,
        strategy=strategy,
        side=side,
        strength=strength,
        price=price,
        stop_loss=stop,
        regime=regime,
    )


def candle(symbol: str, close: float, open_time: int) -> Candle:
    return Candle(
        symbol=symbol,
        interval="1m",
        open_time=open_time,
        close_time=open_time + 59_999,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
    )


async def make_host(
    tmp_path: Path,
    names: list[str],
    *,
    rules: str | None = None,
    symbols: str = "BTCUSDT",
    clock: SimClock | None = None,
    **coordinator: Any,
) -> Host:
    path = None
    if rules is not None:
        path = tmp_path / "rules.yaml"
        path.write_text(rules)
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        symbols=symbols,
        risk_reload_s=3600,
        risk_rules_path=path,
    )
    host = Host(
        settings, names, clock=clock or SimClock(T0), wiring=Wiring(coordinator={"cooldown_s": 0, **coordinator})
    )
    await host.start()
    return host


class Capture:
    """Collects the order requests the coordinator publishes."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def __call__(self, msg: m.Message) -> None:
        self.requests.append(msg.payload)


def message(payload: Any, topic: str = m.SIGNALS, attempt: int = 1) -> m.Message:
    return m.Message(id=getattr(payload, "id", "x"), topic=topic, key=None, ts=0, payload=payload, attempt=attempt)
