"""Informative pairs in the analyzer: another symbol's candles reach the strategy, cut at the evaluated close,
the same as offline `signals(informative=...)`; warmed from the store after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets import synthetic_candles
from roottrading.domain import Candle
from roottrading.runtime import Host
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
from roottrading.store import CandleRepo
from roottrading.strategies.loader import load_folder

PAIR = '''
import numpy as np
import pytest
import pandas as pd
from roottrading.strategies import BaseStrategy


class PairRatio(BaseStrategy):
    """BTC/ETH ratio against its rolling mean, ETH read as 5m candles (informative)."""
    name = "pair_ratio"
    informative = [("ETHUSDT", "5m")]
    informative_window = 40

    @property
    def warmup(self):
        return 30

    def generate(self, bars):
        eth = bars.inform("ETHUSDT", "5m")
        ratio = bars.close / eth.close
        mean = pd.Series(ratio).rolling(30, min_periods=20).mean().to_numpy()
        with np.errstate(invalid="ignore"):
            return self.outputs(enter_long=ratio < mean * 0.999, exit_long=ratio > mean * 1.001,
                                enter_tag="ratio_low", exit_tag="ratio_high")
'''


def _frame(cs: list[Candle]) -> pd.DataFrame:
    cols = ("open_time", "open", "high", "low", "close", "volume")
    return pd.DataFrame({k: [getattr(c, k) for c in cs] for k in cols})


def _data(n: int = 500) -> tuple[list[Candle], list[Candle]]:
    btc = synthetic_candles("BTCUSDT", "1m", n, seed=21, start_price=20_000.0)
    eth = synthetic_candles("ETHUSDT", "1m", n, seed=22, start_price=1_500.0)
    return btc, eth


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / "pair.py").write_text(PAIR)
    return folder


def test_engine_signals_equal_offline_signals_with_the_informative_pair(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    btc, eth = _data()
    eng = AnalyzerEngine(EngineConfig(strategies_dir=str(folder), enabled=["pair_ratio"]))
    assert eng.inform_symbols() == {"ETHUSDT"}
    live: dict[str, Any] = {}
    for b, e in zip(btc, eth, strict=True):
        eng.inform([e])  # ETH's candle of the minute first, as the service does when it arrives first
        live.update({s.id: s for s in eng.on_candle(b).signals})
    assert not eng.last_errors
    strat = load_folder(folder, check_bias=False).strategies["pair_ratio"]()
    sf = strat.signals(_frame(btc), informative={"ETHUSDT": _frame(eth)})
    offline = {f"pair_ratio:BTCUSDT:1m:{int(sf.open_time[i])}": sf.row(int(i)) for i in np.flatnonzero(sf.side)}
    assert len(offline) >= 4
    assert live.keys() == offline.keys()
    for sid, s in live.items():
        assert (s.side, s.tag) == (offline[sid]["side"], offline[sid]["tag"])


def test_late_informative_candle_is_never_seen_early(tmp_path: Path) -> None:
    """ETH's candle arriving after BTC's of the same minute: the 5m candle it closes is not visible to that
    BTC candle (it shows one candle later): no lookahead on the live path."""
    folder = _folder(tmp_path)
    btc, eth = _data(200)
    eng = AnalyzerEngine(EngineConfig(strategies_dir=str(folder), enabled=["pair_ratio"]))
    cls = type(eng.registry.get("pair_ratio"))  # loaded from this test's own folder: patched for this test only
    seen: list[int] = []
    original = cls.generate

    def spy(self: Any, bars: Any) -> Any:
        inf = bars.inform("ETHUSDT", "5m")
        seen.append(int(inf.bars.open_time[-1]) + 300_000 if len(inf) else 0)
        # the last visible 5m candle closed by this BTC candle's close, and its last minute was received
        assert not len(inf) or inf.bars.open_time[-1] + 300_000 <= bars.open_time[-1] + 60_000
        return original(self, bars)

    cls.generate = spy  # type: ignore[method-assign]
    for b, e in zip(btc, eth, strict=True):
        eng.on_candle(b)
        eng.inform([e])  # late
    # with ETH late, the 5m candle ending at a BTC close is seen only at the next BTC candle
    ends = [t for t in seen if t]
    assert ends and all(t <= int(btc[-1].open_time) for t in ends)
    assert max(ends) == (int(btc[-1].open_time) // 300_000) * 300_000


async def test_service_reads_informative_symbol_from_the_bus_and_warms_it_from_the_store(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    btc, eth = _data(400)
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        api_token="t",
        data_dir=tmp_path,
        strategies_dir=str(folder),
        strategies="pair_ratio",
    )
    host = Host(settings, ["analyzer"])
    await host.db.migrate()
    await CandleRepo(host.db).upsert(eth[:300])  # ETH history stored; BTC's live
    await host.start()
    try:
        svc: Any = host.services["analyzer"]
        size = svc.pool.inform_size()  # 5m x (informative_window 40 + 2) + 16 spare
        assert size == 5 * 42 + 16
        informed = svc.pool.local.informed["ETHUSDT"]
        assert len(informed) == size and informed.last_open_time == eth[299].open_time  # warmed from the store
        for b, e in zip(btc[300:], eth[300:], strict=True):
            await host.bus.publish(m.candles_topic("ETHUSDT"), e, key="ETHUSDT", msg_id=e.key)
            await host.bus.publish(m.candles_topic("BTCUSDT"), b, key="BTCUSDT", msg_id=b.key)
        assert await host.bus.drain(10)
        assert informed.last_open_time == eth[-1].open_time
        assert len(svc.pool.local.window("ETHUSDT")) == 0  # informative only: not evaluated
        assert not svc.strategy_errors
    finally:
        await host.stop()


@pytest.mark.parametrize("workers", [0, 1])
async def test_service_signals_equal_offline_in_process_and_in_a_worker(tmp_path: Path, workers: int) -> None:
    """Through the bus, with ETH warmed from the store and then streamed before BTC each minute: the published
    signals are offline `signals()`'s, in-process and in a worker process (informative candles are sent to
    every worker)."""
    folder = _folder(tmp_path)
    btc, eth = _data(420)
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/w{workers}.db",
        api_token="t",
        data_dir=tmp_path,
        strategies_dir=str(folder),
        strategies="pair_ratio",
        analyzer_workers=workers,
    )
    host = Host(settings, ["analyzer"])
    await host.db.migrate()
    await CandleRepo(host.db).upsert(eth[:300])
    got: list[Any] = []

    async def on_sig(msg: m.Message) -> None:
        got.append(msg.payload)

    await host.bus.subscribe(m.SIGNALS, "t", on_sig)
    await host.start()
    try:
        for b, e in zip(btc[300:], eth[300:], strict=True):
            # ETH's candle of the minute is handled before BTC's (topics are delivered independently)
            await host.bus.publish(m.candles_topic("ETHUSDT"), e, key="ETHUSDT", msg_id=e.key)
            assert await host.bus.drain(30)
            await host.bus.publish(m.candles_topic("BTCUSDT"), b, key="BTCUSDT", msg_id=b.key)
        assert await host.bus.drain(30)
    finally:
        await host.stop()
    strat = load_folder(folder, check_bias=False).strategies["pair_ratio"]()
    sf = strat.signals(_frame(btc[300:]), informative={"ETHUSDT": _frame(eth)})
    offline = {f"pair_ratio:BTCUSDT:1m:{int(sf.open_time[i])}": sf.tag[i] for i in np.flatnonzero(sf.side)}
    assert offline and {s.id: s.tag for s in got} == offline
