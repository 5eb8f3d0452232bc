"""A position whose exit keeps failing stays managed (issue 17, item 11).

Before: after MAX_EXIT_ATTEMPTS rejected exits the cycle was left alone (no more stops, a warning line),
and until then a rejected exit was sent again on every new price. Now the exit is retried with back-off in
market time, without end, and an alert-level (critical) log line says a human should look.
"""

from __future__ import annotations

from decimal import Decimal

from structlog.testing import capture_logs

from roottrading import ids
from roottrading.domain import CycleStatus, Side
from roottrading.services.trader import core as trader_core
from tests.trader.conftest import Rig, req

D = Decimal


def _sells(rig: Rig, cycle_id: str) -> list[object]:
    return [o for o in rig.core._cycle_orders(cycle_id) if o.side is Side.SELL]


async def test_failing_exit_is_retried_with_back_off_forever_and_raises_an_alert(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    held = (await rig.cycle(cid)).quantity
    rig.engine.ledger.lock("BTC", held)  # the coins are gone (sold by hand, moved): every SELL is refused
    with capture_logs() as logs:
        await rig.bar(20000, 20000, 18900, 18950)  # stop hit: first exit, rejected
        assert len(_sells(rig, cid)) == 1
        for _ in range(5):  # five more minutes of prices: not one order per price
            await rig.bar(18950, 18960, 18940, 18950)
        assert len(_sells(rig, cid)) < 6
        for _ in range(24 * 60):  # a day of 1m candles: the exit keeps being retried, spaced out
            await rig.bar(18950, 18960, 18940, 18950)
        attempts = len(_sells(rig, cid))
        assert trader_core.MAX_EXIT_ATTEMPTS < attempts < 60
        c = await rig.cycle(cid)
        assert c.status is CycleStatus.ACTIVE  # still managed
        alerts = [e for e in logs if e["log_level"] == "critical"]
        assert len(alerts) == 1 and alerts[0]["cycle"] == cid  # said once, not every retry
        rig.engine.ledger.unlock("BTC", held)  # the coins are back: the next retry exits
        for _ in range(120):
            await rig.bar(18950, 18960, 18940, 18950)
            if (await rig.cycle(cid)).status is CycleStatus.COMPLETED:
                break
    assert (await rig.cycle(cid)).status is CycleStatus.COMPLETED
