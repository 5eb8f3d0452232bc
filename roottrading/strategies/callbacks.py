"""Optional strategy callbacks in the coordinator's decision path: `confirm_entry`, `stake` and `order_type`.

Why: some decisions need the moment of the order, not the candle: skip an entry because of something the
vectorised signal cannot see (a tag the strategy wants only at some hours, a maximum number of entries it
keeps in its own state), or size a trade by the strategy's own conviction. Both are optional methods of the
strategy class; the coordinator calls them for each entry signal that passed its filters, before sizing:

- `confirm_entry(request) -> str | None`: a string vetoes the entry; it is stored as the decision's reason
  ("strategy veto: <reason>").
- `stake(request) -> Decimal | float | None`: the quote amount to put in; None keeps the coordinator's sizing.
  It is still capped by the pocket's available funds, the per-symbol limits and the risk manager.
- `order_type(request) -> None | "MARKET" | "LIMIT" | LimitOrder(price)`: how the entry is placed. None or
  "MARKET": a market order (the default); "LIMIT": a limit order at the signal's price; `LimitOrder(price)`:
  a limit order at that price (rounded down to the tick). A limit entry rests until it fills or until the
  strategy's `limit_entry_timeout_s` (market time, default 600 s) has passed, when the trader cancels what is
  left of it: a partly filled entry keeps its position (managed as usual), an unfilled one ends CANCELED and
  its reservation is released. The funds reserved are sized at the higher of the signal's and the limit price.

A callback that raises is isolated like a failing strategy in the analyzer: logged with the exception and
treated as "no opinion" (no veto, no stake), so the entry goes through the coordinator's own rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from roottrading.domain import Signal, SignalStrength
from roottrading.domain.money import to_decimal

#: the arguments each callback is called with (after self)
ARGUMENTS = {
    "confirm_entry": ("request",),
    "stake": ("request",),
    "order_type": ("request",),
    "custom_stoploss": ("cycle", "now", "price", "profit"),
    "custom_exit": ("cycle", "now", "price", "profit"),
    "confirm_exit": ("cycle", "reason", "price"),
    "on_fill": ("fill", "cycle"),
    "position_adjustment": ("cycle", "now", "price", "profit"),
}
#: every optional callback; a strategy overriding any runs on the `replay` backtest engine only (the trader's
#: position callbacks are in cycle_callbacks.py)
CALLBACKS = tuple(ARGUMENTS)


@dataclass(frozen=True)
class EntryRequest:
    """What a callback sees of an entry about to be sized: the signal, as the coordinator received it."""

    symbol: str
    strategy: str
    time: int  # the signal's time (its candle's close), UTC ms
    price: Decimal  # the signal's price (its candle's close)
    strength: SignalStrength
    tag: str | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    signal_id: str

    @classmethod
    def of(cls, s: Signal) -> EntryRequest:
        return cls(
            symbol=s.symbol,
            strategy=s.strategy,
            time=s.time,
            price=to_decimal(s.price),
            strength=s.strength,
            tag=s.tag,
            stop_loss=None if s.stop_loss is None else to_decimal(s.stop_loss),
            take_profit=None if s.take_profit is None else to_decimal(s.take_profit),
            signal_id=s.id,
        )


def overrides_callbacks(strategy: Any) -> list[str]:
    """The callbacks a strategy (instance or class) defines beyond the base class's no-op ones."""
    from roottrading.strategies.base import BaseStrategy

    cls = strategy if isinstance(strategy, type) else type(strategy)
    return [n for n in CALLBACKS if getattr(cls, n, None) is not getattr(BaseStrategy, n)]


def check_callbacks(cls: type) -> None:
    """Raise ValueError at load when an overridden callback cannot take its arguments (positionally),
    `stoploss_can_loosen` is not a bool or `max_entry_adjustments` no count: otherwise the mistake would only
    show as a failure on every price."""
    import inspect

    for name in overrides_callbacks(cls):
        fn = getattr(cls, name)
        if not callable(fn):
            raise ValueError(f"{cls.__qualname__}.{name} is not a method")
        try:
            inspect.signature(fn).bind(None, *ARGUMENTS[name])
        except TypeError:
            raise ValueError(f"{cls.__qualname__}.{name} must take ({', '.join(ARGUMENTS[name])}) after self") from None
        except ValueError:  # no signature to inspect (a builtin): let the call decide
            continue
    if not isinstance(getattr(cls, "stoploss_can_loosen", False), bool):
        raise ValueError(f"{cls.__qualname__}.stoploss_can_loosen must be True or False")
    if getattr(cls, "exchange_stop", None) not in (None, True, False):
        raise ValueError(f"{cls.__qualname__}.exchange_stop must be True, False or None")
    timeout = getattr(cls, "limit_entry_timeout_s", 600.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"{cls.__qualname__}.limit_entry_timeout_s must be a number of seconds > 0")
    limit = getattr(cls, "max_entry_adjustments", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"{cls.__qualname__}.max_entry_adjustments must be an int >= 0")


def callback_instances(strategies_dir: str | None) -> dict[str, Any]:
    """One instance (default parameters) of each loadable strategy that overrides a callback, by name: what
    the coordinator and the trader call. Loaded without the bias check (the analyzer runs it)."""
    from roottrading.strategies.loader import load_strategies

    loaded = load_strategies(strategies_dir, check_bias=False).strategies
    # a strategy choosing where its stop lives (exchange_stop) is asked by the trader too
    return {
        n: cls()
        for n, cls in loaded.items()
        if overrides_callbacks(cls) or getattr(cls, "exchange_stop", None) is not None
    }


@dataclass(frozen=True)
class LimitOrder:
    """`order_type`'s answer for a limit entry at `price` (quote currency)."""

    price: Decimal | float | int | str


@dataclass(frozen=True)
class EntryHooks:
    """The callbacks' answer for one entry: a veto reason, a stake, a limit price (None: a market order), and
    the errors of callbacks that raised."""

    veto: str | None = None
    stake: Decimal | None = None
    limit_price: Decimal | None = None
    errors: tuple[str, ...] = ()
