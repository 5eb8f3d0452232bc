"""Portfolio service (reference port 8000): balances, their value, capital pockets and reconciliation.

At start, with no stored balances, they are read from the exchange (live mode, or `ctx.wiring.portfolio_exchange`)
so the pockets are funded from the first entry on; if the exchange does not answer, the pockets stay at 0 (no
entry on unknown funds) and are spread over the first `portfolio.balances` update as soon as it arrives.

Balances come from two sources. `portfolio.balances` (BalancesUpdate, published by the trader after fills
and on its periodic exchange sync) is authoritative: its rows overwrite ours. Until the first such update
in this process, each `trade.executions` Fill is applied to the stored balances (once per message id), so
a demo without exchange sync still has correct balances; after it, fills are left to the next sync (applying
them too would count them twice). With no balance at all in demo mode, the account starts with
PORTFOLIO_START_CAPITAL (default 10 000) of the quote asset.

Values are in the quote asset from the last candle close of `<ASSET><QUOTE>` (loaded from market_data at
start, then from `market.candles.<SYM>`). Jobs: revalue + reallocate the pockets when the total value moved
by more than `REALLOCATE_THRESHOLD`, and reconcile reservations against cycles and balances.

Several instances (Redis bus): active/standby on a leader lease (runtime/leader.py). Every instance consumes
every message (broadcast groups) for its prices; only the leader writes balances, reallocates the pockets and
runs the reconciliation (the settlement of forgotten reservations), so no reservation is released twice by two
instances. On winning the lease an instance reloads from the store (`load_state`) before acting. Reservations
themselves (the coordinator's reserve/release) are transactions of the shared ledger, not of this service.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fastapi import APIRouter

from roottrading import messages as m
from roottrading.capital.ledger import PocketLedger, fmt
from roottrading.capital.pnl import split_symbol
from roottrading.domain import Balance, Candle, Fill
from roottrading.domain.money import to_decimal
from roottrading.exchange.errors import ExchangeError
from roottrading.runtime.leader import Leadership, NotLeader, leadership_for
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.services.portfolio.reconcile import Reconciler
from roottrading.store import CandleRepo
from roottrading.store.repos_capital import BalanceRepo
from roottrading.store.repos_system import Processed

ZERO = Decimal(0)
REALLOCATE_THRESHOLD = Decimal("0.001")  # 0.1 % of the total value


class PortfolioService(Service):
    name = "portfolio"
    description = "Balances, portfolio value, capital pockets (reserve/release) and reconciliation."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.quote = s.quote_asset
        self.ledger = PocketLedger(ctx.db, ctx.clock, dict(s.pocket_config))
        self.balances = BalanceRepo(ctx.db)
        self.processed = Processed(ctx.db, "portfolio")
        self.prices: dict[str, Decimal] = {}  # symbol -> last close
        self.exchange_synced = False
        self.pockets_synced = False  # pockets spread over balances the exchange reported (or the demo seed)
        self.exchange_timeout_s = s.portfolio_exchange_timeout_s
        self.start_capital = s.portfolio_start_capital
        self.reallocate_s = s.portfolio_reallocate_s
        self.reconcile_s = s.portfolio_reconcile_s
        self.reconciler = Reconciler(
            ctx.db,
            self.ledger,
            ctx.clock,
            grace_ms=s.portfolio_release_grace_ms,
            stale_ms=s.portfolio_stale_reservation_ms,
        )
        self.total_value: Decimal | None = None
        self.lead: Leadership = Leadership()  # always leader until start() knows the bus
        self._loading = False  # load_state() running with the lease won: it writes before is_leader() turns true

    # ---- lifecycle -------------------------------------------------------------------------------------
    def consumes(self) -> list[Consumes]:
        # broadcast: leader and standbys each see every message (a standby keeps its prices warm)
        subs = [
            Consumes(m.PORTFOLIO_BALANCES, self.on_balances, broadcast=True),
            Consumes(m.TRADE_EXECUTIONS, self.on_fill, broadcast=True),
        ]
        subs += [Consumes(m.candles_topic(sym), self.on_candle, broadcast=True) for sym in self.ctx.settings.symbols]
        return subs

    def jobs(self) -> list[Job]:
        return [
            Job("reallocate", self.reallocate_s, self._leader_reallocate),
            Job("reconcile", self.reconcile_s, self._leader_reconcile),
        ]

    async def _leader_reallocate(self) -> None:
        if self.acting():  # a standby's job is a no-op, not an error logged every period
            await self.revalue_and_reallocate()

    async def _leader_reconcile(self) -> None:
        if self.acting():
            await self.reconcile()

    async def stop(self) -> None:
        await self.lead.stop()  # a standby takes over at once rather than after the lease

    async def start(self) -> None:
        candles = CandleRepo(self.ctx.db)
        for sym in self.ctx.settings.symbols:
            last = await candles.range(sym, self.ctx.settings.interval, limit=1)
            if last:
                self.prices[sym] = to_decimal(last[-1].close)
        self.lead = leadership_for(self.ctx, self.name, on_elected=self.load_state)
        if type(self.lead) is Leadership:
            await self.load_state()
        await self.lead.start()  # Redis: one attempt now; on winning, load_state() runs before it acts

    def acting(self) -> bool:
        """The leader, or the instance loading its state right after winning the lease."""
        return self._loading or self.lead.is_leader()

    async def load_state(self) -> None:
        """Balances and pockets from the store (seeded from the exchange or the demo capital when empty); the
        leader's start, and a standby's takeover (called with the lease won, before it acts on messages)."""
        self._loading = True
        try:
            await self._load_state()
        finally:
            self._loading = False

    async def _load_state(self) -> None:
        if not await self.balances.all():
            fetched = await self._exchange_balances()
            if fetched is not None:
                await self.balances.upsert(fetched, self.ctx.clock.now_ms())
                self.exchange_synced = self.pockets_synced = True
                self.log.info("balances read from the exchange at start", assets=len(fetched))
            elif self.ctx.settings.trading_mode == "demo":
                await self.balances.upsert(
                    [Balance(asset=self.quote, free=self.start_capital, locked=ZERO, value_quote=self.start_capital)],
                    self.ctx.clock.now_ms(),
                )
                self.log.info("demo account seeded", asset=self.quote, amount=fmt(self.start_capital))
        total = await self.revalue()
        await self.ledger.ensure_initialised(total)  # 0 when nothing is known yet: no entry on unknown funds
        if total > 0:  # pockets made before (an earlier run, another service's guess) follow the known total now
            await self.revalue_and_reallocate()

    async def _exchange_balances(self) -> list[Balance] | None:
        """The account's balances straight from the exchange, or None (demo without an exchange to ask, or the
        exchange not answering). Why at start: in split mode this service may start before the trader's first
        balance sync; pockets left at 0 until then refused every entry ("no funds available")."""
        reader = self.ctx.wiring.portfolio_exchange
        owned = False
        if reader is None and self.ctx.settings.trading_mode == "live":
            try:
                from roottrading.exchange.binance.adapter import BinanceExchange
            except ImportError:
                return None
            reader, owned = BinanceExchange(self.ctx.settings, user_stream=False, clock=self.ctx.clock), True
        if reader is None:
            return None
        try:
            bals = await asyncio.wait_for(reader.balances(), self.exchange_timeout_s)
        except (ExchangeError, TimeoutError, ConnectionError, OSError) as exc:
            self.log.warning("exchange balances unavailable at start; pockets wait for the first sync", error=repr(exc))
            return None
        finally:
            if owned:
                await reader.close()
        return [
            Balance(asset=b.asset, free=b.free, locked=b.locked, value_quote=b.value_quote)
            for b in bals.values()
            if b.free + b.locked > 0
        ]

    # ---- consumers -------------------------------------------------------------------------------------
    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self.prices[c.symbol] = to_decimal(c.close)

    async def on_balances(self, msg: m.Message) -> None:
        upd: m.BalancesUpdate = msg.payload
        self.exchange_synced = True
        if not self.acting():
            self.pockets_synced = False  # a standby funds the pockets from the store when it takes over
            return
        await self.balances.upsert(
            [
                Balance(
                    asset=b.asset,
                    free=b.free,
                    locked=b.locked,
                    value_quote=self.value_of(b.asset, b.total) if b.value_quote is None else b.value_quote,
                )
                for b in upd.balances
            ],
            self.ctx.clock.now_ms(),
        )
        if self.pockets_synced:
            await self.revalue()
        else:  # the first known balances: fund the pockets now, not at the next reallocation job
            await self.revalue_and_reallocate()
            self.pockets_synced = True

    async def on_fill(self, msg: m.Message) -> None:
        f: Fill = msg.payload
        self.prices[f.symbol] = f.price
        if self.exchange_synced or not self.acting():
            return
        base, quote = split_symbol(f.symbol, self.quote)
        if await self.balances.apply_fill(f, base, quote, self.processed, msg.id, self.ctx.clock.now_ms()):
            await self.revalue()

    # ---- valuation and pockets ---------------------------------------------------------------------------
    def price_of(self, asset: str) -> Decimal | None:
        """Price of one unit of `asset` in the quote asset (direct pair, or the inverse pair)."""
        if asset == self.quote:
            return Decimal(1)
        if (p := self.prices.get(asset + self.quote)) is not None:
            return p
        inverse = self.prices.get(self.quote + asset)
        return Decimal(1) / inverse if inverse else None

    def value_of(self, asset: str, amount: Decimal) -> Decimal | None:
        p = self.price_of(asset)
        return None if p is None else amount * p

    async def revalue(self) -> Decimal:
        """Recompute every balance's quote value from the latest prices; returns the total."""
        balances = await self.balances.all()
        fresh = []
        for b in balances:
            v = self.value_of(b.asset, b.total)
            fresh.append(
                Balance(asset=b.asset, free=b.free, locked=b.locked, value_quote=v if v is not None else b.value_quote)
            )
        if self.acting():  # a standby values in memory only
            await self.balances.upsert(fresh, self.ctx.clock.now_ms())
        self.total_value = sum((b.value_quote or ZERO for b in fresh), ZERO)
        return self.total_value

    async def revalue_and_reallocate(self, *, force: bool = False) -> bool:
        """Reallocate the pockets when the total value moved by more than the threshold (or `force`). Raises
        NotLeader on a standby."""
        if not self.acting():
            raise NotLeader(self.name, await self.lead.leader())
        total = await self.revalue()
        await self.ledger.ensure_initialised(total)
        pockets_sum = sum((p.current_value for p in await self.ledger.pockets()), ZERO)
        moved = abs(total - pockets_sum)
        if force or (total > 0 and moved > total * REALLOCATE_THRESHOLD) or (total == 0 and moved > 0):
            await self.ledger.reallocate(total)
            self.log.info("pockets reallocated", total_value=fmt(total), previous=fmt(pockets_sum))
            return True
        return False

    async def reconcile(self) -> dict[str, Any]:
        """Raises NotLeader on a standby: only the leader settles reservations."""
        if not self.acting():
            raise NotLeader(self.name, await self.lead.leader())
        return await self.reconciler.run(await self.balances.all(), self.quote, self.price_of)

    def router(self) -> APIRouter:
        from roottrading.services.portfolio.api import build_router

        return build_router(self)

    async def health(self) -> HealthStatus:
        last = self.reconciler.last  # drift is reported, not treated as an outage
        return HealthStatus(
            details={
                "total_value": fmt(self.total_value),
                "quote_asset": self.quote,
                "prices": len(self.prices),
                "source": "exchange" if self.exchange_synced else "fills",
                "last_reconcile": last.get("time") if last else None,
                "drift_warnings": last.get("drift_warnings") if last else [],
                "leadership": self.lead.details(),
            }
        )
