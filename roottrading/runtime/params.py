"""Declared bounds for the numbers the HTTP API accepts.

WHY: an unbounded integer reaches the database, where a 64-bit SQL integer overflows (SQLite raises
OverflowError, PostgreSQL a data error) and the client got a 500. Declared in the route's signature, a bound is
checked by FastAPI before the route runs (a 422 in the one error shape, runtime/errors.py) and it is published
in the OpenAPI document, so clients and the fuzzer know it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from fastapi import Query
from pydantic import Field

MAX_OFFSET = 1_000_000_000  # rows to skip; far beyond any table this platform keeps, far below 2**63
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last instant a datetime can show
# Quantities, prices and quote amounts. The order path's Decimal arithmetic runs at 28 significant digits:
# a notional of 1e30 cannot be quantized to cents (InvalidOperation) and dividing by 1e-999999 overflows.
# Within these bounds every product, quotient and rounding of two amounts fits; real markets stay far inside.
MIN_AMOUNT = Decimal("1e-18")
MAX_AMOUNT = Decimal("1e12")
# Text that a body field carries to the store: without NUL, which PostgreSQL cannot hold in text (a 500).
# (Paths and queries are checked once for all routes in runtime/http.py.)
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]


def offset() -> Any:
    """`offset: int = offset()`: rows to skip for pagination."""
    return Query(0, ge=0, le=MAX_OFFSET, description="rows to skip")


def epoch_ms(description: str) -> Any:
    """`since: int | None = epoch_ms("...")`: an optional UTC epoch-milliseconds time."""
    return Query(None, ge=0, le=MAX_EPOCH_MS, description=description)


def check_epoch_ms(value: int, name: str) -> int:
    """For times parsed by the route itself (ISO text or epoch ms): the same range, or ValueError."""
    if not 0 <= value <= MAX_EPOCH_MS:
        raise ValueError(f"{name}: {value} is outside 0..{MAX_EPOCH_MS} (epoch milliseconds, UTC)")
    return value


def check_amount(value: Decimal, name: str) -> Decimal:
    """An amount decoded by the route itself: finite and within MIN_AMOUNT..MAX_AMOUNT, or ValueError."""
    if not value.is_finite() or not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise ValueError(f"{name} must be a number from {MIN_AMOUNT} to {MAX_AMOUNT:f}, got {value}")
    return value


def json_body(type_: Any) -> dict[str, Any]:
    """`openapi_extra=` declaring the JSON body of a route that decodes it itself with msgspec (a `Request`
    parameter declares nothing, so clients and the fuzzer would not know what to send). The type's schema is
    inlined: OpenAPI resolves "#/..." references against the whole document, not against this schema."""
    schema = msgspec.json.schema(type_)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}
