"""Strategy tags through the analyzer service: a tagged signal is published and stored with its tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets.demo import demo_candles
from roottrading.runtime import Host

TAGGING = '''
import numpy as np
from roottrading.strategies import BaseStrategy


class EveryFifthTagged(BaseStrategy):
    """Enters on minutes divisible by 10, exits on the other multiples of 5, tagged."""
    name = "every_fifth_tagged"

    @property
    def warmup(self) -> int:
        return 2

    def generate(self, bars):
        k = bars.open_time // 60_000
        return self.outputs(enter_long=k % 10 == 0, exit_long=k % 10 == 5, enter_tag="ten", exit_tag="five")
'''


async def test_tagged_signals_are_published_and_stored_with_their_tag(tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "tagged.py").write_text(TAGGING)
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        api_token="t",
        data_dir=tmp_path,
        strategies_dir=str(folder),
        strategies="every_fifth_tagged",
    )
    host = Host(settings, ["analyzer"])
    published: list[Any] = []

    async def on_sig(msg: m.Message) -> None:
        published.append(msg.payload)

    await host.bus.subscribe(m.SIGNALS, "t", on_sig)
    await host.start()
    try:
        for c in demo_candles(["BTCUSDT"], "1m", n=40):
            await host.bus.publish(m.candles_topic("BTCUSDT"), c, key="BTCUSDT", msg_id=c.key)
        assert await host.bus.drain(10)
        assert published and {(s.side.value, s.tag) for s in published} == {("BUY", "ten"), ("SELL", "five")}
        stored = await host.services["analyzer"].signals.query(limit=100)  # type: ignore[attr-defined]
        assert sorted((s.id, s.tag) for s in stored) == sorted((s.id, s.tag) for s in published)
    finally:
        await host.stop()
