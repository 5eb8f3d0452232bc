from __future__ import annotations

import dataclasses
import gzip
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.domain import Order, OrderType, Side
from roottrading.exchange.errors import FilterFailure, InvalidMessage, InvalidSymbol
from roottrading.exchange.filters import SymbolRules, load_exchange_info, parse_exchange_info, rules_to_binance

from .conftest import simple_rules

D = Decimal


def test_parse_basana_btcusdt(btc_rules: SymbolRules) -> None:
    r = btc_rules
    assert (r.base_asset, r.quote_asset, r.base_precision, r.quote_precision) == ("BTC", "USDT", 8, 8)
    assert (r.tick_size, r.min_price, r.max_price) == (D("0.01"), D("0.01"), D("1000000"))
    assert (r.step_size, r.min_qty, r.max_qty) == (D("0.00001"), D("0.00001"), D("9000"))
    assert r.market_max_qty == D("328.37710865") and r.market_step_size == 0
    assert (r.notional_filter, r.min_notional, r.min_notional_apply_to_market) == ("MIN_NOTIONAL", D("10"), True)
    assert (
        r.percent_filter == "PERCENT_PRICE_BY_SIDE" and r.bid_multiplier_up == 5 and r.ask_multiplier_down == D("0.2")
    )
    assert r.max_num_orders == 200 and r.max_num_algo_orders == 5 and "LIMIT_MAKER" in r.order_types


def test_parse_cryptofeed_full_exchange_info(fixtures_dir: Path, tmp_path: Path) -> None:
    capture = tmp_path / "BINANCE.0"  # stored gzip-compressed in the repository; the reader takes the capture
    capture.write_bytes(gzip.decompress((fixtures_dir / "binance_fixtures/cryptofeed/BINANCE.0.gz").read_bytes()))
    rules = load_exchange_info(capture)
    assert len(rules) > 1500
    eth = rules["ETHBTC"]
    assert eth.quote_asset == "BTC" and eth.percent_filter == "PERCENT_PRICE" and eth.bid_multiplier_up == 5
    assert all(r.tick_size >= 0 and r.step_size >= 0 for r in rules.values())


def test_notional_filter_and_render_roundtrip() -> None:
    doc = {
        "symbols": [
            {
                "symbol": "ETHUSDC",
                "baseAsset": "ETH",
                "quoteAsset": "USDC",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "100000", "tickSize": "0.01"},
                    {"filterType": "LOT_SIZE", "minQty": "0.0001", "maxQty": "9000", "stepSize": "0.0001"},
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": "5",
                        "applyMinToMarket": True,
                        "maxNotional": "9000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
            }
        ]
    }
    r = parse_exchange_info(doc)["ETHUSDC"]
    assert (r.notional_filter, r.min_notional, r.max_notional) == ("NOTIONAL", D(5), D(9000))
    with pytest.raises(FilterFailure, match="NOTIONAL"):
        r.check(Side.BUY, OrderType.LIMIT, D("0.001"), D("3000"))
    with pytest.raises(FilterFailure, match="NOTIONAL"):
        r.check(Side.BUY, OrderType.LIMIT, D("4"), D("3000"))
    r.check(Side.BUY, OrderType.MARKET, D("4"), last_price=D("3000"))  # max not applied to market
    assert SymbolRules.from_binance(rules_to_binance(r)) == r


def test_check_messages(btc_rules: SymbolRules) -> None:
    r = btc_rules
    r.check(Side.BUY, OrderType.LIMIT, D("0.001"), D("17000.01"), last_price=D("17000"))
    cases = [
        ((Side.BUY, OrderType.LIMIT, D("0.001"), D("17000.001")), "PRICE_FILTER"),
        ((Side.BUY, OrderType.LIMIT, D("0.0010001"), D("17000")), "LOT_SIZE"),
        ((Side.BUY, OrderType.LIMIT, D("0.0001"), D("17000")), "MIN_NOTIONAL"),
        ((Side.BUY, OrderType.MARKET, D("400")), "MARKET_LOT_SIZE"),
        ((Side.BUY, OrderType.LIMIT, D("0.001"), D("90000")), "PERCENT_PRICE_BY_SIDE"),
        ((Side.SELL, OrderType.LIMIT, D("0.01"), D("3000")), "PERCENT_PRICE_BY_SIDE"),
    ]
    for args, name in cases:
        with pytest.raises(FilterFailure) as exc:
            r.check(*args, last_price=D("17000"))
        assert exc.value.msg == f"Filter failure: {name}" and exc.value.code == -1013
    with pytest.raises(InvalidMessage, match="Invalid quantity"):
        r.check(Side.BUY, OrderType.LIMIT, D(0), D("17000"))
    order = Order(client_order_id="x", symbol="ETHBTC", side=Side.BUY, type=OrderType.LIMIT, quantity=D(1), price=D(1))
    with pytest.raises(InvalidSymbol):
        r.validate(order)


RULES = simple_rules()
prices = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=6, allow_nan=False, allow_infinity=False)
qtys = st.decimals(min_value=D("0.00001"), max_value=D("20000"), places=9, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(price=prices)
def test_rounded_price_passes_and_never_exceeds(price: Decimal) -> None:
    p = RULES.round_price(price)
    assert p <= price
    RULES.check_price(p)
    assert price - p < RULES.tick_size


@settings(max_examples=300, deadline=None)
@given(qty=qtys)
def test_rounded_quantity_passes_and_never_exceeds(qty: Decimal) -> None:
    q = RULES.round_quantity(qty)
    assert q <= qty
    RULES.check_quantity(q)
    assert qty - q < RULES.step_size or q == RULES.max_qty


MARKET_RULES = dataclasses.replace(RULES, market_min_qty=D(0), market_max_qty=D("328.37710865"), market_step_size=D(0))


@settings(max_examples=200, deadline=None)
@given(qty=st.decimals(min_value=D("0.0001"), max_value=D("2000"), places=8))
def test_rounded_market_quantity_passes_market_lot_size(qty: Decimal) -> None:
    """BTCUSDT's real MARKET_LOT_SIZE (step 0, max 328.37710865): rounding clamps onto both grids."""
    q = MARKET_RULES.round_quantity(qty, market=True)
    assert q <= qty
    MARKET_RULES.check_quantity(q, market=True)
