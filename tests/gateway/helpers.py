"""A gateway Host (memory bus, SQLite) against an in-process fake Binance; collectors for its output."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.domain import Candle, Tick
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.runtime import Host, Wiring
from tests.marketdata.helpers import serve


class BusCollector:
    """Every candle and tick the gateway publishes, in delivery order per symbol."""

    def __init__(self) -> None:
        self.candles: dict[str, list[Candle]] = {}
        self.ticks: dict[str, list[Tick]] = {}

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        assert msg.id == c.key and msg.key == c.symbol
        self.candles.setdefault(c.symbol, []).append(c)

    async def on_tick(self, msg: m.Message) -> None:
        t: Tick = msg.payload
        self.ticks.setdefault(t.symbol, []).append(t)

    def count(self) -> int:
        return sum(len(v) for v in self.candles.values())


@contextlib.asynccontextmanager
async def gateway_env(
    tmp_path: Path,
    cfg: FakeBinanceConfig,
    services: list[str] | None = None,
    gateway: dict[str, Any] | None = None,
    db_name: str = "g.db",
) -> AsyncIterator[tuple[Host, BusCollector, Any]]:
    """Yields (host, collector, fake state); the host is started, and stopped on exit."""
    app = build_app(cfg)
    async with serve(app) as base:
        settings = load_settings(
            symbols=",".join(cfg.symbols),
            interval=cfg.interval,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/{db_name}",
            api_token="t",
            data_dir=tmp_path,
            binance_rest_url=base,
            binance_ws_url=base.replace("http", "ws"),
        )
        host = Host(settings, services or ["gateway"], wiring=Wiring(gateway=gateway or {}))
        col = BusCollector()
        for sym in cfg.symbols:
            await host.bus.subscribe(m.candles_topic(sym), "test", col.on_candle)
            await host.bus.subscribe(m.ticks_topic(sym), "test", col.on_tick)
        await host.start()
        try:
            yield host, col, app.state.fake
        finally:
            await host.stop()


async def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()
