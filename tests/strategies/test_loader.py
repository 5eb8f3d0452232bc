"""Loader: user folder, entry points, broken strategies reported and skipped; runtime registry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from strategy_shapes import frame, v_shape

from roottrading.strategies import ParamError
from roottrading.strategies import loader as loader_mod
from roottrading.strategies.loader import StrategyRegistry, load_folder, load_strategies

GOOD = '''
from roottrading.indicators import crossed_above, crossed_below, sma
from roottrading.strategies import BaseStrategy, Param


class MySma(BaseStrategy):
    """BUY when close crosses above its SMA, SELL when below."""

    name = "my_sma"
    period = Param(10, 2, 100)

    @property
    def warmup(self) -> int:
        return self.period

    def generate(self, bars):
        m = sma(bars.close, self.period)
        return self.entries(crossed_above(bars.close, m), crossed_below(bars.close, m))
'''

BROKEN = {
    "syntax.py": "def oops(:\n",
    "raises.py": "raise RuntimeError('boom at import')\n",
    "bad_default.py": textwrap.dedent("""
        from roottrading.strategies import BaseStrategy, Param
        class Bad(BaseStrategy):
            name = "bad"
            fast = Param(30, 2, 100)
            slow = Param(20, 2, 100)
            def check_params(self, v):
                from roottrading.strategies import ParamError
                if v["fast"] >= v["slow"]:
                    raise ParamError("fast must be < slow")
            def generate(self, bars):
                return self.entries(bars.close > 0)
    """),
    "no_name.py": textwrap.dedent("""
        from roottrading.strategies import BaseStrategy
        class Nameless(BaseStrategy):
            def generate(self, bars):
                return self.entries(bars.close > 0)
    """),
    "dup.py": textwrap.dedent("""
        from roottrading.strategies import BaseStrategy
        class Dup(BaseStrategy):
            name = "ema_cross"
            def generate(self, bars):
                return self.entries(bars.close > 0)
    """),
}


def test_user_strategy_loaded_and_broken_ones_reported(tmp_path: Path) -> None:
    (tmp_path / "my_sma.py").write_text(GOOD)
    for fname, src in BROKEN.items():
        (tmp_path / fname).write_text(src)
    (tmp_path / "_helper.py").write_text("raise RuntimeError('private files are not imported')")
    result = load_strategies(tmp_path, use_entry_points=False)
    assert "my_sma" in result.strategies and "ema_cross" in result.strategies
    assert len(result.strategies) == 28  # 27 built-ins + my_sma
    by_file = {Path(e.source).name: e.error for e in result.errors}
    assert set(by_file) == {"syntax.py", "raises.py", "bad_default.py", "dup.py"}  # no_name: not a strategy
    assert by_file["syntax.py"].startswith("SyntaxError")
    assert "boom at import" in by_file["raises.py"]
    assert "fast must be < slow" in by_file["bad_default.py"]
    assert "duplicate strategy name 'ema_cross'" in by_file["dup.py"]
    assert result.strategies["ema_cross"].__module__.startswith("roottrading.strategies.builtin")

    strat = result.strategies["my_sma"]()
    sf = strat.signals(frame(v_shape()))
    assert sf.buys[60:].any() and not sf.buys[:60].any()
    sig = strat.latest_signal(frame(v_shape())[: int(np.flatnonzero(sf.buys)[0]) + 1], "ETHUSDT", "5m")
    assert sig is not None and sig.strategy == "my_sma" and sig.side.value == "BUY"


def test_missing_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = load_folder(tmp_path / "nope")
    assert not result.strategies and "does not exist" in result.errors[0].error


class _EP:
    def __init__(self, name: str, value: str, obj: object) -> None:
        self.name, self.value, self._obj = name, value, obj

    def load(self) -> object:
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "my_sma.py").write_text(GOOD)
    mod = loader_mod.import_file(tmp_path / "my_sma.py")
    eps = [
        _EP("mine", "pkg:MySma", mod.MySma),
        _EP("broken", "pkg:missing", ImportError("no module pkg")),
        _EP("junk", "pkg:x", 42),
    ]
    monkeypatch.setattr(loader_mod, "entry_points", lambda group: eps if group == "roottrading.strategies" else [])
    result = load_strategies(builtins=False)
    assert list(result.strategies) == ["my_sma"]
    assert [e.source for e in result.errors] == ["broken = pkg:missing", "junk = pkg:x"]


def test_registry_enable_disable_and_params_per_symbol() -> None:
    reg = StrategyRegistry.from_load_result(load_strategies(use_entry_points=False))
    assert "rsi_cross" in [s.name for s in reg.active("BTCUSDT")]
    reg.disable("rsi_cross", "BTCUSDT")
    assert "rsi_cross" not in [s.name for s in reg.active("BTCUSDT")]
    assert "rsi_cross" in [s.name for s in reg.active("ETHUSDT")]
    reg.disable("rsi_cross")
    reg.enable("rsi_cross", "ETHUSDT")
    assert reg.is_enabled("rsi_cross", "ETHUSDT") and not reg.is_enabled("rsi_cross", "SOLUSDT")

    before = reg.get("ema_cross", "BTCUSDT")
    assert reg.set_params("ema_cross", {"fast": 5}, symbol="BTCUSDT")["fast"] == 5
    after = reg.get("ema_cross", "BTCUSDT")
    assert after is not before and after.fast == 5 and before.fast == 12  # replaced, not mutated
    assert reg.get("ema_cross", "ETHUSDT").fast == 12
    reg.set_params("ema_cross", {"slow": 40})  # global default; the symbol override still wins
    assert (reg.get("ema_cross", "BTCUSDT").fast, reg.get("ema_cross", "BTCUSDT").slow) == (5, 40)
    assert reg.get("ema_cross", "ETHUSDT").slow == 40


@pytest.mark.parametrize(
    "params,msg",
    [
        ({"fast": 500}, "above the maximum 100"),
        ({"fast": "ten"}, "expected an integer"),
        ({"fast": 12.5}, "expected an integer"),
        ({"fast": 30, "slow": 20}, "must be smaller than slow"),
        ({"nope": 1}, "unknown parameter"),
        ({"ride_or_react": 1}, "expected true/false"),
    ],
)
def test_registry_rejects_bad_values_and_keeps_old_ones(params: dict, msg: str) -> None:
    reg = StrategyRegistry.from_load_result(load_strategies(use_entry_points=False))
    reg.set_params("ema_cross", {"fast": 8}, symbol="X")
    with pytest.raises(ParamError, match=msg):
        reg.set_params("ema_cross", params, symbol="X")
    assert reg.get("ema_cross", "X").params["fast"] == 8
    with pytest.raises(KeyError, match="unknown strategy 'nope'"):
        reg.enable("nope")


def test_registry_describe_is_json_ready() -> None:
    import json

    reg = StrategyRegistry.from_load_result(load_strategies(use_entry_points=False), enabled=["ema_cross"])
    d = {x["name"]: x for x in reg.describe("BTCUSDT")}
    assert d["ema_cross"]["enabled"] and not d["rsi_cross"]["enabled"]
    assert d["ema_cross"]["params"]["fast"] == {
        "type": "int",
        "default": 12,
        "low": 2,
        "high": 100,
        "step": 1,
        "choices": None,
        "doc": "",
        "value": 12,
    }
    json.dumps(reg.describe())
    assert reg.max_warmup("BTCUSDT") == 27
