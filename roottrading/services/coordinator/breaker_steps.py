"""The coordinator's steps that call a dependency, each behind its circuit breaker: size, risk, reserve, publish.

Why a mixin apart from service.py: these are the only places the pipeline waits on another system (the
ledger for sizing and reservations, the risk manager, the bus), so the failure rules live together: an open
breaker rejects at once; an expected failure of the dependency counts against its breaker and is stored as a
"failed" decision; funds reserved are released on any failure after the reservation; a reservation that
finds fewer funds than the ledger's cached view said raises _SizedFromStaleView (sized again, fresh). The
symbol-rule helpers (`_round`, `_tick`, `_min_notional`) put quantities and prices on the exchange's grid.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from roottrading import messages as m
from roottrading.capital import InsufficientFunds
from roottrading.domain import OrderRequest, Side, Signal
from roottrading.domain.money import to_decimal
from roottrading.risk import OrderIntent
from roottrading.services.coordinator.breaker import CircuitOpen
from roottrading.services.coordinator.risk_client import RiskUnavailable
from roottrading.services.coordinator.sizing import SizeRequest, Sizing, fixed_step_rounder, size_entry

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService

LEDGER_ERRORS = (SQLAlchemyError, OSError, ConnectionError, TimeoutError)
BUS_ERRORS = (ConnectionError, OSError, RuntimeError, TimeoutError)


class _SizedFromStaleView(Exception):
    """The reservation found fewer funds than the ledger's view said: the entry is sized again, fresh."""


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else to_decimal(x).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)


class BreakerStepsMixin:
    """Sizing, risk check, reservation and publish, each behind its breaker (CoordinatorService)."""

    # --- steps behind breakers ------------------------------------------------------------------------
    def _rules(self: CoordinatorService, symbol: str) -> Any:  # type: ignore[misc]
        return self.symbol_rules.get(symbol)

    def _round(self: CoordinatorService, symbol: str, qty: Decimal) -> Decimal:  # type: ignore[misc]
        r = self._rules(symbol)
        return r.round_quantity(qty) if r is not None else fixed_step_rounder(self.cfg.default_step)(qty)

    def _tick(self: CoordinatorService, symbol: str, price: Decimal) -> Decimal:  # type: ignore[misc]
        """A limit price on the symbol's tick grid (rounded down: a buy never pays more than asked)."""
        r = self._rules(symbol)
        return r.round_price(price) if r is not None else price

    def _min_notional(self: CoordinatorService, symbol: str) -> Decimal:  # type: ignore[misc]
        r = self._rules(symbol)
        return Decimal(r.min_notional) if r is not None else self.cfg.default_min_notional

    async def _size(  # type: ignore[misc]
        self: CoordinatorService, s: Signal, fresh: bool = False, stake: Decimal | None = None
    ) -> Sizing | None:
        br = self.breakers["ledger"]
        try:
            br.check()
            listed = await self.ledger.pockets(max_age_s=0.0 if fresh else self.cfg.pocket_view_s)
            br.success()
            pockets = {p.pocket_type: p for p in listed}
        except LEDGER_ERRORS as exc:
            br.failure()
            await self._record(s, "failed", f"ledger unavailable: {exc!r}", stage="sizing")
            return None
        except CircuitOpen as exc:
            await self._record(s, "rejected", str(exc), stage="breaker")
            return None
        pocket = pockets.get(self.cfg.pocket)
        available = pocket.available_value if pocket is not None else Decimal(0)
        sym = s.symbol.upper()
        sizing = size_entry(
            SizeRequest(
                equity=await self.equity(listed),
                price=to_decimal(s.price),
                stop=_dec(s.stop_loss),
                risk_pct=self.cfg.risk_pct,
                default_stop_pct=self.cfg.default_stop_pct,
                available=available,
                fee_buffer_pct=self.cfg.fee_buffer_pct,
                slippage_buffer_pct=self.cfg.slippage_buffer_pct,
                max_quantity=self.cfg.max_quantity.get(sym),
                max_notional=self.cfg.max_notional.get(sym),
                stake=stake if stake is not None else self.cfg.stake_quote,
            ),
            lambda q: self._round(s.symbol, q),
            self._min_notional(s.symbol),
        )
        if not sizing.ok:
            await self._record(
                s,
                "rejected",
                f"sizing: {sizing.reject_reason}",
                stage="sizing",
                pocket=self.cfg.pocket,
                available=available,
            )
            return None
        return sizing

    async def _risk_check(  # type: ignore[misc]
        self: CoordinatorService, s: Signal, req_id: str, qty: Decimal, cycle_id: str | None = None
    ) -> Any:
        br = self.breakers["risk"]
        if not br.allow():
            await self._record(s, "rejected", "circuit open: risk", stage="breaker")
            return None
        intent = OrderIntent(
            id=req_id,
            symbol=s.symbol,
            side=Side.BUY,
            quantity=qty,
            price=to_decimal(s.price),
            strategy=s.strategy,
            time=s.time,
            cycle_id=cycle_id,
        )
        try:
            verdict = await self.risk.check(intent)
        except RiskUnavailable as exc:
            br.failure()
            await self._record(s, "failed", f"risk unavailable: {exc}", stage="risk")
            return None
        br.success()
        if not verdict.allowed:
            await self._record(
                s,
                "rejected",
                "risk: " + "; ".join(verdict.reasons),
                stage="risk",
                risk_action=verdict.action,
                rule=verdict.rule,
            )
            return None
        return verdict

    async def _reserve(  # type: ignore[misc]
        self: CoordinatorService,
        s: Signal,
        res_id: str,
        amount: Decimal,
        cycle_id: str,
        also: Any = None,
        sized_from_view: bool = False,
    ) -> bool:
        br = self.breakers["ledger"]
        if not br.allow():
            await self._record(s, "rejected", "circuit open: ledger", stage="breaker")
            return False
        try:
            await self.ledger.reserve(
                res_id,
                amount,
                pocket=self.cfg.pocket,
                cycle_id=cycle_id,
                reason=f"entry {s.symbol} {s.strategy}",
                also=also,
            )
        except InsufficientFunds as exc:
            br.success()
            if sized_from_view and self.cfg.pocket_view_s > 0:
                raise _SizedFromStaleView from exc
            await self._record(s, "rejected", f"insufficient funds: {exc}", stage="reserve")
            return False
        except LEDGER_ERRORS as exc:
            br.failure()
            await self._release(res_id, "reservation failed")
            await self._record(s, "failed", f"ledger unavailable: {exc!r}", stage="reserve")
            return False
        br.success()
        return True

    async def _publish(  # type: ignore[misc]
        self: CoordinatorService, s: Signal, req: OrderRequest, *, stage: str, reservation_id: str | None = None
    ) -> bool:
        br = self.breakers["bus"]
        if not br.allow():
            self._unaccept()
            if reservation_id:
                await self._release(reservation_id, "circuit open: bus")
            await self._record(s, "rejected", "circuit open: bus", stage=stage)
            return False
        try:
            await self.ctx.publish(m.ORDER_REQUESTS, req, key=req.symbol, msg_id=req.id)
        except BUS_ERRORS as exc:
            br.failure()
            self._unaccept()
            if reservation_id:
                await self._release(reservation_id, f"order not sent: {exc!r}")
            await self._record(s, "failed", f"bus unavailable: {exc!r}", stage=stage, released=bool(reservation_id))
            return False
        br.success()
        self.requests_sent += 1
        return True

    async def _release(self: CoordinatorService, res_id: str, reason: str) -> None:  # type: ignore[misc]
        try:
            await self.ledger.release(res_id, reason)
        except LEDGER_ERRORS as exc:  # the portfolio's reconciliation frees it later
            self.log.error("release failed; reservation left for reconciliation", reservation=res_id, error=repr(exc))
