"""PnL tracker service end to end: fills and cycles from the store, marks from candles, snapshots."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Candle, CycleStatus, Fill, Order, OrderType, Side, TradeCycle
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.store import CycleRepo, OrderRepo
from roottrading.store.repos_capital import PerformanceRepo

D = Decimal
DAY = 86_400_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY + 12 * 3_600_000  # noon UTC


def fill(oid: str, side: Side, price: str, qty: str, fee: str, asset: str, t: int, symbol: str = "BTCUSDT") -> Fill:
    return Fill(
        trade_id=oid,
        order_id=oid,
        client_order_id=oid,
        symbol=symbol,
        side=side,
        price=D(price),
        quantity=D(qty),
        quote_quantity=D(price) * D(qty),
        commission=D(fee),
        commission_asset=asset,
        time=t,
    )


async def test_pnl_per_strategy_symbol_day_and_snapshots(tmp_path: Path) -> None:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        api_token="t",
        data_dir=tmp_path,
        pnl_snapshot_s=3600,
    )
    clock = SimClock(T0)
    host = Host(settings, ["pnl"], clock=clock)
    await host.start()
    try:
        cycles, orders = CycleRepo(host.db), OrderRepo(host.db)
        # closed yesterday, buy fee in base: 0.999 * 110 - 100 - 0.10989 = 9.78011
        await cycles.save(
            TradeCycle(
                id="a",
                symbol="BTCUSDT",
                strategy="ema",
                side=Side.BUY,
                status=CycleStatus.COMPLETED,
                created_at=T0 - DAY,
                updated_at=T0 - DAY + 5,
                entry_order_id="a1",
                exit_order_id="a2",
                quantity=D(1),
            )
        )
        await orders.add_fill(fill("a1", Side.BUY, "100", "1", "0.001", "BTC", T0 - DAY))
        await orders.add_fill(fill("a2", Side.SELL, "110", "0.999", "0.10989", "USDT", T0 - DAY + 5))
        # closed today with a loss, linked through trade_executions.cycle_id only
        await cycles.save(
            TradeCycle(
                id="b",
                symbol="ETHUSDT",
                strategy="rsi",
                side=Side.BUY,
                status=CycleStatus.COMPLETED,
                created_at=T0 - 10,
                updated_at=T0 - 5,
                quantity=D(2),
            )
        )
        for oid, side, px in (("b1", Side.BUY, "50"), ("b2", Side.SELL, "45")):
            await orders.save(
                Order(
                    client_order_id=oid,
                    symbol="ETHUSDT",
                    side=side,
                    type=OrderType.MARKET,
                    quantity=D(2),
                    cycle_id="b",
                    created_at=T0,
                    updated_at=T0,
                )
            )
            await orders.add_fill(fill(oid, side, px, "2", "0.1", "USDT", T0 - 8, "ETHUSDT"))
        # open, marked by the latest candle
        await cycles.save(
            TradeCycle(
                id="c",
                symbol="BTCUSDT",
                strategy="ema",
                side=Side.BUY,
                status=CycleStatus.ACTIVE,
                created_at=T0 - 3,
                updated_at=T0 - 3,
                entry_order_id="c1",
                quantity=D(1),
            )
        )
        await orders.add_fill(fill("c1", Side.BUY, "100", "1", "0.1", "USDT", T0 - 3))
        await host.bus.publish(
            m.candles_topic("BTCUSDT"),
            Candle(
                symbol="BTCUSDT",
                interval="1m",
                open_time=T0 - 60_000,
                close_time=T0 - 1,
                open=120,
                high=120,
                low=120,
                close=120.0,
                volume=1,
            ),
        )
        assert await host.bus.drain(10)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            s = (await c.get("/api/pnl/summary")).json()
            # realised 9.78011 + (90 - 100 - 0.2) = -0.41989; unrealised 120 - 100 - 0.1 = 19.9
            assert s["realised_pnl"] == "-0.41989" and s["unrealised_pnl"] == "19.9"
            assert s["total_pnl"] == "19.48011" and s["pnl_today"] == "-10.2"
            assert s["cycles"] == 2 and s["win_rate"] == 0.5 and s["open_cycles"] == 1
            strat = {g["strategy"]: g for g in (await c.get("/api/pnl/strategies")).json()}
            assert strat["ema"]["realised"] == "9.78011" and strat["ema"]["unrealised"] == "19.9"
            assert strat["rsi"]["total"] == "-10.2" and strat["rsi"]["losses"] == 1
            sym = {g["symbol"]: g for g in (await c.get("/api/pnl/symbols")).json()}
            assert set(sym) == {"BTCUSDT", "ETHUSDT"}
            daily = (await c.get("/api/pnl/daily")).json()
            assert [d["realised"] for d in daily] == ["9.78011", "-10.2"]
            page = (await c.get("/api/pnl/cycles", params={"status": "open"})).json()
            assert page["total"] == 1 and page["items"][0]["unrealised"] == "19.9"
        await host.services["pnl"].snapshot()  # type: ignore[attr-defined]
        latest = await PerformanceRepo(host.db).latest("strategy", "ema")
        assert latest is not None and latest["metrics"]["realised"] == "9.78011"
        overall = await PerformanceRepo(host.db).latest("all")
        assert overall is not None and overall["metrics"]["total_pnl"] == "19.48011"
    finally:
        await host.stop()
