"""Money leaves the process in plain notation: `20000` and `0.00000001`, never `2E+4` or `1E-8` (issue 17, item 15)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from roottrading import messages as m
from roottrading.domain import Fill, Side
from roottrading.domain.money import plain, plain_text
from roottrading.store.types import Money


def _fill(price: Decimal, qty: Decimal) -> Fill:
    return Fill(
        trade_id="t1",
        order_id="o1",
        client_order_id="c1",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=price,
        quantity=qty,
        quote_quantity=Decimal("2E+4") * qty,
        commission=Decimal("1E-8"),
        commission_asset="BNB",
        time=1,
    )


def test_to_builtins_writes_plain_notation() -> None:
    row = m.to_builtins(_fill(Decimal("2E+4"), Decimal("0.00000001")))
    assert row["price"] == "20000"
    assert row["quantity"] == "0.00000001"
    assert row["commission"] == "0.00000001"
    assert row["quote_quantity"] == "0.0002"


def test_store_reads_back_plain_decimals() -> None:
    """SQLite text `20000` came back as Decimal('2E+4') (normalize()), which REST then printed as `2E+4`."""
    col = Money()

    class _Sqlite:
        name = "sqlite"

    back = col.process_result_value("20000.000", _Sqlite())  # type: ignore[arg-type]
    assert back == Decimal(20000)
    assert str(back) == "20000"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**20), max_value=10**20))
def test_plain_is_the_same_number_and_never_scientific(d: Decimal) -> None:
    assert plain(d) == d
    text = plain_text(d)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == d
