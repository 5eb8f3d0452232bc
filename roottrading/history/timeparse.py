"""Dates given by people (ISO dates/times, epoch ms or s) to UTC epoch ms, with clear errors."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str | int, *, name: str = "time") -> int:
    """'2024-01-01', '2024-01-01T12:30', '2024-01-01 12:30:00+02:00', '1704067200000' (ms) or
    '1704067200' (s) -> epoch ms. Naive ISO values are UTC."""
    if isinstance(value, int):
        return value * 1000 if 0 < value < 10**11 else value
    text = value.strip()
    if not text:
        raise ValueError(f"{name}: empty value; expected an ISO date like 2024-01-01 or epoch milliseconds")
    if text.lstrip("-").isdigit():
        n = int(text)
        return n * 1000 if 0 < n < 10**11 else n
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name}: {value!r} is neither an ISO date (2024-01-01, 2024-01-01T12:00) nor epoch milliseconds"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
