"""Decimal helpers for the order path. Floats never reach an order; these functions are the bridge."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal(0)


def to_decimal(value: object) -> Decimal:
    """Exact conversion: floats go through repr so 0.1 becomes Decimal('0.1'), not its binary expansion."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None


def plain(value: Decimal) -> Decimal:
    """The same number with no positive exponent, so `str()` never prints `2E+4`.

    `Decimal.normalize()` turns 20000 into `2E+4`; a person (and a JSON client) reading a price or a
    quantity expects `20000`. Small numbers are handled by `plain_text`, since `str(Decimal("0.00000001"))`
    is `1E-8` whatever the exponent.
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(Decimal(1))
    return value


def plain_text(value: Decimal) -> str:
    """Decimal as text in plain notation (`20000`, `0.00000001`), never scientific: for REST and the store."""
    return format(value, "f")


def round_step(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """Round to a multiple of `step` (Binance stepSize/tickSize). Down by default: never exceed funds."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step


def round_half_up(value: Decimal, step: Decimal) -> Decimal:
    return round_step(value, step, ROUND_HALF_UP)
