"""The analyzer service: warm-up from the store, parallel workers, runtime control, user strategies, consensus."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.datasets.demo import demo_candles
from roottrading.domain import Candle
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
from roottrading.services.analyzer.window import CandleWindow
from roottrading.store import CandleRepo

USER_STRATEGY = '''
import numpy as np
from roottrading.strategies import BaseStrategy, Entries, Param


class EveryTenth(BaseStrategy):
    """Buys on every 10th candle: a test strategy dropped into STRATEGIES_DIR."""
    name = "every_tenth"
    every = Param(10, 2, 100, 1, doc="period")

    @property
    def warmup(self) -> int:
        return 2

    def generate(self, bars):
        n = len(bars)
        side = np.zeros(n, np.int8)
        side[(bars.open_time // 60_000) % self.every == 0] = 1
        return Entries(side=side, strength=np.full(n, 2, np.int8))
'''


def candles(n: int = 300, symbol: str = "BTCUSDT") -> list[Candle]:
    return list(demo_candles([symbol], "1m", n=n))


def test_window_keeps_last_n_in_order_and_ignores_redelivery() -> None:
    w = CandleWindow(5)
    cs = candles(20)
    for c in cs:
        assert w.append(c)
    assert not w.append(cs[-1]) and not w.append(cs[3])
    b = w.bars()
    assert list(b.open_time) == [c.open_time for c in cs[-5:]]
    assert list(b.close) == [c.close for c in cs[-5:]]
    assert b.close.flags["C_CONTIGUOUS"]


def test_engine_signals_equal_full_history_evaluation() -> None:
    """Live (one candle at a time) must say what the vectorised strategy says on the same window."""
    cs = candles(400)
    eng = AnalyzerEngine(EngineConfig(enabled=["ema_cross", "rsi_cross", "macd_crossover"], window=120))
    live = {s.id for c in cs for s in eng.on_candle(c).signals}
    assert live, "three classic strategies must fire on 400 real candles"
    # evaluate the same rows offline with the same windowing
    ref = AnalyzerEngine(EngineConfig(enabled=["ema_cross", "rsi_cross", "macd_crossover"], window=120))
    offline = set()
    for c in cs:
        ref.window(c.symbol).append(c)
        frame = ref.window(c.symbol).frame()
        for strat in ref.registry.active(c.symbol):
            sig = strat.latest_signal(frame.tail(ref.lookback(strat)), c.symbol, c.interval)
            if sig:
                offline.add(sig.id)
    assert live == offline


def test_consensus_needs_k_agreeing_strategies() -> None:
    cs = candles(400)
    solo = AnalyzerEngine(EngineConfig(window=120))
    cons = AnalyzerEngine(EngineConfig(window=120, consensus_k=3))
    n_solo = n_cons = 0
    for c in cs:
        a, b = solo.on_candle(c), cons.on_candle(c)
        n_solo += len(a.signals)
        n_cons += len(b.signals)
        for s in b.signals:
            assert s.strategy == "consensus" and len(str(s.meta["agree"]).split(",")) >= 3
            agreeing = [x for x in a.signals if x.side is s.side]
            assert len(agreeing) >= 3
    assert 0 < n_cons < n_solo


async def _host(tmp_path: Path, **kw: object) -> Host:
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db", api_token="t", data_dir=tmp_path, **kw
    )
    return Host(settings, ["analyzer"])


async def test_warm_up_from_stored_history_then_signals_on_next_candle(tmp_path: Path) -> None:
    cs = candles(200)
    host = await _host(tmp_path, strategies="ema_cross")
    await host.db.migrate()
    await CandleRepo(host.db).upsert(cs[:-1])
    got: list[m.Message] = []

    async def on_sig(msg: m.Message) -> None:
        got.append(msg)

    await host.bus.subscribe(m.SIGNALS, "t", on_sig)
    await host.start()
    try:
        svc = host.services["analyzer"]
        assert len(svc.pool.local.window("BTCUSDT")) == 199  # type: ignore[attr-defined]
        # the strategy is warm: evaluating the last candle needs no further history
        await host.bus.publish(m.candles_topic("BTCUSDT"), cs[-1], key="BTCUSDT", msg_id=cs[-1].key)
        await host.bus.drain(5)
        assert svc.candles_seen == 1  # type: ignore[attr-defined]
    finally:
        await host.stop()


async def test_runtime_control_and_user_strategy_folder(tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "every_tenth.py").write_text(USER_STRATEGY)
    (folder / "broken.py").write_text("import nonexistent_module_xyz\n")
    host = await _host(tmp_path, strategies_dir=str(folder))
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            names = {s["name"] for s in (await c.get("/api/analyzer/strategies")).json()}
            assert "every_tenth" in names and "ema_cross" in names and "broken" not in names
            auth = {"Authorization": "Bearer t"}
            r = await c.put("/api/analyzer/strategies/every_tenth", json={"params": {"every": 1000}}, headers=auth)
            assert r.status_code == 422 and "every" in r.text
            r = await c.put("/api/analyzer/strategies/every_tenth", json={"params": {"every": 5}}, headers=auth)
            assert r.status_code == 200 and r.json()["params"]["every"]["value"] == 5
            r = await c.put("/api/analyzer/strategies/nope", json={"enabled": False}, headers=auth)
            assert r.status_code == 404
            # only the user strategy runs for BTCUSDT
            for name in names - {"every_tenth"}:
                await c.put(
                    f"/api/analyzer/strategies/{name}", json={"enabled": False, "symbol": "BTCUSDT"}, headers=auth
                )
            for cd in candles(60):
                await host.bus.publish(m.candles_topic("BTCUSDT"), cd, key="BTCUSDT", msg_id=cd.key)
            await host.bus.drain(10)
            sigs = (await c.get("/api/analyzer/signals", params={"limit": 1000})).json()
            assert sigs and {s["strategy"] for s in sigs} == {"every_tenth"}
            assert all((s["meta"]["open_time"] // 60_000) % 5 == 0 for s in sigs)
    finally:
        await host.stop()


@pytest.mark.slow
async def test_worker_processes_give_the_same_signals_as_in_process(tmp_path: Path) -> None:
    cs = sorted(demo_candles(["BTCUSDT", "ETHUSDT"], "1m", n=150), key=lambda c: c.open_time)
    results = []
    for workers in (0, 2):
        settings = load_settings(
            symbols="BTCUSDT,ETHUSDT",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/w{workers}.db",
            api_token="t",
            data_dir=tmp_path,
            analyzer_workers=workers,
            strategies="ema_cross,rsi_cross,bollinger_touch",
        )
        host = Host(settings, ["analyzer"])
        await host.start()
        try:
            for cd in cs:
                await host.bus.publish(m.candles_topic(cd.symbol), cd, key=cd.symbol, msg_id=cd.key)
            assert await host.bus.drain(60)
            rows = await host.services["analyzer"].signals.query(limit=1000)  # type: ignore[attr-defined]
            results.append(sorted(s.id for s in rows))
        finally:
            await host.stop()
    assert results[0] and results[0] == results[1]


def test_fast_last_row_path_equals_the_vectorised_row_for_every_strategy() -> None:
    """latest_signal_bars skips full-array stops; it must say exactly what signals_bars says at the last row."""
    from roottrading.strategies.base import Bars
    from roottrading.strategies.builtin import BUILTIN_STRATEGIES

    cs = demo_candles(["BTCUSDT"], "1m", n=700)
    w = CandleWindow(700)
    for c in cs:
        w.append(c)
    full = w.bars()
    checked = fired = 0
    for cls in BUILTIN_STRATEGIES.values():
        strat = cls()
        size = max(100, 3 * strat.warmup)
        for end in range(size, len(cs), 7):
            b = Bars(
                open_time=full.open_time[end - size : end],
                open=full.open[end - size : end],
                high=full.high[end - size : end],
                low=full.low[end - size : end],
                close=full.close[end - size : end],
                volume=full.volume[end - size : end],
            )
            fast = strat.latest_signal_bars(b, "BTCUSDT", "1m")
            row = strat.signals_bars(
                Bars(**{k: getattr(b, k) for k in ("open_time", "open", "high", "low", "close", "volume")})
            ).row(size - 1)
            checked += 1
            if row is None:
                assert fast is None, (cls.name, end)
                continue
            fired += 1
            assert fast is not None, (cls.name, end)
            assert (fast.side, fast.strength) == (row["side"], row["strength"])
            for k in ("stop_loss", "take_profit", "trailing_pct"):
                a, r = getattr(fast, k), row[k]
                assert (a is None and r is None) or abs(a - r) <= 1e-9 * abs(r), (cls.name, k, a, r)
    assert fired > 50 and checked > 1000
