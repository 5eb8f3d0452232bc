"""`roottrading tune`: the command around tune.py (evidence from the database, decisions applied through the API).

Examples:
  roottrading tune --dry-run                              # the plan: per symbol, ranked, with the reasons
  roottrading tune --min-sharpe 1 --min-trades 20 --top 3 --yes
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from roottrading.backtest.cli import _fail


def tune(
    min_sharpe: Annotated[float, typer.Option("--min-sharpe", help="out-of-sample Sharpe at least")] = 0.5,
    min_trades: Annotated[int, typer.Option("--min-trades", help="out-of-sample trades at least")] = 10,
    max_drawdown: Annotated[
        float | None, typer.Option("--max-drawdown", help="out-of-sample max drawdown at most, percent")
    ] = None,
    min_dsr: Annotated[float | None, typer.Option("--min-dsr", help="deflated Sharpe ratio (mean) at least")] = None,
    min_live_trades: Annotated[
        int, typer.Option("--min-live-trades", help="closed paper/live cycles before live PnL counts as evidence")
    ] = 10,
    top: Annotated[int | None, typer.Option("--top", help="enable at most K strategies per symbol")] = None,
    unscored: Annotated[str, typer.Option(help="strategies without evidence: disable | keep")] = "disable",
    symbols: Annotated[str | None, typer.Option(help="symbols to tune (default: SYMBOLS setting)")] = None,
    storage: Annotated[str | None, typer.Option(help="where the studies are (default: beside DATABASE_URL)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="apply without asking")] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="the running platform (default: HTTP_HOST:HTTP_PORT)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Rank strategies per symbol from walk-forward results and paper/live PnL; enable the passing ones."""
    from roottrading.config import ConfigError, load_settings
    from roottrading.optimize import apply, results
    from roottrading.optimize import tune as tn
    from roottrading.optimize.study import make_storage, platform_storage_url, storage_url

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if unscored not in ("disable", "keep"):
        raise _fail("--unscored: use disable or keep")
    if not (storage or settings.database_url):
        raise _fail("no storage: set DATABASE_URL or pass --storage")
    t = tn.Thresholds(
        min_sharpe=min_sharpe,
        min_trades=min_trades,
        max_drawdown=None if max_drawdown is None else max_drawdown / 100,
        min_dsr=min_dsr,
        min_live_trades=min_live_trades,
        top=top,
        unscored=unscored,
    )
    syms = [s.strip().upper() for s in (symbols.split(",") if symbols else settings.symbols) if s.strip()]
    url_ = storage_url(storage) if storage else platform_storage_url(settings.database_url)
    wf = tn.walk_forward_evidence(results.list_studies(make_storage(url_)))
    live = tn.live_evidence(asyncio.run(_pnls(settings))) if settings.database_url else {}
    platform = apply.Platform.connect(
        url or f"http://{settings.http_host}:{settings.http_port}", apply.platform_token(settings)
    )
    try:
        current = {(name, sym): bool(d["enabled"]) for sym in syms for name, d in platform.strategies(sym).items()}
        decisions = tn.decide(current, wf, live, t)
        if json_out:
            typer.echo(json.dumps([d.as_json() for d in decisions], indent=2, default=str))
        else:
            typer.echo(tn.format_plan(decisions))
        changes = [d for d in decisions if d.change]
        typer.echo(
            f"{len(changes)} change(s): "
            + (
                ", ".join(f"{'enable' if d.enable else 'disable'} {d.strategy} on {d.symbol}" for d in changes)
                or "none"
            ),
            err=json_out,
        )
        if dry_run or not changes:
            return
        if not yes and not typer.confirm("apply this plan to the running platform?", default=False):
            typer.echo("not applied", err=json_out)
            return
        for d in changes:
            platform.update(d.strategy, d.symbol, enabled=d.enable)
    except apply.ApplyError as exc:
        raise _fail(f"tune: {exc}") from None
    typer.echo(f"applied {len(changes)} change(s); the platform keeps them across restarts", err=json_out)


async def _pnls(settings: Any) -> list[Any]:
    """Every paper/live cycle's PnL from the platform's store (none when the store has no such table yet)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from roottrading.capital.performance import load_pnls
    from roottrading.store import Database

    db = Database(settings.database_url)
    try:
        return await load_pnls(db, quote_asset=settings.quote_asset)
    except (OperationalError, ProgrammingError):  # a fresh database: nothing traded yet
        return []
    finally:
        await db.close()
