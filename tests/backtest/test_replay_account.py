"""The replay's simulated account is funded in the run's quote asset only: a run quoted in BTC (ETHBTC) must not
also hold the demo account's default USDT (an unpriced holding that changes the trader's balances total, and so
what the coordinator sizes from)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from roottrading.backtest.model import BacktestConfig
from roottrading.backtest.overrides import parse_overrides
from roottrading.runtime import Host


def _config() -> BacktestConfig:
    return BacktestConfig(
        strategies=("ema_cross",),
        symbols=("ETHBTC",),
        interval="1h",
        start_ms=0,
        end_ms=3_600_000,
        balance=Decimal("2.5"),
        engine="replay",
    )


async def test_a_btc_quoted_replay_account_holds_only_btc(tmp_path: Path) -> None:
    cfg = _config()
    ov = parse_overrides({"quote_asset": "BTC"})
    settings = ov.settings_for(
        cfg,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
        data_dir=tmp_path,
        **ov.tuning_for(cfg, tmp_path),
    )
    assert settings.quote_asset == "BTC"
    host = Host(settings, ["trader"], wiring=ov.wiring_for(cfg, settings.quote_asset))
    bals = await host.services["trader"].exchange.balances()
    held = {a: b.free + b.locked for a, b in bals.items() if b.free + b.locked}
    assert held == {"BTC": Decimal("2.5")}
