"""The exchange's symbol rules (step size, min notional) as the coordinator sizes with them.

Why the coordinator loads them itself: it used to read the rules the trader published in the context, which only
exists when both run in one process; as its own process it sized on the default grid, and an order the
exchange would refuse (or round differently) left the coordinator. The loader (`exchange_factory.
rules_loader`) makes the trader's choice of exchange, so both see the same rules in every deployment.

Cached: loaded at start, refreshed every `refresh_s` (rules rarely change; Binance announces changes), and
retried every `retry_s` while the last load failed. Until a load succeeds, or for a symbol the exchange does
not list, the coordinator sizes with its configured defaults (COORDINATOR_DEFAULT_STEP /
COORDINATOR_DEFAULT_MIN_NOTIONAL) and says so in a warning (once per symbol) and in its health.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from roottrading.exchange.errors import ExchangeError
from roottrading.exchange.filters import SymbolRules

# What a failed load may raise: the port's errors, transport errors, Binance's REST errors (RestMarketError
# is a RuntimeError), a malformed body.
LOAD_ERRORS = (ExchangeError, OSError, TimeoutError, RuntimeError, ValueError, KeyError)


class SymbolRulesCache:
    def __init__(
        self,
        load: Callable[[], Awaitable[dict[str, SymbolRules]]],
        now_ms: Callable[[], int],
        *,
        refresh_s: float = 3600.0,
        retry_s: float = 60.0,
    ) -> None:
        self.load, self.now_ms = load, now_ms
        self.refresh_s, self.retry_s = refresh_s, retry_s
        self.rules: dict[str, SymbolRules] = {}
        self.loaded_at: int | None = None
        self.failed_at: int | None = None
        self.error: str | None = None
        self.log = structlog.get_logger(__name__)
        self._warned: set[str] = set()
        self._reloaded_for: set[str] = set()  # symbols a reload was forced for (reload_for)

    def get(self, symbol: str) -> SymbolRules | None:
        """The symbol's rules, or None (the caller sizes with its defaults; warned once per symbol)."""
        r = self.rules.get(symbol.upper())
        if r is None and symbol not in self._warned:
            self._warned.add(symbol)
            self.log.warning(
                "no exchange rules for symbol; sizing with the default step and min notional",
                symbol=symbol,
                loaded=self.loaded_at is not None,
                error=self.error,
            )
        return r

    async def reload_for(self, symbols: Iterable[str]) -> None:
        """Reload now if one of `symbols` has no rules yet, once per such symbol: a pair that joined the pair
        universe (docs/universe.md) gets its rules at its first use, not at the next scheduled refresh."""
        missing = {s.upper() for s in symbols} - self.rules.keys() - self._reloaded_for
        if missing and self.loaded_at is not None:
            self._reloaded_for |= missing
            await self.refresh(force=True)

    def due(self) -> bool:
        now = self.now_ms()
        if self.loaded_at is None or (self.failed_at is not None and self.failed_at > self.loaded_at):
            return self.failed_at is None or now - self.failed_at >= self.retry_s * 1000
        return now - self.loaded_at >= self.refresh_s * 1000

    async def refresh(self, force: bool = False) -> None:
        """Load the rules when due (the periodic job calls this every `retry_s`). A failure keeps what was
        loaded before and is logged; it never raises."""
        if not (force or self.due()):
            return
        try:
            loaded = await self.load()
        except LOAD_ERRORS as exc:
            self.failed_at, self.error = self.now_ms(), repr(exc)
            self.log.warning(
                "exchange rules unavailable; sizing with "
                + ("the rules loaded before" if self.rules else "the default step and min notional"),
                error=self.error,
                retry_s=self.retry_s,
            )
            return
        self.rules = {s.upper(): r for s, r in loaded.items()}
        self.loaded_at, self.error = self.now_ms(), None
        self._warned.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"symbols": len(self.rules), "loaded_at": self.loaded_at, "error": self.error}
