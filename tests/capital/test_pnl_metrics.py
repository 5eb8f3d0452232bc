"""PnL with fees against hand-computed cycles, and metrics on small hand-computed series."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roottrading.capital import metrics as mt
from roottrading.capital.performance import performance
from roottrading.capital.pnl import DAY_MS, CyclePnl, cycle_pnl, daily_equity, equity_curve, group
from roottrading.domain import CycleStatus, Side, TradeCycle

D = Decimal


def cycle(status: CycleStatus = CycleStatus.COMPLETED, **kw: object) -> TradeCycle:
    base = {
        "id": "c1",
        "symbol": "BTCUSDT",
        "strategy": "ema",
        "side": Side.BUY,
        "status": status,
        "created_at": 0,
        "updated_at": 1000,
    }
    return TradeCycle(**{**base, **kw})  # type: ignore[arg-type]


def fill(side: str, price: str, qty: str, fee: str, asset: str, t: int = 0) -> dict[str, object]:
    return {
        "trade_id": f"{side}{t}",
        "side": side,
        "price": D(price),
        "quantity": D(qty),
        "quote_quantity": D(price) * D(qty),
        "commission": D(fee),
        "commission_asset": asset,
        "time": t,
    }


def test_long_cycle_fees_in_quote() -> None:
    p = cycle_pnl(cycle(), [fill("BUY", "100", "1", "0.1", "USDT"), fill("SELL", "110", "1", "0.11", "USDT", 1)])
    assert (p.realised, p.unrealised, p.fees, p.invested) == (D("9.79"), 0, D("0.21"), D(100))


def test_long_cycle_buy_fee_in_base_then_sell_what_is_held() -> None:
    # 1 BTC bought, 0.001 BTC fee -> 0.999 held; 0.999 sold at 110 with a 0.1% quote fee (0.10989)
    p = cycle_pnl(
        cycle(), [fill("BUY", "100", "1", "0.001", "BTC"), fill("SELL", "110", "0.999", "0.10989", "USDT", 1)]
    )
    assert p.realised == D("109.89") - D(100) - D("0.10989") == D("9.78011")
    assert p.fees == D("0.1") + D("0.10989") and p.net_qty == 0


def test_long_cycle_base_fee_covered_by_other_holdings_is_charged_at_exit_price() -> None:
    p = cycle_pnl(cycle(), [fill("BUY", "100", "1", "0.001", "BTC"), fill("SELL", "110", "1", "0.11", "USDT", 1)])
    assert p.realised == D("110") - D("100") - D("0.11") - D("0.001") * D("110") == D("9.78")


def test_third_asset_fee_valued_at_its_price_and_open_cycle_is_unrealised() -> None:
    p = cycle_pnl(
        cycle(CycleStatus.ACTIVE), [fill("BUY", "100", "2", "0.0004", "BNB")], mark=D("105"), prices={"BNB": D("500")}
    )
    assert p.closed_at is None and p.realised == 0
    assert p.unrealised == D(2) * D(5) - D("0.2") == D("9.8") and p.fees == D("0.2")
    q = cycle_pnl(cycle(CycleStatus.ACTIVE), [fill("BUY", "100", "1", "0.001", "BTC")], mark=D("105"))
    assert q.unrealised == D("0.999") * D("105") - D(100) == D("4.895")


def test_third_asset_fee_uses_its_fill_time_value_and_an_unpriced_one_is_reported() -> None:
    buy = {**fill("BUY", "100", "1", "0.001", "BNB"), "commission_quote": D("0.3")}  # BNB at 300 then
    sell = {**fill("SELL", "110", "1", "0.001", "BNB", 1), "commission_quote": D("0.4")}
    p = cycle_pnl(cycle(), [buy, sell], prices={"BNB": D("999")})  # today's BNB price does not matter
    assert (p.realised, p.fees, p.unpriced_fees) == (D("9.3"), D("0.7"), None)
    q = cycle_pnl(cycle(), [fill("BUY", "100", "1", "0.001", "BNB"), fill("SELL", "110", "1", "0.002", "BNB", 1)])
    assert (q.realised, q.fees, q.unpriced_fees) == (D(10), 0, "0.003 BNB")


def test_cycle_without_fills_falls_back_to_trader_numbers() -> None:
    p = cycle_pnl(cycle(profit_loss=D("-3.5"), fees=D("0.2"), entry_price=D(100), quantity=D(1)), [])
    assert (p.realised, p.fees, p.source) == (D("-3.5"), D("0.2"), "cycle")


def pnl(realised: str, closed_at: int | None, strategy: str = "ema", cid: str = "x") -> CyclePnl:
    return CyclePnl(
        cid,
        "BTCUSDT",
        strategy,
        "COMPLETED" if closed_at is not None else "ACTIVE",
        0,
        closed_at,
        D(realised) if closed_at is not None else D(0),
        D(0) if closed_at is not None else D(realised),
        D("0.1"),
        D(100),
        D(0),
        "fills",
    )


def test_grouping_equity_curve_and_daily_series() -> None:
    ps = [
        pnl("10", DAY_MS + 5, cid="a"),
        pnl("-4", DAY_MS + 9, "rsi", "b"),
        pnl("6", 3 * DAY_MS + 1, cid="c"),
        pnl("2", None, cid="d"),
    ]
    g = group(ps, "strategy")
    assert g["ema"]["realised"] == D(16) and g["ema"]["unrealised"] == D(2) and g["ema"]["open"] == 1
    assert g["rsi"]["losses"] == 1
    assert set(group(ps, "day")) == {"1970-01-02", "1970-01-04"}
    curve = equity_curve(ps, D(1000), now=4 * DAY_MS, unrealised=D(2))
    assert [c["equity"] for c in curve] == ["1000", "1010", "1006", "1012", "1014"]
    # days 1..4 (UTC): start 1000, end of day1 1006, day2 1006, day3 1012, day4 1012
    assert daily_equity(ps, D(1000), since=None, now=4 * DAY_MS) == [1000, 1006, 1006, 1012, 1012]
    windowed = equity_curve(ps, D(1000), since=2 * DAY_MS, now=4 * DAY_MS)
    assert windowed[0] == {"time": 2 * DAY_MS, "equity": "1006"}


def test_performance_report_counts_only_the_window() -> None:
    ps = [pnl("10", DAY_MS, cid="a"), pnl("-4", 5 * DAY_MS, cid="b"), pnl("6", 6 * DAY_MS, cid="c")]
    rep = performance(ps, start=D(1000), since=4 * DAY_MS, now=7 * DAY_MS, period="week")
    assert rep["cycles"] == 2 and rep["realised_pnl"] == "2" and rep["win_rate"] == 0.5
    assert rep["profit_factor"] == 1.5 and rep["expectancy"] == 1.0
    assert rep["equity_curve"][0]["equity"] == "1010"


# ---- metrics on hand-computed series ------------------------------------------------------------------
def test_trade_metrics() -> None:
    pnls = [10.0, -5.0, 20.0, -5.0, 0.0]
    assert mt.win_rate(pnls) == 0.4
    assert mt.profit_factor(pnls) == 3.0
    assert mt.expectancy(pnls) == 4.0
    assert mt.profit_factor([1.0]) == math.inf and mt.profit_factor([]) is None and mt.win_rate([]) is None


def test_return_metrics() -> None:
    equity = [100.0, 110.0, 99.0, 108.9]  # returns +10 %, -10 %, +10 %
    r = mt.returns_from_equity(equity)
    assert r == pytest.approx([0.1, -0.1, 0.1])
    # mean 1/30, sample std sqrt(((2/30)^2*2 + (4/30)^2)/2) = sqrt(0.0133..) = 0.11547
    assert mt.sharpe(r) == pytest.approx((1 / 30) / 0.115470053837925 * math.sqrt(365))
    # downside deviation sqrt(0.01 / 3)
    assert mt.sortino(r) == pytest.approx((1 / 30) / math.sqrt(0.01 / 3) * math.sqrt(365))
    assert mt.max_drawdown(equity) == pytest.approx(0.1)
    assert mt.total_return(equity) == pytest.approx(0.089)
    assert mt.cagr([100.0, 121.0], 730) == pytest.approx(0.1)
    assert mt.calmar([100.0, 80.0, 121.0], 730) == pytest.approx(0.1 / 0.2)
    assert mt.sharpe([0.01, 0.01]) is None and mt.sortino([0.01, 0.02]) is None


@given(st.lists(st.floats(min_value=1, max_value=1e6), min_size=1, max_size=50))
def test_drawdown_bounds(equity: list[float]) -> None:
    dd = mt.max_drawdown(equity)
    assert 0 <= dd < 1
    assert (dd == 0) == all(equity[i] >= max(equity[: i + 1]) for i in range(len(equity)))
