"""The trader soak (tests/binance_trading/test_trader_soak.py: the real trader process, 1,000 requests with faults
and SIGKILLs, the exact exchange-vs-store audit) on `EXCHANGE=ccxt:binance`: ccxt's Binance class against the
fake Binance, order updates over ccxt.pro's user stream with the poller as the reconciliation (issue 16: "the
trader soak passes on the ccxt adapter too"). A file of its own so that it runs beside the native soak on the
other pytest-xdist worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.binance_trading.test_trader_soak import test_trader_service_soak_sigkill as soak


@pytest.mark.slow
async def test_trader_service_soak_sigkill_ccxt(tmp_path: Path, redis_url: str, unique: str) -> None:
    await soak(tmp_path, redis_url, unique, "ccxt:binance")
