"""Bias checks: a peeking strategy is caught, built-ins do not peek, a slow-converging one is reported, and the
check runs at load (user strategies) and before a backtest."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roottrading.backtest.bias import bars_from_candles, check_history, check_lookahead, check_strategy
from roottrading.datasets import load_candles
from roottrading.strategies import BaseStrategy
from roottrading.strategies.base import Bars, Entries
from roottrading.strategies.builtin import BUILTIN_STRATEGIES
from roottrading.strategies.loader import load_strategies

PEEKING_SRC = '''
import numpy as np
from roottrading.strategies import BaseStrategy


class Peeking(BaseStrategy):
    """BUY when the NEXT candle closes higher: uses close shifted by -1 (a future candle)."""

    name = "peeking"

    @property
    def warmup(self):
        return 5

    def generate(self, bars):
        nxt = np.append(bars.close[1:], np.nan)  # close.shift(-1)
        return self.entries(buy=nxt > bars.close * 1.01, sell=nxt < bars.close * 0.99)
'''

SLOW_SRC = '''
import numpy as np
from roottrading.strategies import BaseStrategy


class SlowEma(BaseStrategy):
    """Close crossing a very slow EMA (alpha 0.005, seeded with the first close) that claims a short warm-up:
    its value depends on where the input starts far beyond the live window."""

    name = "slow_ema"

    @property
    def warmup(self):
        return 10

    def generate(self, bars):
        c = bars.close
        e = np.empty_like(c)
        acc = c[0]
        for i, x in enumerate(c):
            acc += 0.005 * (x - acc)
            e[i] = acc
        above = c > e
        prev = np.concatenate([[False], above[:-1]])
        return self.entries(buy=above & ~prev, sell=~above & prev)
'''


def _load(src: str, name: str) -> type[BaseStrategy]:
    ns: dict[str, object] = {"__name__": f"bias_test_{name}"}
    exec(compile(src, f"<{name}>", "exec"), ns)
    cls = next(v for v in ns.values() if isinstance(v, type) and issubclass(v, BaseStrategy) and v is not BaseStrategy)
    return cls


@pytest.fixture(scope="module")
def daily() -> Bars:
    return bars_from_candles(load_candles("BTCUSDT", "1d"))


def test_a_strategy_peeking_at_the_next_candle_is_caught(daily: Bars) -> None:
    report = check_strategy(_load(PEEKING_SRC, "peeking")(), daily)
    assert not report.ok
    assert report.lookahead, report.verdict()
    assert report.verdict().startswith("LOOKAHEAD")
    f = report.lookahead[0]
    assert f.kind == "lookahead" and f.expected != "none" and f.got == "none"  # the full run signalled, the cut not
    assert f.open_time == int(daily.open_time[f.row])
    assert "peeking" in report.warnings()[0] and f"row {f.row}" in report.warnings()[0]


@pytest.mark.parametrize(("symbol", "interval"), [("BTCUSDT", "1d"), ("BTCBUSD", "1m")])
def test_every_builtin_passes_the_lookahead_check_on_bundled_data(symbol: str, interval: str) -> None:
    bars = bars_from_candles(load_candles(symbol, interval))
    bad = {}
    for name, cls in sorted(BUILTIN_STRATEGIES.items()):
        found, checked = check_lookahead(cls(), bars, cuts=40)
        assert checked >= 20, name
        if found:
            bad[name] = [f.describe() for f in found[:2]]
    assert not bad, bad


def test_the_history_check_reports_a_slow_converging_strategy(daily: Bars) -> None:
    strategy = _load(SLOW_SRC, "slow")()
    found, checked, lengths, _ = check_history(strategy, daily, rows=40)
    assert lengths == (100, 200, 400)  # the live window (3x warm-up, at least 100), 2x, 4x
    assert checked >= 20 and found
    assert all(f.detail.endswith("vs 400") for f in found)
    report = check_strategy(strategy, daily)
    assert not report.lookahead  # causal: only history-dependent
    assert report.verdict().startswith("HISTORY-DEPENDENT")


def test_a_converged_strategy_is_not_reported(daily: Bars) -> None:
    """The check is not a constant alarm: an SMA cross (finite memory) gives the same signal at any length."""

    class SmaCross(BaseStrategy):
        name = "sma_cross_test"

        @property
        def warmup(self) -> int:
            return 30

        def generate(self, bars: Bars) -> Entries:
            c = bars.close
            m = np.convolve(c, np.ones(30) / 30)[: len(c)]
            m[:29] = np.nan
            above = c > m
            prev = np.concatenate([[False], above[:-1]])
            return self.entries(buy=above & ~prev, sell=~above & prev)

    report = check_strategy(SmaCross(), daily)
    assert report.ok, report.verdict()
    assert report.cuts_checked >= 30 and report.history_rows_checked >= 30


def test_user_strategies_are_checked_at_load_with_a_warning_never_a_refusal(tmp_path: Path) -> None:
    (tmp_path / "peeking.py").write_text(PEEKING_SRC)
    (tmp_path / "raises_on_data.py").write_text(
        textwrap.dedent("""
        from roottrading.strategies import BaseStrategy
        class Boom(BaseStrategy):
            name = "boom"
            def generate(self, bars):
                if len(bars) > 200:
                    raise ZeroDivisionError("only on long data")
                return self.entries(bars.close > 0)
        """)
    )
    result = load_strategies(tmp_path, builtins=False, use_entry_points=False)
    assert "peeking" in result.strategies  # loaded anyway
    assert any("bias check peeking: lookahead" in w and "row " in w for w in result.warnings), result.warnings
    # raising on real candles: loaded (the analyzer isolates it at run time) and said at load
    assert "boom" in result.strategies and not result.errors
    assert any(
        w.startswith("bias check boom: not checked, it raised") and "ZeroDivisionError" in w for w in result.warnings
    )
    quiet = load_strategies(tmp_path, builtins=False, use_entry_points=False, check_bias=False)
    assert not quiet.warnings and set(quiet.strategies) == {"peeking", "boom"}


def test_check_strategy_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from roottrading.cli import app

    (tmp_path / "peeking.py").write_text(PEEKING_SRC)
    monkeypatch.setenv("STRATEGIES_DIR", str(tmp_path))
    res = CliRunner().invoke(app, ["check-strategy", "peeking"])
    assert res.exit_code == 1, res.output
    assert "LOOKAHEAD" in res.output and "lookahead: row " in res.output
    res = CliRunner().invoke(app, ["check-strategy", "macd_crossover", "--symbol", "BTCBUSD", "--interval", "1m"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1].startswith("OK: no lookahead")
    res = CliRunner().invoke(app, ["check-strategy", "nope"])
    assert res.exit_code == 2 and "unknown strategy" in res.output


async def test_a_backtest_of_a_peeking_user_strategy_carries_the_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roottrading.backtest.runner import run_backtest
    from tests.backtest.helpers import config

    (tmp_path / "peeking.py").write_text(PEEKING_SRC)
    monkeypatch.setenv("STRATEGIES_DIR", str(tmp_path))
    notices: list[str] = []
    short = config(strategies=("peeking",))
    short = replace(short, end_ms=short.start_ms + 48 * 3_600_000)  # two days are enough to be caught
    result, _ = await run_backtest(short, database_url=None, store=False, notice=notices.append)
    bias = [w for w in result.warnings if w.startswith("bias check peeking: lookahead")]
    assert bias and "row " in bias[0], result.warnings
    assert bias[0] in notices  # said on the terminal before the run, too
    clean, _ = await run_backtest(replace(short, strategies=("ema_cross",)), database_url=None, store=False)
    assert not [w for w in clean.warnings if w.startswith("bias check")]  # built-ins: held to it by the tests


def test_the_automatic_check_keeps_to_its_time_budget(daily: Bars) -> None:
    """A slow user strategy must not stall loading: sampling stops at the budget and the report says so."""
    import time

    class Slow(BaseStrategy):
        name = "slow_generate"

        @property
        def warmup(self) -> int:
            return 10

        def generate(self, bars: Bars) -> Entries:
            time.sleep(0.02)  # the strategy under test is slow by construction (not a wait in the test)
            return self.entries(buy=bars.close > bars.open)

    t0 = time.monotonic()
    report = check_strategy(Slow(), daily, cuts=40, rows=40, budget_s=0.3)
    assert time.monotonic() - t0 < 1.5
    assert report.cuts_checked < 40 and any("budget" in n for n in report.notes), report.notes
