"""Strategy changes reach every analyzer instance (issue 18: control events reach every instance).

A PUT /strategies/{name} is applied by the analyzer that answered it, which then publishes it on
`control.strategies`; every analyzer consumes that topic through a group of its own (broadcast, runtime/
instance.py) and applies what another instance published (its own message is skipped by `origin`). Applying is
idempotent: enabling an enabled strategy or setting the same parameters changes nothing. Without a bus shared
by processes (memory), there is no other instance: nothing is published.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from roottrading import messages as m

if TYPE_CHECKING:
    from roottrading.services.analyzer.service import AnalyzerService


class StrategyControlRelay:
    def __init__(self, svc: AnalyzerService) -> None:
        self.svc = svc
        self.origin = uuid.uuid4().hex  # this process
        self.shared = hasattr(svc.ctx.bus, "ownerships")  # Redis: other processes may run the analyzer
        self.applied = 0

    async def apply(self, name: str, symbol: str | None, enabled: bool | None, params: dict[str, Any] | None) -> None:
        if params:
            await self.svc.pool.control("params", name, symbol, params)
        if enabled is not None:
            await self.svc.pool.control("enable" if enabled else "disable", name, symbol)

    async def tell_others(
        self, name: str, symbol: str | None, enabled: bool | None, params: dict[str, Any] | None
    ) -> None:
        if not self.shared:
            return
        ev = m.StrategyControl(
            time=self.svc.ctx.clock.now_ms(),
            strategy=name,
            symbol=symbol,
            enabled=enabled,
            params=params,
            origin=self.origin,
        )
        await self.svc.ctx.publish(m.STRATEGY_CONTROL, ev, key=name)

    async def on_control(self, msg: m.Message) -> None:
        ev: m.StrategyControl = msg.payload
        if ev.origin == self.origin or ev.strategy not in self.svc.pool.registry.names():
            return
        await self.apply(ev.strategy, ev.symbol, ev.enabled, ev.params)
        self.applied += 1
        self.svc.log.info(
            "strategy updated by another analyzer instance",
            strategy=ev.strategy,
            symbol=ev.symbol,
            enabled=ev.enabled,
            params=ev.params,
        )
