"""Market API service: what the dashboard charts and order forms need, read from the store and the bus.

- `GET /candles?symbol=&interval=&start=&end=&limit=`: from market_data. Intervals above the base one are
  served directly when stored (e.g. downloaded 1h history), else aggregated from base candles.
- `GET /symbols`: configured symbols with Binance filters (tick size, step size, min notional): the rules the
  trader enforces, read as the coordinator reads them (see `exchange_info`), else basic info.
- `GET /ticker`: last prices from `market.ticks.<SYM>` (throttled by the gateway), else the last candle close.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Query

from roottrading import messages as m
from roottrading.domain import Candle, Tick, interval_ms
from roottrading.exchange.binance.rest_market import BinanceMarketRest, RestMarketError
from roottrading.exchange.filters import rules_to_binance
from roottrading.history.timeparse import parse_time
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import check_epoch_ms
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.services.coordinator.rules import SymbolRulesCache
from roottrading.services.market.aggregate import aggregate, bucket_start, check_ratio
from roottrading.services.trader.exchange_factory import rules_loader
from roottrading.store.repos_market import CandleRepo

MAX_LIMIT = 5000
_INFO_TTL_S = 3600.0
_INFO_RETRY_S = 60.0
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "EUR", "BTC", "ETH", "BNB")


def _split(symbol: str) -> tuple[str, str]:
    quote = next((q for q in _QUOTES if symbol.endswith(q) and len(symbol) > len(q)), symbol[-4:])
    return symbol[: -len(quote)], quote


class MarketService(Service):
    name = "market"
    description = "Candles (any interval), symbols with exchange filters, last prices."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.repo = CandleRepo(ctx.db)
        self.base = ctx.settings.interval
        self.ticks: dict[str, Tick] = {}
        self._info: dict[str, Any] | None = None
        self._info_at = 0.0
        self._info_failed_at = 0.0
        self._info_for: frozenset[str] = frozenset()  # the symbols `_info` was fetched for
        # demo or an injected exchange: the trader's rules, loaded by the coordinator's loader (any deployment)
        self.enforced: SymbolRulesCache | None = None
        if ctx.wiring.exchange is not None or ctx.settings.trading_mode != "live":
            self.enforced = SymbolRulesCache(
                rules_loader(ctx), ctx.clock.now_ms, refresh_s=_INFO_TTL_S, retry_s=_INFO_RETRY_S
            )

    @property
    def symbols(self) -> list[str]:
        """SYMBOLS as it is now: the host sets it to the universe's `streamed` list on `universe.changed` and
        re-reads `consumes()`, so a new member's ticks, candles and filters are served like the others."""
        return [s.upper() for s in self.ctx.settings.symbols]

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.ticks_topic(s), self.on_tick) for s in self.symbols]

    async def on_tick(self, msg: m.Message) -> None:
        tick: Tick = msg.payload
        old = self.ticks.get(tick.symbol)
        if old is None or tick.time >= old.time:
            self.ticks[tick.symbol] = tick

    # --- candles --------------------------------------------------------------------------------------
    async def candles(
        self,
        symbol: str,
        interval: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Stored candles of `interval` (stored directly, else aggregated from the base interval)."""
        interval = interval or self.base
        interval_ms(interval)
        symbol = symbol.upper()
        limit = max(1, min(limit, MAX_LIMIT))
        direct = await self.repo.range(symbol, interval, start, end, limit)
        if direct or interval == self.base:
            return direct
        per = check_ratio(self.base, interval)
        b_start = bucket_start(start, interval) if start is not None else None
        b_end = bucket_start(end, interval) + interval_ms(interval) - 1 if end is not None else None
        base = await self.repo.range(
            symbol, self.base, b_start, b_end, None if b_start is not None else (limit + 1) * per
        )
        out = aggregate(base, interval, self.base)
        return out[:limit] if start is not None else out[-limit:]

    # --- symbols --------------------------------------------------------------------------------------
    async def exchange_info(self) -> dict[str, Any] | None:
        """The filters orders are checked against. Demo, or an exchange given by the host: the rules the
        trader's exchange enforces, loaded as the coordinator loads them (`exchange_factory.rules_loader`, so
        the same in one process and split). Live: Binance's exchangeInfo, the gateway's copy or fetched from the
        REST URL (the document the trader's adapter reads its rules from)."""
        wanted = frozenset(self.symbols)
        if self.enforced is not None:
            await self.enforced.reload_for(wanted)  # a symbol that joined the universe: its rules now
            await self.enforced.refresh()  # when due; a failure is logged and keeps what was loaded
            if self.enforced.rules:
                return {"symbols": [rules_to_binance(r) for r in self.enforced.rules.values()]}
        gw = self.ctx.peer("gateway")
        info = getattr(gw, "exchange_info", None)
        if info and wanted <= {s.get("symbol") for s in info.get("symbols", ()) if isinstance(s, dict)}:
            return info  # the gateway's copy, while it covers SYMBOLS (it is fetched for its start-up list)
        now = time.monotonic()
        if self._info is not None and now - self._info_at < _INFO_TTL_S and wanted <= self._info_for:
            return self._info
        if now - self._info_failed_at < _INFO_RETRY_S and self._info_failed_at:
            return self._info
        rest = BinanceMarketRest(self.ctx.settings.binance_rest_url, max_retries=1, max_ban_wait_s=0, timeout_s=3.0)
        try:
            self._info = await rest.exchange_info(self.symbols)
            self._info_at, self._info_for = now, wanted
        except (RestMarketError, OSError, ValueError) as exc:
            self._info_failed_at = now
            self.log.info("exchange info unavailable; serving basic symbol info", error=str(exc))
        finally:
            await rest.aclose()
        return self._info

    async def symbol_list(self) -> list[dict[str, Any]]:
        info = await self.exchange_info()
        by_sym = {s["symbol"]: s for s in (info or {}).get("symbols", []) if isinstance(s, dict)}
        out = []
        for sym in self.symbols:
            entry = by_sym.get(sym)
            base, quote = _split(sym)
            row: dict[str, Any] = {
                "symbol": sym,
                "base_asset": base,
                "quote_asset": quote,
                "interval": self.base,
                "status": "UNKNOWN",
                "filters": {},
                "source": "basic",
            }
            if entry is not None:
                filters = {
                    f["filterType"]: {k: v for k, v in f.items() if k != "filterType"}
                    for f in entry.get("filters", [])
                    if isinstance(f, dict) and "filterType" in f
                }
                row.update(
                    base_asset=entry.get("baseAsset", base),
                    quote_asset=entry.get("quoteAsset", quote),
                    status=entry.get("status", "UNKNOWN"),
                    filters=filters,
                    source="exchange",
                    tick_size=filters.get("PRICE_FILTER", {}).get("tickSize"),
                    step_size=filters.get("LOT_SIZE", {}).get("stepSize"),
                    min_qty=filters.get("LOT_SIZE", {}).get("minQty"),
                    min_notional=(filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}).get("minNotional"),
                )
            out.append(row)
        return out

    # --- ticker ---------------------------------------------------------------------------------------
    async def ticker(self, symbol: str | None = None) -> list[dict[str, Any]]:
        syms = [symbol.upper()] if symbol else self.symbols
        gw = self.ctx.peer("gateway")
        out = []
        for sym in syms:
            tick = self.ticks.get(sym) or (getattr(gw, "last_tick", {}) or {}).get(sym)
            if tick is not None:
                out.append(
                    {
                        "symbol": sym,
                        "price": tick.price,
                        "bid": tick.bid,
                        "ask": tick.ask,
                        "time": tick.time,
                        "source": "tick",
                    }
                )
                continue
            last = await self.repo.range(sym, self.base, limit=1)
            if last:
                c = last[-1]
                out.append(
                    {
                        "symbol": sym,
                        "price": c.close,
                        "bid": None,
                        "ask": None,
                        "time": c.close_time,
                        "source": "candle",
                    }
                )
            else:
                out.append({"symbol": sym, "price": None, "bid": None, "ask": None, "time": None, "source": None})
        return out

    def router(self) -> APIRouter:
        r = APIRouter()

        def _time(v: str | None, name: str) -> int | None:
            if v is None or v == "":
                return None
            try:
                return check_epoch_ms(parse_time(v, name=name), name)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None

        @r.get("/candles", responses=error_responses(422))
        async def candles(
            symbol: str,
            interval: str | None = None,
            start: str | None = None,
            end: str | None = None,
            limit: int = Query(500, ge=1, le=MAX_LIMIT),
        ) -> list[dict[str, Any]]:
            """Candles oldest first; start/end are epoch ms or ISO dates (on open time, inclusive). Without
            start: the latest `limit`. Longer intervals are aggregated from the base interval."""
            try:
                rows = await self.candles(symbol, interval, _time(start, "start"), _time(end, "end"), limit)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            return msgspec.to_builtins(rows)

        @r.get("/symbols")
        async def symbols() -> list[dict[str, Any]]:
            """Configured symbols with their exchange filters when an exchange info is available."""
            return await self.symbol_list()

        @r.get("/ticker")
        async def ticker(symbol: str | None = None) -> list[dict[str, Any]]:
            """Last price per symbol (latest tick, else the last stored candle's close)."""
            return await self.ticker(symbol)

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"symbols": len(self.symbols), "ticks": len(self.ticks)})
