"""The worked examples of docs/strategies.md, run as they are written: their code blocks extracted from the
docs, a `replay` backtest, a demo-like run of the platform over the same candles, and the check that both
made the same trades (issue 19: "the documented examples run in the demo and in backtests with identical
trades"). Shared by tests/backtest/test_custom_stoploss.py and tests/backtest/test_docs_examples.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from roottrading.backtest.drift import compare
from roottrading.backtest.model import BacktestConfig
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Candle
from roottrading.runtime import Host, Wiring
from roottrading.store import Database
from roottrading.store.tables import trade_cycles, trade_executions

DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
# every entry signal reaches the money rules (the examples' trades, not the coordinator's filters, are compared)
COORD = {"cooldown_s": 0, "max_signal_age_s": 0}
SETS = {f"coordinator.{k}": str(v) for k, v in COORD.items()}
PIPELINE = ["logger", "portfolio", "pnl", "risk", "trader", "coordinator", "analyzer", "replay"]


def documented_example(filename: str) -> str:
    """The code block of docs/strategies.md that starts with `# my_strategies/<filename>`."""
    text = DOCS.read_text()
    found = re.search(rf"```python\n(# my_strategies/{re.escape(filename)}\n.*?)```", text, re.S)
    assert found, f"the worked example {filename} is gone from docs/strategies.md"
    return found.group(1)


def strategies_folder(tmp_path: Path, filename: str, extra: str = "") -> Path:
    """A STRATEGIES_DIR holding the documented example (plus `extra` code, e.g. a control class)."""
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / filename).write_text(documented_example(filename) + extra)
    return folder


def settings_for(folder: Path) -> dict[str, str]:
    return {**SETS, "strategies_dir": str(folder)}


def merged(candles: Mapping[str, Sequence[Candle]]) -> list[Candle]:
    """Several symbols' candles in the replay engine's publication order: by close time, then symbol."""
    return sorted((c for cs in candles.values() for c in cs), key=lambda c: (c.close_time, c.symbol))


async def demo_run(
    tmp_path: Path,
    folder: Path,
    strategy: str,
    candles: Mapping[str, Sequence[Candle]],
    *,
    hook: str | None = None,
    interval: str = "1h",
    speed: float = 20,
) -> str:
    """The platform fed `candles` by its replay service (as `roottrading demo` is), into a store; paced so
    the pipeline keeps up on a loaded machine (`speed` candles a second: the replay service moves the clock
    to each candle's close as it publishes it, so a pipeline that lags a candle fills a candle late;
    tests/backtest/test_drift.py does the same with built-ins). With `hook`, checks that
    the trader calls the coordinator's own instance of the strategy for it (one process). Returns the store's
    url."""
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    settings = load_settings(
        symbols=",".join(candles),
        interval=interval,
        database_url=url,
        data_dir=tmp_path,
        strategies=strategy,
        strategies_dir=str(folder),
        replay_speed=speed,
    )
    wiring = Wiring(replay_candles=merged(candles), coordinator=COORD)
    host = Host(settings, PIPELINE, clock=SimClock(), wiring=wiring)
    await host.start()
    try:
        await asyncio.wait_for(host.services["replay"].done.wait(), 120)  # type: ignore[attr-defined]
        assert await host.bus.drain(30)
        if hook is not None:
            trader = host.services["trader"].core  # type: ignore[attr-defined]
            coordinator = host.services["coordinator"]
            assert trader.hooks._strategy(strategy, hook) is coordinator.hooks.instances()[strategy]  # type: ignore[attr-defined]
    finally:
        await host.stop()
    return url


async def same_trades(url: str, cfg: BacktestConfig, candles: Mapping[str, Sequence[Candle]]) -> dict[str, Any]:
    """Compare the demo's store at `url` with a `replay` backtest of `cfg` on `candles`, trade for trade:
    same entry and exit times, prices, sizes, reasons and PnL. Returns the demo's cycles and orders."""
    db = Database(url)
    try:
        report = await compare(db, cfg, candles)
        async with db.begin() as conn:
            cycles = (await conn.execute(select(trade_cycles))).mappings().all()
            orders = (await conn.execute(select(trade_executions))).mappings().all()
    finally:
        await db.close()
    assert report.matched and not report.live_only and not report.backtest_only, report.as_json()
    for m in report.matched:
        assert not m.reasons, m  # same entry and exit times, prices, sizes and reasons
        assert m.exit_time_diff_ms == 0 and m.exit_price_diff_bps == 0 and Decimal(m.pnl_diff) == 0, m
    return {"matched": report.matched, "cycles": cycles, "orders": orders}
