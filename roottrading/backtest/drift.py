"""Drift report (`roottrading compare`): what the platform did (live, paper or demo: the store) beside a replay
backtest of the same period and settings, trade by trade, every difference with its reason.

Why: "the backtest and live trading disagree and nothing explains why" is the complaint this answers. Both
sides are read the same way, from a store: the live one, and the replay engine's temporary store (it is the
platform's own services, so it writes the same tables). Trades are matched on the signal id, which is
deterministic (`strategy:symbol:interval:open_time`) on both sides, so a match is never a guess. Then:

- matched trades: entry/exit time, price and size differences, with their reasons (latency: filled later
  than the backtest; a fill at another price; a partial fill; another size; another exit);
- a trade only one side has: why the other side has none, from that side's stored signals, the
  coordinator's or risk manager's stored decision, and the order's status (rejected, partially filled).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from roottrading.backtest.model import BacktestConfig
from roottrading.backtest.overrides import PlatformOverrides
from roottrading.capital.pnl import cycle_pnl
from roottrading.domain import Candle
from roottrading.domain.money import plain_text
from roottrading.store import Database
from roottrading.store.repos_capital import TradeReadRepo
from roottrading.store.tables import decisions, trade_executions, trading_signals


@dataclass(frozen=True)
class StoredTrade:
    """A trade cycle with an entry fill, as one side's store holds it."""

    cycle_id: str
    signal_id: str | None
    symbol: str
    strategy: str
    entry_time: int
    entry_price: Decimal
    exit_time: int | None
    exit_price: Decimal | None
    quantity: Decimal
    ordered: Decimal | None  # the entry order's quantity and what of it was executed (less: a partial fill);
    executed: Decimal | None  # `quantity` is the cycle's, net of a fee paid in the base asset
    fees: Decimal
    pnl: Decimal
    exit_reason: str | None


@dataclass
class StoreView:
    """One side: its trades in the period, and what it stored about every signal (to explain a missing one)."""

    trades: list[StoredTrade]
    signals: set[str]
    decisions: dict[str, dict[str, Any]]  # signal id -> its latest decision row
    orders: dict[str, dict[str, Any]]  # signal id -> its entry order row (trade_executions)


@dataclass(frozen=True)
class Match:
    signal_id: str
    symbol: str
    strategy: str
    live_entry_time: int
    backtest_entry_time: int
    entry_time_diff_ms: int  # live - backtest
    live_entry_price: str
    backtest_entry_price: str
    entry_price_diff_bps: float
    live_quantity: str
    backtest_quantity: str
    quantity_diff: str
    exit_time_diff_ms: int | None
    exit_price_diff_bps: float | None
    pnl_diff: str
    reasons: list[str]  # empty: the same trade on both sides


@dataclass(frozen=True)
class Unmatched:
    side: str  # "live" (the platform traded, the backtest did not) or "backtest"
    signal_id: str | None
    symbol: str
    strategy: str
    entry_time: int
    entry_price: str
    quantity: str
    reason: str


@dataclass
class DriftReport:
    start_ms: int
    end_ms: int
    matched: list[Match] = field(default_factory=list)
    live_only: list[Unmatched] = field(default_factory=list)
    backtest_only: list[Unmatched] = field(default_factory=list)

    @property
    def identical(self) -> int:
        return sum(1 for m in self.matched if not m.reasons)

    def summary(self) -> str:
        return (
            f"{len(self.matched)} matched ({self.identical} identical), {len(self.live_only)} live only, "
            f"{len(self.backtest_only)} backtest only"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start_ms,
            "end": self.end_ms,
            "summary": self.summary(),
            "matched": [asdict(m) for m in self.matched],
            "live_only": [asdict(u) for u in self.live_only],
            "backtest_only": [asdict(u) for u in self.backtest_only],
        }


# ---- reading a store ------------------------------------------------------------------------------------


async def read_store(
    db: Database,
    start_ms: int,
    end_ms: int,
    *,
    symbols: Iterable[str] = (),
    strategies: Iterable[str] = (),
    quote: str = "USDT",
    marks: Mapping[str, Decimal] | None = None,
) -> StoreView:
    """Trades whose entry filled in [start, end) (optionally only some symbols/strategies), and the signals,
    decisions and entry orders of that period. `marks`: last prices to value trades still open."""
    syms, strats = set(symbols), set(strategies)

    def wanted(symbol: str, strategy: str) -> bool:
        return (not syms or symbol in syms) and (not strats or strategy in strats)

    repo = TradeReadRepo(db)
    cycles = [c for c in await repo.cycles() if wanted(c.symbol, c.strategy)]
    fills = await repo.fills_by_cycle(cycles)
    async with db.connect() as conn:
        order_rows = {r["order_id"]: dict(r) for r in (await conn.execute(select(trade_executions))).mappings().all()}
        sig_rows = (
            await conn.execute(
                select(trading_signals.c.id, trading_signals.c.symbol, trading_signals.c.strategy).where(
                    trading_signals.c.time >= start_ms, trading_signals.c.time <= end_ms
                )
            )
        ).all()
        # a decision is taken after its signal's candle closed, so at or after the period's start
        dec_rows = (
            await conn.execute(select(decisions).where(decisions.c.time >= start_ms).order_by(decisions.c.id))
        ).mappings()
        decided = {r["signal_id"]: dict(r) for r in dec_rows}  # the latest decision wins
    trades = []
    orders: dict[str, dict[str, Any]] = {}
    for c in cycles:
        entry = order_rows.get(c.entry_order_id or "")
        if c.signal_id and entry is not None:
            orders[c.signal_id] = entry
        buys = [f for f in fills.get(c.id, []) if _side(f) == "BUY"]
        if c.entry_price is None or not buys:
            continue  # never filled: not a trade (the order row says why)
        entry_time = min(int(f["time"]) for f in buys)
        if not start_ms <= entry_time < end_ms:
            continue
        sells = [int(f["time"]) for f in fills.get(c.id, []) if _side(f) == "SELL"]
        mark = (marks or {}).get(c.symbol)
        p = cycle_pnl(c, fills.get(c.id, []), quote_asset=quote, mark=mark)
        closed = c.status.is_terminal
        trades.append(
            StoredTrade(
                cycle_id=c.id,
                signal_id=c.signal_id,
                symbol=c.symbol,
                strategy=c.strategy,
                entry_time=entry_time,
                entry_price=c.entry_price,
                exit_time=(max(sells) if sells else c.updated_at) if closed else None,
                exit_price=c.exit_price if closed else None,
                quantity=c.quantity,
                ordered=None if entry is None else Decimal(str(entry["quantity"])),
                executed=None if entry is None else Decimal(str(entry["executed_quantity"])),
                fees=p.fees,
                pnl=p.total,
                exit_reason=(c.close_reason or "closed") if closed else "open",
            )
        )
    trades.sort(key=lambda t: (t.entry_time, t.symbol, t.strategy))
    signals = {r[0] for r in sig_rows if wanted(r[1], r[2])}
    return StoreView(trades, signals, decided, orders)


def _side(f: Mapping[str, Any]) -> str:
    return str(getattr(f["side"], "value", f["side"]))


# ---- matching ---------------------------------------------------------------------------------------------


def _bps(a: Decimal, b: Decimal) -> float:
    return 0.0 if b == 0 else float((a - b) / b * 10_000)


def _match_reasons(live: StoredTrade, bt: StoredTrade) -> list[str]:
    out = []
    dt = live.entry_time - bt.entry_time
    if dt > 0:
        out.append(f"latency: live filled {dt / 1000:g} s after the backtest")
    elif dt < 0:
        out.append(f"live filled {-dt / 1000:g} s before the backtest")
    if live.entry_price != bt.entry_price:
        out.append(f"fill at another price: {plain_text(live.entry_price)} vs {plain_text(bt.entry_price)}")
    if live.ordered is not None and live.executed is not None and live.executed < live.ordered:
        out.append(f"partial fill: {plain_text(live.executed)} of {plain_text(live.ordered)}")
    elif live.quantity != bt.quantity:
        out.append(
            f"another size: {plain_text(live.quantity)} vs {plain_text(bt.quantity)} (sizing follows the equity)"
        )
    if (live.exit_time is None) != (bt.exit_time is None):
        out.append(f"exit: live {live.exit_reason}, backtest {bt.exit_reason}")
    elif live.exit_time is not None and bt.exit_time is not None:
        if live.exit_reason != bt.exit_reason:
            out.append(f"another exit: live {live.exit_reason}, backtest {bt.exit_reason}")
        elif live.exit_time != bt.exit_time or live.exit_price != bt.exit_price:
            out.append(f"exit ({live.exit_reason}) at another time or price")
    return out


def _who(decision: Mapping[str, Any]) -> str:
    stage = (decision.get("details") or {}).get("stage")
    return "risk manager" if stage == "risk" else "coordinator"


def _why_missing(signal_id: str | None, other: StoreView, other_name: str) -> str:
    """Why `other` (the side without the trade) has none for this signal, from what it stored."""
    if signal_id is None:
        return "no signal id stored with the cycle: cannot be traced"
    if signal_id not in other.signals and signal_id not in other.decisions:
        return f"no signal in the {other_name} (the strategy did not fire on that candle there)"
    d = other.decisions.get(signal_id)
    if d is None:
        return f"the {other_name} had the signal but stored no decision for it"
    if d["decision"] != "accepted":
        return f"the {other_name}'s {_who(d)} {d['decision']} it: {d['reason']}"
    order = other.orders.get(signal_id)
    if order is None:
        return f"accepted by the {other_name}'s coordinator, but no order was stored"
    if order.get("reject_reason") or order.get("status") in ("REJECTED", "EXPIRED", "CANCELED"):
        return f"the {other_name}'s order {order.get('status')}: {order.get('reject_reason') or 'no reason stored'}"
    return f"the {other_name}'s order was not filled (status {order.get('status')})"


def _unmatched(side: str, t: StoredTrade, reason: str) -> Unmatched:
    return Unmatched(
        side, t.signal_id, t.symbol, t.strategy, t.entry_time, plain_text(t.entry_price), plain_text(t.quantity), reason
    )


def match(live: StoreView, backtest: StoreView, start_ms: int, end_ms: int) -> DriftReport:
    report = DriftReport(start_ms, end_ms)
    bt_by_sig = {t.signal_id: t for t in backtest.trades if t.signal_id}
    live_sigs = {t.signal_id for t in live.trades if t.signal_id}
    for t in live.trades:
        b = bt_by_sig.get(t.signal_id) if t.signal_id else None
        if b is None:
            report.live_only.append(_unmatched("live", t, _why_missing(t.signal_id, backtest, "backtest")))
            continue
        report.matched.append(
            Match(
                signal_id=t.signal_id or "",
                symbol=t.symbol,
                strategy=t.strategy,
                live_entry_time=t.entry_time,
                backtest_entry_time=b.entry_time,
                entry_time_diff_ms=t.entry_time - b.entry_time,
                live_entry_price=plain_text(t.entry_price),
                backtest_entry_price=plain_text(b.entry_price),
                entry_price_diff_bps=_bps(t.entry_price, b.entry_price),
                live_quantity=plain_text(t.quantity),
                backtest_quantity=plain_text(b.quantity),
                quantity_diff=plain_text(t.quantity - b.quantity),
                exit_time_diff_ms=None if t.exit_time is None or b.exit_time is None else t.exit_time - b.exit_time,
                exit_price_diff_bps=(
                    None if t.exit_price is None or b.exit_price is None else _bps(t.exit_price, b.exit_price)
                ),
                pnl_diff=plain_text(t.pnl - b.pnl),
                reasons=_match_reasons(t, b),
            )
        )
    for b in backtest.trades:
        if b.signal_id is None or b.signal_id not in live_sigs:
            report.backtest_only.append(_unmatched("backtest", b, _why_missing(b.signal_id, live, "live platform")))
    return report


# ---- the whole comparison ---------------------------------------------------------------------------------


async def compare(
    live_db: Database,
    config: BacktestConfig,
    candles: Mapping[str, Sequence[Candle]],
    *,
    overrides: PlatformOverrides | None = None,
    quote: str | None = None,
) -> DriftReport:
    """Backtest `config` on `candles` with the replay engine (it may include warm-up candles before
    `config.start_ms`: only trades entered in [start, end) are compared) and match it with `live_db`."""
    from roottrading.backtest.overrides import infer_quote, parse_overrides
    from roottrading.backtest.replay import run_replay

    ov = overrides if overrides is not None else parse_overrides(config.settings)
    q = quote or infer_quote(config.symbols) or "USDT"
    marks = {s: Decimal(str(cs[-1].close)) for s, cs in candles.items() if cs}
    with tempfile.TemporaryDirectory(prefix="rt-compare-") as tmp:
        await run_replay(config, candles, overrides=ov, workdir=Path(tmp))
        bt_db = Database(f"sqlite+aiosqlite:///{tmp}/replay.db")
        try:
            bt = await read_store(
                bt_db,
                config.start_ms,
                config.end_ms,
                symbols=config.symbols,
                quote=q,
                marks=marks,
                strategies=config.strategies,
            )
        finally:
            await bt_db.close()
    live = await read_store(
        live_db,
        config.start_ms,
        config.end_ms,
        symbols=config.symbols,
        strategies=config.strategies,
        quote=q,
        marks=marks,
    )
    return match(live, bt, config.start_ms, config.end_ms)


def render(report: DriftReport) -> Any:
    """The report as rich tables (matched, then unmatched), for the terminal."""
    from rich.console import Group
    from rich.table import Table

    from roottrading.backtest.data import fmt_time

    m = Table(title=f"Matched trades: {report.summary()}")
    for col in (
        "symbol",
        "strategy",
        "entry (live)",
        "dt s",
        "price live",
        "price bt",
        "bps",
        "qty live",
        "qty bt",
        "pnl diff",
        "reasons",
    ):
        m.add_column(col)
    for x in report.matched:
        m.add_row(
            x.symbol,
            x.strategy,
            fmt_time(x.live_entry_time),
            f"{x.entry_time_diff_ms / 1000:g}",
            x.live_entry_price,
            x.backtest_entry_price,
            f"{x.entry_price_diff_bps:.1f}",
            x.live_quantity,
            x.backtest_quantity,
            x.pnl_diff,
            "; ".join(x.reasons) or "identical",
        )
    u = Table(title="Unmatched trades")
    for col in ("only in", "symbol", "strategy", "entry", "price", "qty", "reason"):
        u.add_column(col)
    for y in [*report.live_only, *report.backtest_only]:
        u.add_row(y.side, y.symbol, y.strategy, fmt_time(y.entry_time), y.entry_price, y.quantity, y.reason)
    return Group(m, u)


# ---- `roottrading compare` --------------------------------------------------------------------------------


def cli_main(
    start: str,
    end: str,
    symbols: str | None,
    strategies: list[str],
    interval: str | None,
    data: str,
    balance: str,
    sets: list[str],
    as_json: bool,
) -> int:
    """Compare the store (DATABASE_URL) with a replay backtest of [start, end). Exit status: 0 every trade
    identical, 1 differences (each with its reason), 2 bad input or missing data."""
    import asyncio
    import json

    import typer

    from roottrading.backtest.cli import _fail, _period, _resolve_strategies
    from roottrading.backtest.data import MissingData, clean, load_history
    from roottrading.backtest.overrides import OverrideError, parse_overrides, split_assignment
    from roottrading.config import load_settings
    from roottrading.domain import interval_ms
    from roottrading.runtime.logsetup import configure_logging
    from roottrading.strategies.base import evaluation_window
    from roottrading.strategies.loader import load_strategies

    settings = load_settings()
    configure_logging("ERROR", settings.effective_log_format)  # the services' per-signal logs are noise here
    start_ms, end_ms, _ = _period(start, end, None)
    iv = interval or settings.interval
    syms = tuple(s.strip().upper() for s in (symbols.split(",") if symbols else settings.symbols) if s.strip())
    names = _resolve_strategies(strategies, settings)
    try:
        config = BacktestConfig(
            strategies=names,
            symbols=syms,
            interval=iv,
            start_ms=start_ms,
            end_ms=end_ms,
            data=data,
            balance=Decimal(balance),
            engine="replay",
            settings=dict(split_assignment(s) for s in sets),
        )
        ov = parse_overrides(config.settings)
    except (OverrideError, ArithmeticError, ValueError) as exc:
        raise _fail(str(exc)) from None
    # the live analyzer was warm at `start`: give the backtest the same history before it
    loaded = load_strategies(settings.strategies_dir, use_entry_points=False, check_bias=False).strategies
    warm = max((evaluation_window(loaded[n]()) for n in names if n in loaded), default=0) * interval_ms(iv)

    async def go() -> DriftReport:
        raw = await load_history(data, syms, iv, start_ms - warm, end_ms, database_url=settings.database_url)
        db = Database(settings.database_url)
        try:
            return await compare(db, config, clean(raw), overrides=ov)
        finally:
            await db.close()

    try:
        report = asyncio.run(go())
    except MissingData as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        from rich.console import Console

        Console().print(render(report))
    return 0 if report.identical == len(report.matched) and not report.live_only and not report.backtest_only else 1
