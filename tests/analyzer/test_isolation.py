"""Issue 17 item 2: one broken user strategy must not silence the others, in-process or in worker processes;
a dead worker is restarted; errors are reported (logs, health, the strategy list)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets.demo import demo_candles
from roottrading.runtime import Host
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig

GOOD_AND_BROKEN = '''
import time
import numpy as np
from roottrading.strategies import BaseStrategy, Entries, Param


class EveryTenth(BaseStrategy):
    """Buys on every 10th candle."""
    name = "every_tenth"

    @property
    def warmup(self) -> int:
        return 2

    def generate(self, bars):
        n = len(bars)
        side = np.zeros(n, np.int8)
        side[(bars.open_time // 60_000) % 10 == 0] = 1
        return Entries(side=side, strength=np.full(n, 2, np.int8))


class Typo(BaseStrategy):
    """A user strategy with a typo: AttributeError on every candle."""
    name = "typo"

    @property
    def warmup(self) -> int:
        return 2

    def generate(self, bars):
        return self.entries(buy=bars.closes > 0)


class Slow(BaseStrategy):
    """Takes 30 ms per evaluation: over a 5 ms limit."""
    name = "slow"
    delay = Param(0.03, 0.0, 1.0, 0.01, doc="seconds")

    @property
    def warmup(self) -> int:
        return 2

    def generate(self, bars):
        time.sleep(self.delay)
        return self.entries(buy=np.zeros(len(bars), bool))
'''


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / "mixed.py").write_text(GOOD_AND_BROKEN)
    return folder


def test_engine_isolates_a_broken_strategy_and_counts_the_candle_only_after_evaluation(tmp_path: Path) -> None:
    eng = AnalyzerEngine(EngineConfig(strategies_dir=str(_folder(tmp_path)), enabled=["every_tenth", "typo"]))
    cs = demo_candles(["BTCUSDT"], "1m", n=60)
    got = []
    for c in cs:
        r = eng.on_candle(c)
        got += r.signals
        assert all(e[0] == "typo" and "AttributeError" in e[1] for e in r.errors)
    assert got and {s.strategy for s in got} == {"every_tenth"}
    assert eng.last_errors["typo"]["count"] == len(cs) - 2  # every candle after the warm-up
    assert "closes" in eng.last_errors["typo"]["error"]
    # a redelivered last candle is answered again (its signals have deterministic ids), not silently dropped
    last = next(c for c in reversed(cs) if (c.open_time // 60_000) % 10 == 0)
    eng2 = AnalyzerEngine(EngineConfig(strategies_dir=str(_folder(tmp_path)), enabled=["every_tenth"]))
    for c in cs[: cs.index(last) + 1]:
        first = eng2.on_candle(c)
    assert [s.id for s in eng2.on_candle(last).signals] == [s.id for s in first.signals] != []


def test_engine_undoes_the_append_when_evaluation_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = AnalyzerEngine(EngineConfig(strategies_dir=str(_folder(tmp_path)), enabled=["every_tenth"]))
    cs = demo_candles(["BTCUSDT"], "1m", n=30)
    for c in cs[:-1]:
        eng.on_candle(c)
    before = len(eng.window("BTCUSDT"))

    def boom(*a: Any) -> Any:
        raise MemoryError("simulated")

    monkeypatch.setattr(eng, "_consensus", boom)
    with pytest.raises(MemoryError):
        eng.on_candle(cs[-1])
    assert len(eng.window("BTCUSDT")) == before and eng.window("BTCUSDT").last_open_time == cs[-2].open_time
    monkeypatch.undo()
    assert eng.on_candle(cs[-1]) is not None and eng.window("BTCUSDT").last_open_time == cs[-1].open_time


def test_a_strategy_over_its_time_limit_is_disabled_after_repeated_overruns(tmp_path: Path) -> None:
    eng = AnalyzerEngine(
        EngineConfig(
            strategies_dir=str(_folder(tmp_path)),
            enabled=["every_tenth", "slow"],
            eval_limit_ms=5,
            eval_overruns=3,
        )
    )
    cs = demo_candles(["BTCUSDT"], "1m", n=40)
    errors = []
    for c in cs:
        errors += eng.on_candle(c).errors
    assert not eng.registry.is_enabled("slow", "BTCUSDT") and eng.registry.is_enabled("every_tenth", "BTCUSDT")
    assert sum(1 for e in errors if e[0] == "slow") == 3
    assert "disabled" in eng.last_errors["slow"]["error"]


async def _run(tmp_path: Path, workers: int, kill_after: int | None = None) -> tuple[list[str], dict[str, Any], Any]:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/w{workers}-{kill_after}.db",
        api_token="t",
        data_dir=tmp_path,
        analyzer_workers=workers,
        strategies_dir=str(_folder(tmp_path)),
        strategies="every_tenth,typo",
    )
    host = Host(settings, ["analyzer"])
    await host.start()
    svc: Any = host.services["analyzer"]
    cs = sorted(demo_candles(["BTCUSDT", "ETHUSDT"], "1m", n=80), key=lambda c: c.open_time)
    try:
        for i, cd in enumerate(cs):
            if kill_after is not None and i == kill_after:
                assert await host.bus.drain(60)
                pid = svc.pool._procs[0].pid
                os.kill(pid, signal.SIGKILL)
            await host.bus.publish(m.candles_topic(cd.symbol), cd, key=cd.symbol, msg_id=cd.key)
        assert await host.bus.drain(60)
        rows = await svc.signals.query(limit=1000)
        health = await svc.health()
        describe = {d["name"]: d for d in svc.describe_strategies()}
        return sorted(s.id for s in rows), {"health": health, "describe": describe}, svc
    finally:
        await host.stop()


@pytest.mark.parametrize("workers", [0, 2])
async def test_a_broken_strategy_does_not_silence_the_others(tmp_path: Path, workers: int) -> None:
    ids, info, _ = await _run(tmp_path, workers)
    strategies = {i.split(":")[0] for i in ids}
    assert strategies == {"every_tenth"} and {i.split(":")[1] for i in ids} == {"BTCUSDT", "ETHUSDT"}
    cs = demo_candles(["BTCUSDT"], "1m", n=80)
    per_symbol = sum(1 for c in cs[2:] if (c.open_time // 60_000) % 10 == 0)  # warm-up rows fire nothing
    assert len(ids) == 2 * per_symbol
    health = info["health"]
    assert health.status == "degraded" and "typo" in health.details["strategy_errors"]
    last = info["describe"]["typo"]["last_error"]
    assert "AttributeError" in last["error"] and last["symbol"] in ("BTCUSDT", "ETHUSDT") and last["count"] > 0
    assert info["describe"]["every_tenth"].get("last_error") is None


async def test_a_killed_worker_is_restarted_and_candles_keep_flowing(tmp_path: Path) -> None:
    baseline, _, _ = await _run(tmp_path, 1)
    ids, info, svc = await asyncio.wait_for(_run(tmp_path, 1, kill_after=70), 120)
    assert svc.pool.restarts == 1 and info["health"].details["worker_restarts"] == 1
    assert ids == baseline  # nothing lost: candles in flight were redelivered to the new worker, warm
