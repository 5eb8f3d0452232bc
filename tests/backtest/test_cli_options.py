"""The CLI's small parsers: the period (dates, epoch ms, --days) and --param."""

from __future__ import annotations

import pytest
import typer

from roottrading.backtest.cli import _parse_params, _period

DAY = 86_400_000
JAN1 = 1704067200000  # 2024-01-01T00:00Z


def test_period_from_dates_epoch_ms_and_days() -> None:
    assert _period("2024-01-01", "2024-01-03", None) == (JAN1, JAN1 + 2 * DAY, True)
    assert _period(str(JAN1), None, 2) == (JAN1, JAN1 + 2 * DAY, True)
    assert _period(None, "2024-01-03", 2) == (JAN1, JAN1 + 2 * DAY, True)
    start, end, explicit = _period(None, None, 1)
    assert end - start == DAY and explicit
    assert _period(None, None, None)[2] is False  # everything the source holds
    with pytest.raises(typer.Exit):
        _period("yesterday", None, None)
    with pytest.raises(typer.Exit):
        _period(None, None, 0)


def test_params_are_name_key_value_with_typed_values() -> None:
    assert _parse_params(["ema_cross.fast=9", "ema_cross.slow=30", "rsi_cross.level=27.5"]) == {
        "ema_cross": {"fast": 9, "slow": 30},
        "rsi_cross": {"level": 27.5},
    }
    for bad in ("ema_cross=9", "fast=9", ".fast=9", "ema_cross.fast"):
        with pytest.raises(typer.Exit):
            _parse_params([bad])
