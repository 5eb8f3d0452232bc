"""Each rule's reject / shrink / pause behaviour on the pure engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from roottrading.domain import Side
from roottrading.risk import OrderIntent, RiskEngine, RiskState, load_rules, parse_rules
from roottrading.risk.state import Position

D = Decimal
NOON = int(dt.datetime(2024, 5, 6, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday


def engine(yaml_rules: str = "") -> RiskEngine:
    return RiskEngine(parse_rules("version: 1\nrules:\n" + yaml_rules if yaml_rules else "version: 1"))


def state(**kw: object) -> RiskState:
    base: dict[str, object] = {
        "now_ms": NOON,
        "equity": D(10_000),
        "equity_peak": D(10_000),
        "day_start_equity": D(10_000),
        "realised_pnl_today": D(0),
    }
    base.update(kw)
    return RiskState(**base)  # type: ignore[arg-type]


def buy(qty: str = "0.01", price: str = "50000", symbol: str = "BTCUSDT", strategy: str = "s1") -> OrderIntent:
    return OrderIntent(id="r1", symbol=symbol, side=Side.BUY, quantity=D(qty), price=D(price), strategy=strategy)


def sell_exit(strategy: str = "s1") -> OrderIntent:
    return OrderIntent(
        id="x1", symbol="BTCUSDT", side=Side.SELL, quantity=D("0.5"), price=D(50000), strategy=strategy, is_exit=True
    )


def test_small_order_is_allowed_unchanged() -> None:
    d = engine().check(buy(), state())
    assert d.allowed and d.action == "allow" and d.quantity == D("0.01")


def test_position_size_shrinks_to_the_cap() -> None:
    d = engine().check(buy(qty="0.1"), state())  # 5000 quote > 20% of 10000
    assert d.allowed and d.action == "shrink"
    assert d.quantity * D(50000) <= D(2000) and d.quantity == D("0.04")
    assert "max_position_size" not in (d.rule or "") and "shrunk" in d.reasons[0]


def test_position_size_rejects_when_configured() -> None:
    d = engine("  max_position_size: {limit_pct: 20, action: reject}\n").check(buy(qty="0.1"), state())
    assert not d.allowed and d.rule == "max_position_size" and d.quantity == 0


def test_per_symbol_quote_cap() -> None:
    e = engine("  max_position_size: {limit_pct: 50, per_symbol_quote: {btcusdt: 1000}}\n")
    d = e.check(buy(qty="0.1"), state())
    assert d.quantity == D("0.02")


def test_exposure_per_asset_counts_open_positions() -> None:
    pos = (Position("c1", "BTCUSDT", "s0", D(2500)),)
    d = engine().check(buy(qty="0.03"), state(positions=pos))  # 2500 + 1500 > 30% of 10000
    assert d.action == "shrink" and d.quantity == D("0.01")
    full = (Position("c1", "BTCUSDT", "s0", D(3000)),)
    d = engine().check(buy(qty="0.01"), state(positions=full))
    assert not d.allowed and d.rule == "max_exposure_per_asset" and "no room left" in d.reasons[0]


def test_total_exposure() -> None:
    pos = tuple(Position(f"c{i}", f"A{i}USDT", "s0", D(1950)) for i in range(4))  # 7800 of 8000
    d = engine().check(buy(qty="0.01"), state(positions=pos))
    assert d.action == "shrink" and d.quantity == D("0.004")


def test_max_open_cycles_rejects() -> None:
    pos = tuple(Position(f"c{i}", f"A{i}USDT", "s0", D(10)) for i in range(5))
    d = engine().check(buy(), state(positions=pos))
    assert not d.allowed and d.rule == "max_open_cycles" and "5 open cycles" in d.reasons[0]


def test_an_addition_to_an_open_cycle_opens_no_cycle_and_its_whole_position_is_capped() -> None:
    """position_adjustment's intents carry their cycle: at max_open_cycles they still pass, and the position
    size limit (20 % of equity: 2,000) caps the cycle's position, not the addition alone."""
    others = (Position(f"c{i}", f"A{i}USDT", "s0", D(10)) for i in range(1, 5))
    pos = (Position("c0", "BTCUSDT", "s1", D(1500)), *others)
    add = msgspec.structs.replace(buy(qty="0.02"), cycle_id="c0")  # 1,000 more on a 1,500 position
    d = engine().check(add, state(positions=pos))
    assert d.allowed and d.action == "shrink" and d.quantity == D("0.01")  # 500 of room left
    assert "position size 2500.00 above max 2000.00" in d.reasons[0]
    assert engine().check(buy(), state(positions=pos)).rule == "max_open_cycles"  # a new cycle is still refused
    full = (Position("c0", "BTCUSDT", "s1", D(2000)),)
    d = engine().check(msgspec.structs.replace(buy(), cycle_id="c0"), state(positions=full))
    assert not d.allowed and d.rule == "max_position_size" and "no room left" in d.reasons[0]


def test_daily_loss_limit_pauses_entries_but_not_exits() -> None:
    s = state(realised_pnl_today=D(-300))  # 3% of 10000
    d = engine().check(buy(), s)
    assert not d.allowed and d.action == "pause" and d.rule == "daily_loss_limit"
    assert "daily loss limit reached" in d.reasons[0]
    ex = engine().check(sell_exit(), s)
    assert ex.allowed and ex.quantity == D("0.5")
    assert engine().check(buy(), state(realised_pnl_today=D(-299))).allowed


def test_drawdown_from_peak() -> None:
    s = state(equity=D(8900), equity_peak=D(10_000))
    d = engine().check(buy(), s)
    assert not d.allowed and d.rule == "max_drawdown" and d.action == "pause"
    d = engine("  max_drawdown: {limit_pct: 10, action: kill_switch}\n").check(buy(), s)
    assert d.action == "kill_switch"
    assert engine().check(sell_exit(), s).allowed


def test_volatility_rejects_or_shrinks() -> None:
    s = state(atr_pct={"BTCUSDT": D("7.5")})
    d = engine().check(buy(), s)
    assert not d.allowed and d.rule == "volatility" and "ATR 7.50%" in d.reasons[0]
    d = engine("  volatility: {max_atr_pct: 5, action: shrink, shrink_factor: 0.5}\n").check(buy(), s)
    assert d.allowed and d.quantity == D("0.005")
    assert engine().check(buy(symbol="ETHUSDT"), s).allowed


def test_orders_per_minute() -> None:
    times = tuple(NOON - i * 1000 for i in range(10))
    d = engine().check(buy(), state(recent_order_times=times))
    assert not d.allowed and d.rule == "max_orders_per_minute"
    old = tuple(NOON - 61_000 - i for i in range(10))
    assert engine().check(buy(), state(recent_order_times=old)).allowed


def test_blacklist_and_hours() -> None:
    e = engine("  symbol_blacklist: {symbols: [BTCUSDT]}\n")
    d = e.check(buy(), state())
    assert not d.allowed and d.rule == "symbol_blacklist"
    assert e.check(buy(symbol="ETHUSDT"), state()).allowed
    e = engine("  trading_hours: {enabled: true, start: '13:00', end: '22:00'}\n")
    assert e.check(buy(), state()).rule == "trading_hours"
    assert e.check(buy(), state(now_ms=NOON + 3_600_000)).allowed
    wrap = engine("  trading_hours: {enabled: true, start: '22:00', end: '13:00'}\n")
    assert wrap.check(buy(), state()).allowed and not wrap.check(buy(), state(now_ms=NOON + 3_600_000)).allowed
    weekend = engine("  trading_hours: {enabled: true, weekdays: [5, 6]}\n")
    assert weekend.check(buy(), state()).rule == "trading_hours"


def test_loss_streak_disables_only_that_strategy() -> None:
    s = state(loss_streaks={"s1": 5, "s2": 1})
    d = engine().check(buy(strategy="s1"), s)
    assert not d.allowed and d.action == "disable_strategy"
    assert engine().check(buy(strategy="s2"), s).allowed
    d = engine().check(buy(strategy="s1"), state(disabled_strategies=frozenset({"s1"})))
    assert d.action == "disable_strategy"


def test_kill_switch_and_pause_block_entries_only() -> None:
    for s in (state(killed=True), state(paused=True, pause_reason="user")):
        assert not engine().check(buy(), s).allowed
        assert engine().check(sell_exit(), s).allowed


def test_status_shows_live_values() -> None:
    rows = {r.name: r for r in engine().status(state(realised_pnl_today=D(-250)))}
    assert rows["daily_loss_limit"].value == "2.50%" and rows["daily_loss_limit"].state == "warning"
    assert rows["max_open_cycles"].state == "ok" and rows["trading_hours"].value == "open"
    assert {r.name: r for r in RiskEngine(load_rules()).status(state())}["trading_hours"].state == "disabled"


@given(
    qty=st.decimals(min_value=D("0.0001"), max_value=D(10), places=4),
    price=st.decimals(min_value=D(1), max_value=D(100_000), places=2),
    exposure=st.decimals(min_value=D(0), max_value=D(9000), places=2),
)
def test_allowed_orders_never_break_the_size_limits(qty: Decimal, price: Decimal, exposure: Decimal) -> None:
    s = state(positions=(Position("c", "BTCUSDT", "s0", exposure),))
    d = engine().check(buy(qty=str(qty), price=str(price)), s)
    if d.allowed:
        notional = d.quantity * price
        assert d.quantity <= qty
        assert notional <= D(2000)  # 20% position size
        assert exposure + notional <= D(3000)  # 30% per asset
        assert exposure + notional <= D(8000)
