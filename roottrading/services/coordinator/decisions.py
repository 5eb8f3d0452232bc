"""The coordinator's decisions: stored with their reason, noted in memory once committed, redelivery answered.

Why a mixin apart from service.py: every step of the pipeline ends in a decision row (GET /decisions), and the
rules for it are one job: a decision counts only once its write has committed (`_decided`), a redelivered
signal finds its decision (`_prior_decision`: memory when it covers the signal's time, else the store) and
does nothing again, except an "accepted" request whose publication cannot be known after a restart, which is
published again (`_republish`; the trader dedupes by request id).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from roottrading import messages as m
from roottrading.domain import OrderRequest, Signal
from roottrading.domain.money import plain_text
from roottrading.services.coordinator.breaker_steps import BUS_ERRORS

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService

FINAL = ("accepted", "rejected", "failed")


class DecisionsMixin:
    """Decision rows written and remembered (CoordinatorService's record of every signal)."""

    async def _stored_answer(self: CoordinatorService, signal_id: str) -> dict[str, Any]:  # type: ignore[misc]
        """A manual entry's or an addition's final decision as its caller gets it: {"decision", "reason",
        "request" (the funded request when accepted, else None)}, read back from the store."""
        rows = [d for d in await self.decisions.query(signal_id=signal_id, limit=5) if d["decision"] in FINAL]
        if not rows:
            return {"decision": "failed", "reason": "no decision stored", "request": None}
        d = rows[0]
        request = (d.get("details") or {}).get("request") if d["decision"] == "accepted" else None
        return {"decision": d["decision"], "reason": d["reason"], "request": request}

    async def _prior_decision(self: CoordinatorService, s: Signal) -> str | None:  # type: ignore[misc]
        """The signal's latest decision: from memory when it covers the signal's time, else the store."""
        known = self.decided.get(s.id)
        if known is not None or self.decided.covers(s.time):
            return known
        rows = await self.decisions.query(signal_id=s.id, limit=5)
        final = [d["decision"] for d in rows if d["decision"] in FINAL]
        if final and final[0] == "accepted":
            self.decided.unsure.add(s.id)
        return final[0] if final else None

    async def _republish(self: CoordinatorService, s: Signal) -> None:  # type: ignore[misc]
        """After a restart: the request of an accepted signal may never have left (crash between the commit
        and the publish). Publish it again; the trader keys cycles and exits by request id."""
        self.decided.unsure.discard(s.id)
        rows = [d for d in await self.decisions.query(signal_id=s.id, limit=5) if d["decision"] in FINAL]
        raw = (rows[0].get("details") or {}).get("request") if rows and rows[0]["decision"] == "accepted" else None
        if raw is None:
            return
        req = msgspec.convert(raw, OrderRequest, strict=False)
        try:
            await self.ctx.publish(m.ORDER_REQUESTS, req, key=req.symbol, msg_id=req.id)
        except BUS_ERRORS as exc:  # the next redelivery tries again
            self.decided.unsure.add(s.id)
            self.log.error("republish of an accepted request failed", signal=s.id, error=repr(exc))
            raise
        self.log.info("accepted request published again after a restart", signal=s.id, request=req.id)

    def _decision_row(  # type: ignore[misc]
        self: CoordinatorService, s: Signal, decision: str, reason: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        """The row to store. Nothing is noted here: a decision counts only once its write commits
        (`_decided`), else a failed write followed by the bus's redelivery would read as "already decided"."""
        now = self.ctx.clock.now_ms()
        clean = {k: (plain_text(v) if isinstance(v, Decimal) else v) for k, v in details.items()}
        if decision == "accepted":  # per-signal line at debug: the row itself is the record
            self.log.debug("signal accepted", signal=s.id, symbol=s.symbol, strategy=s.strategy, reason=reason)
        else:
            self.log.warning("signal " + decision, signal=s.id, symbol=s.symbol, strategy=s.strategy, reason=reason)
        return {
            "signal_id": s.id,
            "time": now,
            "symbol": s.symbol,
            "strategy": s.strategy,
            "decision": decision,
            "reason": reason,
            "details": clean,
        }

    async def _record(self: CoordinatorService, s: Signal, decision: str, reason: str, **details: Any) -> None:  # type: ignore[misc]
        row = self._decision_row(s, decision, reason, details)
        await self.decisions.add(**row)
        self._decided(row)

    def _decided(self: CoordinatorService, row: dict[str, Any]) -> None:  # type: ignore[misc]
        """Note a STORED decision in memory and count it (call only after its write committed)."""
        decision = row["decision"]
        self.counts[decision] = self.counts.get(decision, 0) + 1
        self.decided.note(row["signal_id"], decision, row["time"])

    def _unaccept(self: CoordinatorService) -> None:  # type: ignore[misc]
        """An accepted decision whose request could not be sent: counted as failed instead."""
        self.counts["accepted"] -= 1
