"""`order_type` (issue 19): a strategy's limit entries, end to end. The strategy (the shape of the docs'
trail_cross) places its entries as limit orders 0.3 % under the signal's close, cancelled after two hours
unfilled. In a demo-like
run of the platform the entries are LIMIT orders, some fill at their limit (never above it), some expire
(their cycle CANCELED, nothing bought); the `replay` backtest makes the same trades; `fast` refuses it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.backtest.fast import FastRun
from roottrading.backtest.model import EngineUnavailable
from roottrading.backtest.overrides import parse_overrides
from tests.backtest.docs_examples import demo_run, same_trades, settings_for
from tests.backtest.helpers import config, hourly

DIP_LIMIT = '''
from decimal import Decimal

import numpy as np

from roottrading.indicators import sma
from roottrading.strategies import BaseStrategy, Param
from roottrading.strategies.callbacks import LimitOrder


class DipLimit(BaseStrategy):
    """Close crossing above its 8-bar mean enters, with a limit order 0.3 % under the close that is
    cancelled after 2 hours unfilled; crossing below its 30-bar mean exits."""

    name = "dip_limit"
    tp_atr = Param(0.0, 0.0, 20.0, 0.5, doc="no take-profit")
    limit_entry_timeout_s = 2 * 3600

    @property
    def warmup(self):
        return 31

    def generate(self, bars):
        c = bars.close
        fast, slow = sma(c, 8), sma(c, 30)
        prev_c, prev_f, prev_s = np.r_[np.nan, c[:-1]], np.r_[np.nan, fast[:-1]], np.r_[np.nan, slow[:-1]]
        return self.outputs(enter_long=(c > fast) & (prev_c <= prev_f), exit_long=(c < slow) & (prev_c >= prev_s))

    def order_type(self, request):
        return LimitOrder(request.price * Decimal("0.997"))
'''


def folder(tmp_path: Path) -> Path:
    out = tmp_path / "strats"
    out.mkdir()
    (out / "dip_limit.py").write_text(DIP_LIMIT)
    return out


def test_the_fast_engine_refuses_a_strategy_choosing_its_order_type(tmp_path: Path) -> None:
    cfg = config(strategies=("dip_limit",), engine="fast", settings=settings_for(folder(tmp_path)))
    with pytest.raises(EngineUnavailable, match="order_type"):
        FastRun(cfg, {"BTCUSDT": hourly()}, parse_overrides(cfg.settings))


async def test_limit_entries_fill_or_expire_and_demo_equals_replay(tmp_path: Path) -> None:
    strats = folder(tmp_path)
    data = {"BTCUSDT": hourly()}
    url = await demo_run(tmp_path, strats, "dip_limit", data, hook="order_type")
    out = await same_trades(url, config(strategies=("dip_limit",), settings=settings_for(strats)), data)
    cycles = {c["id"]: c for c in out["cycles"]}
    entries = [o for o in out["orders"] if o["side"] == "BUY"]
    assert entries and all(o["type"] == "LIMIT" for o in entries)
    filled = [o for o in entries if Decimal(o["executed_quantity"]) > 0]
    expired = [o for o in entries if Decimal(o["executed_quantity"]) == 0 and o["status"] == "CANCELED"]
    assert filled and expired, entries
    for o in filled:  # a limit buy never pays more than its limit
        assert Decimal(cycles[o["cycle_id"]]["entry_price"]) <= Decimal(o["price"])
    assert all(cycles[o["cycle_id"]]["status"] == "CANCELED" for o in expired)
    assert len(out["matched"]) == len({o["cycle_id"] for o in filled})
