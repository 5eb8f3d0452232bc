"""Informative pairs (issue 19): other symbols / timeframes, visible only once closed, identical live and
offline, and covered by the lookahead check."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roottrading.strategies.bars import Bars
from roottrading.strategies.base import BaseStrategy, Entries
from roottrading.strategies.informative import attach, build, normalise, source_window
from roottrading.strategies.loader import check_strategy_class

MIN = 60_000
T10 = int(dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)


def minute_bars(start: int, n: int, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 0.5, n))
    t = start + MIN * np.arange(n, dtype=np.int64)
    return Bars(t, close - 0.1, close + 0.5 + rng.random(n), close - 0.5 - rng.random(n), close, 1 + rng.random(n))


def test_the_hour_is_visible_at_the_minute_closing_it_not_before() -> None:
    eth = minute_bars(T10 - 60 * MIN, 180, seed=1)  # 09:00 .. 11:59
    rows = eth.open_time  # evaluate "BTC" rows at the same minutes
    at = {int(t): i for i, t in enumerate(rows)}
    bar_10_59 = at[T10 + 59 * MIN]  # closes at 11:00
    bar_10_58 = at[T10 + 58 * MIN]  # closes at 10:59
    inf = build(eth, "ETHUSDT", "1h", MIN, rows[: bar_10_59 + 1], keep=100)
    assert inf.bars.open_time.tolist() == [T10 - 60 * MIN, T10]  # 09:00 and 10:00 closed at 11:00
    hour = slice(60, 120)  # ETH rows 10:00..10:59
    assert inf.bars.high[-1] == eth.high[hour].max() and inf.bars.low[-1] == eth.low[hour].min()
    assert inf.bars.open[-1] == eth.open[60] and inf.bars.close[-1] == eth.close[119]
    assert inf.bars.volume[-1] == pytest.approx(eth.volume[hour].sum())
    assert inf.index[bar_10_59] == 1 and inf.index[bar_10_58] == 0  # the row closing 10:59 sees 09:00 only
    assert inf.close[bar_10_58] == eth.close[59] and inf.close[bar_10_59] == eth.close[119]
    assert (inf.index[:59] == -1).all()  # before 10:00 no hour has closed (09:00 is the first)
    before = build(eth, "ETHUSDT", "1h", MIN, rows[: bar_10_58 + 1], keep=100)
    assert before.bars.open_time.tolist() == [T10 - 60 * MIN]  # the 10:00 hour is not visible at 10:59


def test_informative_ahead_of_the_row_is_cut_and_a_missing_last_minute_hides_the_hour() -> None:
    eth = minute_bars(T10, 180, seed=2)
    rows = eth.open_time[:60]  # the row closing 11:00; ETH data runs to 13:00
    full = build(eth, "ETHUSDT", "1h", MIN, rows, keep=100)
    assert full.bars.open_time.tolist() == [T10]
    late = Bars(*(a[:59] for a in (eth.open_time, eth.open, eth.high, eth.low, eth.close, eth.volume)))
    assert len(build(late, "ETHUSDT", "1h", MIN, rows, keep=100)) == 0  # 10:59 not received: not closed yet


def test_truncated_first_hour_is_dropped_and_keep_limits() -> None:
    eth = minute_bars(T10 + 30 * MIN, 300, seed=3)  # starts mid-hour
    inf = build(eth, "ETHUSDT", "1h", MIN, eth.open_time, keep=2)
    assert inf.bars.open_time.tolist() == [T10 + 3 * 60 * MIN, T10 + 4 * 60 * MIN]
    assert source_window(2, "1h", MIN) == 240


def test_declaration_is_validated_at_load() -> None:
    assert normalise([("ethusdt", "1h"), ("ETHUSDT", "1h")]) == (("ETHUSDT", "1h"),)
    with pytest.raises(ValueError, match="unknown interval"):
        normalise([("ETHUSDT", "7x")])
    with pytest.raises(ValueError, match="pairs"):
        normalise(["ETHUSDT"])
    with pytest.raises(ValueError, match="at most 3d"):
        normalise([("ETHUSDT", "1w")])

    class Bad(BaseStrategy):
        name = "bad_inf"
        informative = (("ETH/USDT", "1h"),)

        def generate(self, bars: Bars) -> Entries:
            return self.entries(buy=np.zeros(len(bars), bool))

    with pytest.raises(ValueError, match="letters and digits"):
        check_strategy_class(Bad)


class RatioRevert(BaseStrategy):
    """Buys when BTC/ETH (1h closes) is 1% below its mean of the last 5 closed hours."""

    name = "ratio_revert_test"
    informative = (("ETHUSDT", "1h"),)
    informative_window = 10

    @property
    def warmup(self) -> int:
        return 5

    def generate(self, bars: Bars) -> Entries:
        eth = bars.inform("ETHUSDT", "1h")
        ratio = bars.close / eth.close
        mean = pd.Series(ratio).rolling(120, min_periods=30).mean().to_numpy()
        with np.errstate(invalid="ignore"):
            return self.outputs(enter_long=ratio < mean * 0.995, exit_long=ratio > mean * 1.005, enter_tag="cheap")


class Peeking(RatioRevert):
    """Reads the informative series' last candle at every row: lookahead the check must catch."""

    name = "peeking_test"

    def generate(self, bars: Bars) -> Entries:
        eth = bars.inform("ETHUSDT", "1h")
        last = eth.bars.close[-1] if len(eth) else np.nan
        return self.outputs(enter_long=np.asarray(eth.close < last), exit_long=np.asarray(eth.close > last))


def _frame(b: Bars) -> pd.DataFrame:
    return pd.DataFrame({k: getattr(b, k) for k in ("open_time", "open", "high", "low", "close", "volume")})


def test_offline_signals_equal_live_evaluation_row_by_row() -> None:
    btc, eth = minute_bars(T10, 900, seed=4), minute_bars(T10, 900, seed=5)
    st = RatioRevert()
    sf = st.signals(_frame(btc), informative={"ETHUSDT": _frame(eth)})
    fired = np.flatnonzero(sf.side)
    assert len(fired) >= 3
    # "live": each row on its evaluation window, ETH cut to a live-sized window that runs one minute ahead
    need = source_window(st.informative_window, "1h", MIN) + 5
    size = 100
    for i in [*fired.tolist(), 100, 400, 899]:
        win = btc.window(i + 1, size)
        live_eth = eth.window(min(len(eth), i + 2), need)
        row = st._evaluate_last(attach(st, win, {"ETHUSDT": live_eth}, MIN))
        want = sf.row(int(i))
        assert (row is None) == (want is None), i
        if row is not None and want is not None:
            assert (row["side"], row["tag"]) == (want["side"], want["tag"])


def test_without_the_pair_supplied_nothing_is_visible() -> None:
    btc = minute_bars(T10, 200, seed=6)
    sf = RatioRevert().signals(_frame(btc))
    assert not sf.side.any()


def test_the_lookahead_check_covers_informative_pairs() -> None:
    from roottrading.backtest.bias import check_strategy

    btc, eth = minute_bars(T10, 1500, seed=7), minute_bars(T10, 1500, seed=8)
    ok = check_strategy(RatioRevert(), btc, informative={"ETHUSDT": eth}, cuts=20, rows=10)
    assert not ok.lookahead and ok.cuts_checked > 0
    bad = check_strategy(Peeking(), btc, informative={"ETHUSDT": eth}, cuts=20, rows=10)
    assert bad.lookahead, bad.verdict()


def test_check_strategy_cli_loads_the_informative_symbols_from_the_same_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`roottrading check-strategy` on bundled data: the strategy's own symbol as a 3-day informative pair
    comes from the same candles (checked, no note); a symbol the source does not have is noted."""
    from roottrading.backtest.bias import check_strategy_cli

    (tmp_path / "three_day.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from roottrading.strategies.base import BaseStrategy

            class ThreeDayTrend(BaseStrategy):
                name = "three_day_trend"
                informative = [("BTCUSDT", "3d"), ("DOGEUSDT", "3d")]
                informative_window = 20

                @property
                def warmup(self):
                    return 10

                def generate(self, bars):
                    wk = bars.inform("BTCUSDT", "3d").close
                    with np.errstate(invalid="ignore"):
                        return self.outputs(enter_long=bars.close > wk * 1.05, exit_long=bars.close < wk * 0.95)
            """
        )
    )
    monkeypatch.setenv("STRATEGIES_DIR", str(tmp_path))
    report = check_strategy_cli("three_day_trend", symbol="BTCUSDT", interval="1d", cuts=15, rows=5)
    assert report.cuts_checked > 0 and not report.lookahead, report.verdict()
    assert any("DOGEUSDT" in n for n in report.notes) and not any("BTCUSDT" in n for n in report.notes)
