"""The analyzer and a pair that joins at runtime: warmed from stored history before its first live candle is
evaluated; once the pair has left the universe, entries (BUY) are no longer published but exits (SELL) are."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets.demo import demo_candles
from roottrading.domain import Side
from roottrading.runtime import Host
from roottrading.store import CandleRepo

STRATEGY = '''
import numpy as np
from roottrading.strategies import BaseStrategy, Entries


class Clockwork(BaseStrategy):
    """BUY at minute 0 of every ten, SELL at minute 5; needs 50 candles before its first signal."""
    name = "clockwork"

    @property
    def warmup(self) -> int:
        return 50

    def generate(self, bars):
        minute = (bars.open_time // 60_000) % 10
        side = np.where(minute == 0, 1, np.where(minute == 5, -1, 0)).astype(np.int8)
        return Entries(side=side, strength=np.full(len(side), 2, np.int8))
'''


async def wait_until(pred: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def test_runtime_pair_warms_from_store_then_only_exits_after_leaving(tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "clockwork.py").write_text(STRATEGY)
    ufile = tmp_path / "u.yaml"
    ufile.write_text("source: {type: static, symbols: [BTCUSDT]}\n")
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        api_token="t",
        data_dir=tmp_path,
        strategies_dir=str(folder),
        strategies="clockwork",
        universe_config=str(ufile),
    )
    host = Host(settings, ["analyzer"])
    cs = list(demo_candles(["NEWUSDT"], "1m", n=140))
    history, live = cs[:100], cs[100:]
    await host.db.migrate()
    await CandleRepo(host.db).upsert(history)  # what the gateway stores before it streams a new pair
    got: list[Any] = []

    async def on_sig(msg: m.Message) -> None:
        got.append(msg.payload)

    await host.bus.subscribe(m.SIGNALS, "t", on_sig)
    await host.start()
    try:
        svc: Any = host.services["analyzer"]
        change = m.UniverseChanged(time=0, members=["BTCUSDT", "NEWUSDT"], streamed=["BTCUSDT", "NEWUSDT"])
        await host.ctx.publish(m.UNIVERSE_CHANGED, change)
        await wait_until(lambda: host.settings.symbols == ["BTCUSDT", "NEWUSDT"] and svc.members is not None)
        first_buy = next(i for i, c in enumerate(live) if (c.open_time // 60_000) % 10 == 0)
        for c in live[: first_buy + 1]:
            await host.bus.publish(m.candles_topic("NEWUSDT"), c, key="NEWUSDT", msg_id=c.key)
        await host.bus.drain(5)
        # the first live BUY minute signals at once: 100 stored candles covered the 50-candle warm-up
        assert [(s.side, s.time) for s in got] == [(Side.BUY, live[first_buy].close_time + 1)]
        assert len(svc.pool.local.window("NEWUSDT")) >= 100

        left = m.UniverseChanged(time=0, members=["BTCUSDT"], streamed=["BTCUSDT", "NEWUSDT"])
        await host.ctx.publish(m.UNIVERSE_CHANGED, left)
        await wait_until(lambda: svc.members == {"BTCUSDT"})
        got.clear()
        for c in live[first_buy + 1 :]:
            await host.bus.publish(m.candles_topic("NEWUSDT"), c, key="NEWUSDT", msg_id=c.key)
        await host.bus.drain(5)
        assert got and {s.side for s in got} == {Side.SELL}  # exits still flow, entries do not
        stored = await svc.signals.query(symbol="NEWUSDT", limit=1000)
        assert any(s.side is Side.BUY and s.time > live[first_buy].close_time + 1 for s in stored)  # kept, not sent
    finally:
        await host.stop()
