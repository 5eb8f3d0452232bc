"""Universe service: which pairs the platform trades, refreshed on a schedule in market time.

Every `refresh` of the universe file (UNIVERSE_CONFIG; docs/universe.md), on the platform clock, it reads the
market (snapshot.py), runs the pure selection (roottrading.universe) and, when the result differs from what
was last announced, publishes `universe.changed` with the full lists. Pairs that left but still have an open
cycle stay in `streamed` (their candles and ticks keep flowing) until the cycle ends: the service follows
`cycle.updates` for that, and announces the drop as soon as the last such cycle closes.

Unset UNIVERSE_CONFIG: the universe is exactly SYMBOLS, nothing is fetched and nothing is ever published
(current deployments behave as before); `GET /api/universe` still shows the list.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from roottrading import messages as m
from roottrading.domain import TradeCycle
from roottrading.exchange.binance.rest_market import BinanceMarketRest, RestMarketError
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.services.universe.persist import STATE_KEY, from_doc, to_doc
from roottrading.services.universe.snapshot import MarketSnapshot
from roottrading.store.repos_orders import CycleRepo
from roottrading.store.repos_safety import SafetyStateRepo
from roottrading.universe import (
    Selection,
    UniverseState,
    load_universe,
    next_refresh,
    select,
    static_universe,
)

POLL_S = 1.0  # how often the job looks at the clock; a refresh is due at each multiple of `refresh`
RETRY_MS = 60_000  # after a failed read of the market, in market time


class UniverseService(Service):
    name = "universe"
    description = "Selects the pairs to trade (static, volume-ranked, filtered, scored) and announces changes."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.dynamic = s.universe_config is not None
        self.cfg = load_universe(s.universe_config) if s.universe_config is not None else static_universe(s.symbols)
        start = tuple(s.symbols)
        self.state = UniverseState(members=frozenset(start))
        self.announced: tuple[tuple[str, ...], tuple[str, ...]] = (start, start)
        self.selection: Selection | None = None
        self.open_cycles: dict[str, set[str]] = {}
        self.next_due = 0
        self.refreshes = 0
        self.last_error: str | None = None
        self.rest: BinanceMarketRest | None = None
        self.snapshot: MarketSnapshot | None = None
        self.saved = SafetyStateRepo(ctx.db)
        self.restored_members: tuple[str, ...] | None = None  # from the stored document, until a refresh
        self.restored_pairs: list[dict[str, Any]] = []
        self.restored_at: int | None = None

    async def start(self) -> None:
        if not self.dynamic:
            return
        await self._restore()
        for c in await CycleRepo(self.ctx.db).open_cycles():
            self.open_cycles.setdefault(c.symbol, set()).add(c.id)
        if not self.cfg.is_static:
            self.rest = BinanceMarketRest(self.ctx.settings.binance_rest_url)
            self.snapshot = MarketSnapshot(self.rest, self.cfg, self.ctx.settings.interval)

    async def stop(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.CYCLE_UPDATES, self.on_cycle)] if self.dynamic else []

    def jobs(self) -> list[Job]:
        return [Job("refresh", POLL_S, self.tick, run_at_start=True)] if self.dynamic else []

    # --- refresh ----------------------------------------------------------------------------------------
    async def _restore(self) -> None:
        """Resume the stored universe (members, cooldowns, next refresh instant) instead of SYMBOLS. It is
        announced by the first job tick (hosts subscribe to `universe.changed` after services start)."""
        doc = await self.saved.get(STATE_KEY)
        saved = from_doc(doc) if doc is not None else None
        if saved is None:
            return
        self.state, self.next_due = saved.state, saved.next_due
        self.restored_members, self.restored_pairs, self.restored_at = saved.members, saved.pairs, saved.at
        self.announced = ((), ())  # announce it even if it equals SYMBOLS: the analyzer learns who may enter
        self.log.info("universe restored", members=len(saved.members), cooldowns=len(saved.state.left_at))

    async def tick(self) -> None:
        now = self.ctx.clock.now_ms()
        if now >= self.next_due:
            await self.refresh()
        elif self.selection is None and self.restored_members is not None:
            await self._announce(self.restored_at or now, [], [])  # the restored list, to every follower

    async def refresh(self) -> Selection | None:
        """Select now (market time) and announce the result if it changed. A failed read of the market keeps
        the current universe and is tried again a minute (of market time) later."""
        at = self.ctx.clock.now_ms()
        try:
            stats = await self.snapshot.stats(at) if self.snapshot is not None else {}
        except (RestMarketError, OSError, KeyError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.next_due = at + RETRY_MS
            self.log.warning("universe refresh failed; keeping the current list", error=self.last_error)
            return None
        self.next_due = next_refresh(at, self.cfg.refresh_ms)
        sel = select(self.cfg, stats, self.state, at)
        # stored before it is announced: a crash may lose the announcement (re-sent at start), not the state
        await self.saved.put(STATE_KEY, to_doc(sel.members, sel.state, at, self.next_due, _pairs_doc(sel)), at)
        self.state, self.selection = sel.state, sel
        self.refreshes += 1
        self.last_error = None
        if sel.added or sel.removed:
            self.log.info("universe changed", added=list(sel.added), removed=list(sel.removed), size=len(sel.members))
        await self._announce(at, list(sel.added), list(sel.removed))
        return sel

    def members(self) -> list[str]:
        if self.selection is not None:
            return list(self.selection.members)
        if self.restored_members is not None:
            return list(self.restored_members)
        return sorted(self.state.members)

    def streamed(self) -> list[str]:
        """Members, then pairs out of the universe that still have an open cycle."""
        members = self.members()
        held = sorted(s for s, ids in self.open_cycles.items() if ids and s not in members)
        return members + held

    async def _announce(self, at: int, added: list[str], removed: list[str]) -> None:
        now = (tuple(self.members()), tuple(self.streamed()))
        if now == self.announced:
            return
        self.announced = now
        msg = m.UniverseChanged(time=at, members=list(now[0]), streamed=list(now[1]), added=added, removed=removed)
        await self.ctx.publish(m.UNIVERSE_CHANGED, msg, key="universe")

    async def on_cycle(self, msg: m.Message) -> None:
        c: TradeCycle = msg.payload
        ids = self.open_cycles.setdefault(c.symbol, set())
        if c.status.is_terminal:
            ids.discard(c.id)
        else:
            ids.add(c.id)
        if (
            self.selection is not None or self.restored_members is not None
        ):  # a left pair's last cycle closed: its streams may stop now
            await self._announce(self.ctx.clock.now_ms(), [], [])

    # --- API ----------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        sel = self.selection
        pairs = _pairs_doc(sel) if sel is not None else list(self.restored_pairs)
        if sel is None and not self.dynamic:
            pairs = [{"symbol": s, "selected": True, "reason": "SYMBOLS (no UNIVERSE_CONFIG)"} for s in self.members()]
        return {
            "dynamic": self.dynamic,
            "time": sel.at if sel is not None else self.restored_at,
            "restored": sel is None and self.restored_members is not None,
            "next_refresh": self.next_due if self.dynamic else None,
            "members": self.members(),
            "streamed": self.streamed(),
            "open_cycles": {s: len(ids) for s, ids in sorted(self.open_cycles.items()) if ids},
            "pairs": pairs,
            "errors": self.snapshot.errors[-20:] if self.snapshot is not None else [],
            "last_error": self.last_error,
            "config": self.cfg.model_dump(mode="json"),
        }

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/" if self.ctx.per_service_http else "")  # GET /api/universe, or GET / on its own port
        async def universe() -> dict[str, Any]:
            """The current universe: members, pairs streamed for open cycles, and every pair judged at the last
            refresh with its scores and the reason it is in or out."""
            return self.describe()

        @r.post("/refresh")
        async def refresh() -> dict[str, Any]:
            """Refresh now (market time) instead of at the next scheduled instant."""
            if self.dynamic:
                await self.refresh()
            return self.describe()

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(
            "degraded" if self.last_error else "ok",
            {"members": len(self.members()), "refreshes": self.refreshes, "last_error": self.last_error},
        )


def _pairs_doc(sel: Selection) -> list[dict[str, Any]]:
    """Every pair judged at a refresh, as JSON: its verdict, rank, scores and statistics."""
    pairs = []
    for p in sel.pairs:
        st = p.stats
        pairs.append(
            {
                "symbol": p.symbol,
                "selected": p.selected,
                "reason": p.reason,
                "rank": p.rank,
                "scores": dict(p.scores),
                "stats": None
                if st is None
                else {
                    "last_price": st.last_price,
                    "quote_volume": st.quote_volume,
                    "volatility": st.volatility,
                    "momentum": st.momentum,
                    "spread_pct": st.spread_pct,
                    "age_days": round(st.age_days, 3),
                },
            }
        )
    return pairs
