"""Per-strategy state through the analyzer: saved after each evaluation that changed it, restored after a
restart of the host, rolled back when the evaluation raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets.demo import demo_candles
from roottrading.runtime import Host
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
from roottrading.store import CandleRepo, StrategyStateRepo

COUNTER = '''
import numpy as np
from roottrading.strategies import BaseStrategy


class Counter(BaseStrategy):
    """Counts its evaluations and remembers the last close; raises on a close ending in .13 if told to."""
    name = "counter"

    @property
    def warmup(self):
        return 2

    def generate(self, bars):
        st = self.state()
        st["seen"] = st.get("seen", 0) + 1
        st["last_close"] = float(bars.close[-1])
        if st.get("explode_at") == int(bars.open_time[-1]):
            raise RuntimeError("boom")
        return self.entries(buy=np.zeros(len(bars), bool))
'''


def _settings(tmp_path: Path, folder: Path, workers: int = 0) -> Any:
    return load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        api_token="t",
        data_dir=tmp_path,
        strategies_dir=str(folder),
        strategies="counter",
        analyzer_workers=workers,
    )


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / "counter.py").write_text(COUNTER)
    return folder


async def _feed(host: Host, candles: list[Any]) -> None:
    for c in candles:
        await host.bus.publish(m.candles_topic("BTCUSDT"), c, key="BTCUSDT", msg_id=c.key)
    assert await host.bus.drain(30)


@pytest.mark.parametrize("workers", [0, 1])
async def test_state_is_stored_and_restored_after_a_restart(tmp_path: Path, workers: int) -> None:
    folder = _folder(tmp_path)
    cs = list(demo_candles(["BTCUSDT"], "1m", n=40))
    host = Host(_settings(tmp_path, folder, workers), ["analyzer"])
    await host.start()
    try:
        await _feed(host, cs[:20])
    finally:
        await host.stop()
    host2 = Host(_settings(tmp_path, folder, workers), ["analyzer"])
    await host2.db.migrate()
    await CandleRepo(host2.db).upsert(cs[:20])  # what the market service stored: the window warms from it
    await host2.start()
    try:
        stored = {(n, s): d for n, s, d in await StrategyStateRepo(host2.db).all()}
        # evaluated from the 3rd candle on (warm-up 2): 18 evaluations before the restart
        assert stored[("counter", "BTCUSDT")] == {"seen": 18, "last_close": cs[19].close}
        await _feed(host2, cs[20:25])  # continues from 18, not from 0
        stored = {(n, s): d for n, s, d in await StrategyStateRepo(host2.db).all()}
        assert stored[("counter", "BTCUSDT")] == {"seen": 23, "last_close": cs[24].close}
    finally:
        await host2.stop()


def test_a_failed_evaluation_rolls_its_state_changes_back(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cs = list(demo_candles(["BTCUSDT"], "1m", n=10))
    eng = AnalyzerEngine(EngineConfig(strategies_dir=str(folder), enabled=["counter"]))
    eng.restore_states([("counter", "BTCUSDT", {"seen": 100, "explode_at": cs[5].open_time})])
    saved = []
    for c in cs:
        r = eng.on_candle(c)
        saved.extend(r.states)
    assert [name for name, _ in eng.last_errors.items()] == ["counter"]
    assert "boom" in eng.last_errors["counter"]["error"]
    seen = [d["seen"] for _, _, d in saved]
    # evaluated on candles 2..9 (warm-up 2); candle 5 raised: not saved, and its increment undone
    assert seen == [101, 102, 103, 104, 105, 106, 107]
