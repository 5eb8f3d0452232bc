"""Position sizing from equity and per-trade risk. Pure: Decimal in, Decimal out, no I/O.

qty = equity * risk_pct / |entry - stop|   (the loss if the stop is hit is risk_pct of equity)
or, with a fixed stake (COORDINATOR_STAKE_QUOTE, `roottrading backtest --stake`), qty = stake / entry,
then capped by what the pocket has available (fee and slippage buffers included), the per-symbol max quantity
and max notional, and rounded DOWN to the exchange step, so neither the pocket nor the risk budget is ever exceeded.

The reservation is notional x (1 + fee buffer) x (1 + slippage buffer): a market buy fills at the next price,
not the signal's. Without the slippage part a worse fill cost more than was reserved, the ledger capped the
consumption at the reservation and the excess (spent on the exchange) was missing from the pocket's used value
until the cycle ended, so the pocket showed money that was no longer there to the next entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from roottrading.domain.money import round_step

PRICE_Q = Decimal("0.00000001")


@dataclass(frozen=True)
class SizeRequest:
    equity: Decimal
    price: Decimal
    stop: Decimal | None
    risk_pct: Decimal
    default_stop_pct: Decimal
    available: Decimal
    fee_buffer_pct: Decimal = Decimal(0)
    slippage_buffer_pct: Decimal = Decimal(0)
    max_quantity: Decimal | None = None
    max_notional: Decimal | None = None
    stake: Decimal | None = None  # fixed quote amount per trade instead of the risk budget


@dataclass(frozen=True)
class Sizing:
    quantity: Decimal
    notional: Decimal
    reserve_amount: Decimal
    stop: Decimal
    stop_distance: Decimal
    risk_amount: Decimal
    capped_by: list[str] = field(default_factory=list)
    reject_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reject_reason is None


def fixed_step_rounder(step: Decimal) -> Callable[[Decimal], Decimal]:
    return lambda q: round_step(q, step)


def reserve_multiplier(fee_buffer_pct: Decimal, slippage_buffer_pct: Decimal) -> Decimal:
    """What is set aside per unit of notional at the signal's price. Multiplied, not added: a fill at up to
    price x (1 + slippage) paying up to (1 + fee) of it costs at most notional x (1 + fee) x (1 + slippage)."""
    return (1 + fee_buffer_pct / 100) * (1 + slippage_buffer_pct / 100)


def reservation_amount(quantity: Decimal, price: Decimal, multiplier: Decimal) -> Decimal:
    """The reservation for `quantity` at the signal's `price`, rounded UP so that it covers the worst fill
    within the buffers (the ledger returns the unused part when the fill is known)."""
    return (quantity * price * multiplier).quantize(PRICE_Q, rounding=ROUND_UP)


def size_entry(req: SizeRequest, round_quantity: Callable[[Decimal], Decimal], min_notional: Decimal) -> Sizing:
    """Size a long entry. A result with `reject_reason` set must not trade."""
    price = req.price
    if price <= 0:
        return _reject(req, f"invalid price {price}")
    stop = req.stop
    if stop is None or stop <= 0 or stop >= price:  # no usable stop below a long entry: default distance
        stop = (price * (1 - req.default_stop_pct / 100)).quantize(PRICE_Q, rounding=ROUND_DOWN)
    distance = price - stop
    if req.stake is not None:  # the stake replaces the risk budget; every cap below still applies
        candidates = {"stake": req.stake / price}
    else:
        candidates = {"risk": req.equity * req.risk_pct / 100 / distance}
    mult = reserve_multiplier(req.fee_buffer_pct, req.slippage_buffer_pct)
    candidates["pocket"] = max(req.available, Decimal(0)) / (price * mult)
    if req.max_quantity is not None:
        candidates["max_quantity"] = req.max_quantity
    if req.max_notional is not None:
        candidates["max_notional"] = req.max_notional / price
    raw = min(candidates.values())
    capped = [k for k, v in candidates.items() if v == raw and k not in ("risk", "stake")]
    qty = round_quantity(raw)
    if qty > raw:  # a rounder must never round up; refuse rather than overspend
        return _reject(req, f"quantity rounding went up ({raw} -> {qty})", stop=stop)
    notional = qty * price
    if qty <= 0 or notional < min_notional:
        why = (
            "no funds available in the pocket"
            if candidates["pocket"] <= 0
            else f"order value {notional.quantize(Decimal('0.01'))} below min notional {min_notional}"
        )
        return _reject(req, why + (f" (capped by {', '.join(capped)})" if capped else ""), stop=stop)
    reserve = min(req.available, reservation_amount(qty, price, mult))
    return Sizing(
        quantity=qty,
        notional=notional,
        reserve_amount=reserve,
        stop=stop,
        stop_distance=distance,
        risk_amount=qty * distance,
        capped_by=capped,
    )


def _reject(req: SizeRequest, reason: str, stop: Decimal | None = None) -> Sizing:
    z = Decimal(0)
    return Sizing(
        quantity=z, notional=z, reserve_amount=z, stop=stop or z, stop_distance=z, risk_amount=z, reject_reason=reason
    )
