"""`print_report` reads the store and prints the same numbers the APIs serve."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from roottrading.capital.ledger import PocketLedger
from roottrading.capital.report import print_report
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Balance, CycleStatus, Fill, Side, TradeCycle
from roottrading.store import CycleRepo, Database, OrderRepo
from roottrading.store.repos_capital import BalanceRepo

D = Decimal
T0 = 1_700_000_000_000


async def seed(url: str) -> None:
    db = Database(url)
    await db.migrate()
    cycles, orders = CycleRepo(db), OrderRepo(db)
    for i, (entry, exit_, strat) in enumerate([("100", "110", "ema"), ("100", "95", "rsi")]):
        t = T0 - (2 - i) * 3_600_000
        await cycles.save(
            TradeCycle(
                id=f"c{i}",
                symbol="BTCUSDT",
                strategy=strat,
                side=Side.BUY,
                status=CycleStatus.COMPLETED,
                created_at=t,
                updated_at=t + 1000,
                entry_order_id=f"e{i}",
                exit_order_id=f"x{i}",
                quantity=D(1),
            )
        )
        for oid, side, px in ((f"e{i}", Side.BUY, entry), (f"x{i}", Side.SELL, exit_)):
            await orders.add_fill(
                Fill(
                    trade_id=oid,
                    order_id=oid,
                    client_order_id=oid,
                    symbol="BTCUSDT",
                    side=side,
                    price=D(px),
                    quantity=D(1),
                    quote_quantity=D(px),
                    commission=D("0.1"),
                    commission_asset="USDT",
                    time=t,
                )
            )
    await BalanceRepo(db).upsert([Balance(asset="USDT", free=D(10_004), locked=D(0), value_quote=D(10_004))], T0)
    await PocketLedger(db, SimClock(T0), {"active": D(60), "buffer": D(40)}).ensure_initialised(D(10_004))
    await db.close()


def test_report_lists_metrics_pockets_and_groups(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db"
    asyncio.run(seed(url))
    text = print_report(load_settings(database_url=url, data_dir=tmp_path), now_ms=T0)
    lines = text.splitlines()
    assert "Portfolio value   10,004.00" in text
    assert "realised 4.60" in text and "fees 0.40" in text  # 9.8 - 5.2
    assert "Starting equity   9,999.40" in text
    row = next(line for line in lines if line.startswith("win rate"))
    assert row.split()[-1] == "50.0%"  # the "all" column
    pf = next(line for line in lines if line.startswith("profit factor"))
    assert pf.split()[-1] == f"{9.8 / 5.2:.2f}"
    assert any(line.startswith("active") and "6,002.40" in line for line in lines)
    assert any(line.startswith("ema") and "9.80" in line for line in lines)
    assert any(line.startswith("rsi") and "-5.20" in line for line in lines)


def test_report_on_an_empty_store(tmp_path: Path) -> None:
    text = print_report(
        load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db", data_dir=tmp_path), now_ms=T0
    )
    assert "unknown (no balances stored)" in text and "No trade cycles stored yet." in text
