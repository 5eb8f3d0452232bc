"""Declared bounds for the numbers the HTTP API accepts.

WHY: an unbounded integer reaches the database, where a 64-bit SQL integer overflows (SQLite raises
OverflowError, PostgreSQL a data error) and the client got a 500. Declared in the route's signature, a bound is
checked by FastAPI before the route runs (a 422 in the one error shape, runtime/errors.py) and it is published
in the OpenAPI document, so clients and the fuzzer know it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query

MAX_OFFSET = 1_000_000_000  # rows to skip; far beyond any table this platform keeps, far below 2**63
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last instant a datetime can show


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
