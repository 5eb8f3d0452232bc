"""Fees paid in a third asset (BNB, the default for many Binance accounts) cost what that asset was worth
in the quote asset when the fill happened; the trader's cycle PnL (which the ledger settles) and the PnL
tracker's agree. The simulator charges fees in the asset received, so the exchange here is the simulator
with every fill's commission rewritten to BNB (as Binance does with "pay fees with BNB" on)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import structlog

from roottrading import ids
from roottrading.capital.performance import load_pnls
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Fill, Side
from roottrading.exchange.base import ExchangeUpdate, OrderUpdate, UpdateCallback
from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange
from roottrading.services.trader.exchange_factory import demo_rules
from tests.trader.conftest import MIN, SYM, T0, Rig, req

D = Decimal
BNB_FEE = D("0.001")  # BNB per fill


class BnbFeeExchange(SimExchange):
    """The simulator, but every fill pays BNB_FEE BNB of commission."""

    @staticmethod
    def _bnb(f: Fill) -> Fill:
        return msgspec.structs.replace(f, commission=BNB_FEE, commission_asset="BNB")

    def subscribe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        def rewrite(u: ExchangeUpdate) -> object:
            if isinstance(u, OrderUpdate) and u.fill is not None:
                u = msgspec.structs.replace(u, fill=self._bnb(u.fill))
            return callback(u)

        return super().subscribe_updates(rewrite)  # type: ignore[arg-type]

    async def my_trades(self, symbol: str, **kw: object) -> list[Fill]:  # type: ignore[override]
        return [self._bnb(f) for f in await super().my_trades(symbol, **kw)]  # type: ignore[arg-type]


def bnb_engine() -> SimEngine:
    rules = demo_rules([SYM, "BNBUSDT"], {"BNBUSDT": 300})
    zero = SimConfig(maker_fee=D(0), taker_fee=D(0))  # the only fee is the BNB one added above
    eng = SimEngine(list(rules.values()), zero, {"USDT": D(10_000)}, start_time=T0 - MIN)
    eng.on_trade(SYM, T0 - MIN, D(20000))
    return eng


async def test_bnb_fee_is_valued_at_fill_time_and_trader_and_tracker_agree(tmp_path: Path) -> None:
    engine = bnb_engine()
    clock = SimClock(T0 - MIN)
    rig = Rig(tmp_path, engine, clock)
    await rig.start(BnbFeeExchange(engine, clock))
    try:
        rig.core.last_price[SYM] = D(20000)
        engine.on_trade("BNBUSDT", T0 - MIN, D(300))  # BNB at the entry: 300
        await rig.send(req("r1", qty="0.01"))
        cid = ids.cycle_id("r1")
        assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE

        clock.set(T0)
        engine.on_trade("BNBUSDT", T0, D(400))  # BNB at the exit: 400
        engine.on_trade(SYM, T0, D(21000))
        rig.core.last_price[SYM] = D(21000)
        await rig.send(req("x1", Side.SELL, qty=None))
        c = await rig.cycle(cid)
        assert c.status is CycleStatus.COMPLETED
        # 210 - 200 - 0.001 BNB x 300 (entry) - 0.001 BNB x 400 (exit)
        assert c.profit_loss == D("9.3")
        assert c.fees == D("0.7")
        assert c.unpriced_fees is None

        stored = await rig.svc.orders.fills(symbol=SYM)
        assert sorted(D(r["commission_quote"]) for r in stored) == [D("0.3"), D("0.4")]

        # the tracker, with BNB now at 500, gives the same number (the fee's value is the fill's, stored)
        assert rig.host is not None
        pnls = await load_pnls(rig.host.db, quote_asset="USDT", marks={"BNBUSDT": D(500)})
        (p,) = [p for p in pnls if p.cycle_id == cid]
        assert p.realised == c.profit_loss and p.fees == c.fees
    finally:
        await rig.stop()


async def test_unpriced_bnb_fee_is_reported_never_silently_zero(tmp_path: Path) -> None:
    rules = demo_rules([SYM])  # no BNBUSDT book: no price anywhere
    engine = SimEngine(list(rules.values()), SimConfig(maker_fee=D(0), taker_fee=D(0)), {"USDT": D(10_000)})
    engine.on_trade(SYM, T0 - MIN, D(20000))
    clock = SimClock(T0 - MIN)
    rig = Rig(tmp_path, engine, clock)
    await rig.start(BnbFeeExchange(engine, clock))
    try:
        rig.core.last_price[SYM] = D(20000)
        with structlog.testing.capture_logs() as logs:
            await rig.send(req("r1", qty="0.01"))
        c = await rig.cycle(ids.cycle_id("r1"))
        assert c.unpriced_fees == "0.001 BNB"
        assert any(e["event"].startswith("fee not priced") and e["asset"] == "BNB" for e in logs)
        assert rig.host is not None
        (p,) = await load_pnls(rig.host.db, quote_asset="USDT")
        assert p.as_dict()["unpriced_fees"] == "0.001 BNB"
    finally:
        await rig.stop()
