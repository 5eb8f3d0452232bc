"""`roottrading optimize`: search a strategy's parameters on history, walk-forward, resumable, in parallel.

Examples:
  roottrading optimize --strategy ema_cross --symbols BTCUSDT --interval 1h --data data/parquet \\
      --start 2024-01-01 --end 2025-01-01 --stake 1000 --trials 200 --walk-forward train=90d,test=30d \\
      --space fast=5:30 --space slow=20:120:5 --objective sharpe --min-trades 5 --json opt.json
  roottrading optimize ... --study-name my-study --resume     # continue after a crash or Ctrl-C
  roottrading optimize ... --apply                            # then set the chosen parameters (diff, confirm)

Errors for the user exit with status 2 and one message; Ctrl-C stops (status 130) and `--resume` continues.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from roottrading.backtest.cli import _fail, _period, _resolve_strategies, parse_money_and_overrides
from roottrading.backtest.model import BacktestConfig


def optimize(
    strategy: Annotated[str, typer.Option("--strategy", help="the strategy to tune (one)")],
    trials: Annotated[int, typer.Option("--trials", help="trials per study (per walk-forward window)")] = 100,
    symbols: Annotated[str | None, typer.Option(help="symbol (default: SYMBOLS setting; fast models one)")] = None,
    interval: Annotated[str | None, typer.Option(help="candle interval (default: INTERVAL setting)")] = None,
    start: Annotated[str | None, typer.Option(help="ISO date/time (UTC) or epoch ms, inclusive")] = None,
    end: Annotated[str | None, typer.Option(help="ISO date/time (UTC) or epoch ms, exclusive (default: now)")] = None,
    days: Annotated[float | None, typer.Option(help="period length in days (ending at --end or now)")] = None,
    data: Annotated[str, typer.Option(help="store, bundled, a Parquet folder, or Binance kline files")] = "store",
    balance: Annotated[str, typer.Option(help="starting balance in the quote asset")] = "10000",
    set_: Annotated[list[str], typer.Option("--set", help="ANY platform setting KEY=VALUE (as backtest)")] = [],  # noqa: B006
    stake: Annotated[str | None, typer.Option(help="fixed quote amount per trade (the fast engine needs it)")] = None,
    space: Annotated[
        list[str], typer.Option("--space", help="narrow/extend the search: KEY=LO:HI[:STEP] or KEY=a,b,c")
    ] = [],  # noqa: B006
    objective: Annotated[str, typer.Option(help="sharpe | sortino | calmar | profit | profit_factor")] = "sharpe",
    min_trades: Annotated[int, typer.Option("--min-trades", help="prune trials with fewer closed trades")] = 1,
    max_drawdown: Annotated[
        float | None, typer.Option("--max-drawdown", help="prune trials deeper than this, in percent (e.g. 20)")
    ] = None,
    sampler: Annotated[str, typer.Option(help="tpe | random | grid")] = "tpe",
    seed: Annotated[int | None, typer.Option(help="sampler seed (reproducible with --jobs 1)")] = None,
    sampler_history: Annotated[
        int, typer.Option("--sampler-history", help="finished trials the sampler sees: the best half + the latest")
    ] = 1000,
    walk_forward: Annotated[
        str | None, typer.Option("--walk-forward", help="train=90d,test=30d[,step=30d] (rolling windows)")
    ] = None,
    anchored: Annotated[bool, typer.Option("--anchored", help="walk-forward training always from the start")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", help="worker processes (default: all local cores)")] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="a Dask scheduler (tcp://host:8786) or local:N (N local workers)")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna RDB URL (default: DATABASE_URL, the platform's database)")
    ] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="default: derived from the question")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the study of that name")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="re-run chosen params on replay")] = True,
    fallback: Annotated[
        str, typer.Option(help="trials fast cannot model: replay (run them there, slow) or skip (prune)")
    ] = "replay",
    json_path: Annotated[Path | None, typer.Option("--json", help="every trial, window and choice as JSON")] = None,
    report_path: Annotated[Path | None, typer.Option("--report", help="a self-contained HTML report here")] = None,
    apply_: Annotated[
        bool, typer.Option("--apply", help="write the chosen parameters into the running platform (shows the diff)")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="with --apply: do not ask for confirmation")] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="the running platform (default: HTTP_HOST:HTTP_PORT)")
    ] = None,
) -> None:
    """Tune a strategy's parameters with Optuna, walk-forward (see docs/optimisation.md)."""
    from roottrading.config import ConfigError, load_settings
    from roottrading.domain.market import INTERVAL_MS
    from roottrading.optimize import walkforward as wf
    from roottrading.optimize.run import Plan, run_plan
    from roottrading.optimize.scoring import OBJECTIVES
    from roottrading.optimize.space import SpaceError, build_space
    from roottrading.optimize.study import (
        SAMPLERS,
        Job,
        StudyExists,
        default_workers,
        platform_storage_url,
        storage_url,
    )

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from roottrading.optimize.study import quiet

    quiet()  # the services' per-signal logs are each backtest's normal life, not the study's output
    if objective not in OBJECTIVES:
        raise _fail(f"--objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    if sampler not in SAMPLERS:
        raise _fail(f"--sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if fallback not in ("replay", "skip"):
        raise _fail("--fallback: use replay or skip")
    if trials < 1 or min_trades < 0 or (jobs is not None and jobs < 1) or sampler_history < 2:
        raise _fail("--trials and --jobs must be >= 1, --min-trades >= 0, --sampler-history >= 2")
    bal, stk, overrides = parse_money_and_overrides(balance, stake, set_)
    iv = interval or settings.interval
    if iv not in INTERVAL_MS:
        raise _fail(f"--interval {iv!r}: use one of {', '.join(INTERVAL_MS)}")
    syms = tuple(s.strip().upper() for s in (symbols.split(",") if symbols else settings.symbols) if s.strip())
    names = _resolve_strategies([strategy], settings)
    if len(names) != 1:
        raise _fail("--strategy: optimize tunes one strategy per study")
    name = names[0]
    from roottrading.optimize.study import strategy_class

    try:
        dims = build_space(strategy_class(name).param_specs(), space)
    except SpaceError as exc:
        raise _fail(str(exc)) from None
    if not dims:
        raise _fail(f"{name} has no ranged parameters to search; add some with --space")
    start_ms, end_ms, explicit = _period(start, end, days)
    if not explicit:
        raise _fail("optimize needs a period: --start/--end or --days")
    if sampler == "grid":
        size = 1
        for d in dims:
            size *= len(d.grid())
        if trials > size:
            typer.echo(f"note: the grid has {size} points; --trials lowered from {trials}", err=True)
            trials = size
    try:
        if walk_forward:
            train, test, step = wf.parse_spec(walk_forward)
            wf.check_interval(iv, train, test)
            windows = wf.windows(start_ms, end_ms, train, test, step, anchored=anchored)
        else:
            windows = [wf.Window(0, start_ms, end_ms, end_ms, end_ms)]
    except ValueError as exc:
        raise _fail(str(exc)) from None
    config = BacktestConfig(
        strategies=(name,),
        symbols=syms,
        interval=iv,
        start_ms=start_ms,
        end_ms=end_ms,
        data=data,
        balance=bal,
        engine="fast",
        settings=overrides,
        stake=stk,
    )
    question = json.dumps(
        [
            name,
            syms,
            iv,
            start_ms,
            end_ms,
            data,
            str(bal),
            overrides,
            str(stk),
            space,
            objective,
            min_trades,
            max_drawdown,
            sampler,
            walk_forward,
            anchored,
        ],
        sort_keys=True,
        default=str,
    )
    sname = study_name or f"{name}-{'-'.join(syms)}-{iv}-{hashlib.sha256(question.encode()).hexdigest()[:10]}"
    if not (storage or settings.database_url):
        raise _fail("no storage: set DATABASE_URL or pass --storage sqlite:///optuna.db")
    url = storage_url(storage) if storage else platform_storage_url(settings.database_url)
    job = Job(
        config=config,
        dims=tuple(dims),
        objective=objective,
        min_trades=min_trades,
        max_drawdown=None if max_drawdown is None else max_drawdown / 100,
        storage=url,
        study_name=sname,
        n_trials=trials,
        sampler=sampler,
        seed=seed,
        database_url=settings.database_url,
        fallback=fallback,
        history=sampler_history,
    )
    _gate(config, settings.database_url, windows)
    plan = Plan(
        job=job,
        windows=tuple(windows),
        walk_forward=bool(walk_forward),
        workers=jobs or default_workers(),
        resume=resume,
        verify=verify,
    )
    studies: dict[int, Any] = {}
    with contextlib.ExitStack() as stack:
        where = f"{plan.workers} process(es)"
        if cluster:
            from roottrading.optimize.cluster import connect, workers_of

            try:
                client = stack.enter_context(connect(cluster))
            except (OSError, ValueError) as exc:
                raise _fail(f"--cluster {cluster}: {exc}") from None
            plan = replace(plan, client=client)
            where = f"the cluster {cluster} ({workers_of(client)} worker thread(s))"
        typer.echo(
            f"study {sname}: {len(windows)} window(s) x {trials} trials on {where}; "
            f"space {', '.join(d.name for d in dims)}",
            err=True,
        )
        try:
            doc = run_plan(plan, lambda text: typer.echo(text, err=True), studies)
        except StudyExists as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            typer.echo(f"interrupted: continue with --resume --study-name {sname}", err=True)
            raise typer.Exit(130) from None
    if json_path is not None:
        from roottrading.optimize.trials import write_json

        write_json(doc, json_path, studies)  # every trial, streamed from the database
    if report_path is not None:
        from roottrading.optimize.report import write_report

        write_report(doc, report_path)
    _summary(doc)
    for path, what in ((json_path, "JSON"), (report_path, "report")):
        if path is not None:
            typer.echo(f"{what}: {path}")
    if apply_:
        apply_chosen(doc, settings, url, yes)


def apply_chosen(doc: dict, settings: object, url: str | None, yes: bool) -> None:
    """Show the diff of the chosen parameters against the running platform, confirm, apply per symbol."""
    from roottrading.optimize import apply

    params = doc.get("chosen_params")
    if not params:
        raise _fail("--apply: no parameters were chosen (no trial passed the constraints)")
    platform = apply.Platform.connect(
        url or f"http://{settings.http_host}:{settings.http_port}",  # type: ignore[attr-defined]
        apply.platform_token(settings),
    )
    try:
        changes = apply.diff(platform, doc["strategy"], doc["symbols"], params)
        typer.echo(f"apply {doc['strategy']} on {', '.join(doc['symbols'])}:")
        typer.echo(apply.format_diff(changes))
        if not changes:
            return
        if not yes and not typer.confirm("apply these parameters to the running platform?", default=False):
            typer.echo("not applied")
            return
        apply.apply(platform, doc["strategy"], doc["symbols"], params)
    except apply.ApplyError as exc:
        raise _fail(f"--apply: {exc}") from None
    typer.echo(f"applied {len(changes)} change(s); the platform keeps them across restarts")


def _gate(config: BacktestConfig, database_url: str | None, windows: list) -> None:
    """The backtest's data-quality gate on the whole period, once, before any worker starts."""
    import asyncio
    from dataclasses import replace

    from roottrading.backtest.data import MissingData
    from roottrading.backtest.overrides import OverrideError
    from roottrading.backtest.runner import DataQualityError, prepare

    cfg = replace(config, start_ms=windows[0].train_start, end_ms=max(w.test_end for w in windows))
    try:
        asyncio.run(prepare(cfg, database_url=database_url, explicit_range=True))
    except (MissingData, DataQualityError, OverrideError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _summary(doc: dict) -> None:
    typer.echo(f"study {doc['study']}: {doc['trials_run_now']} trial(s) run now")
    if doc.get("out_of_sample"):
        m = doc["out_of_sample"]["metrics"]
        typer.echo(
            f"out-of-sample (stitched test windows): pnl {m['net_pnl']} sharpe {m['sharpe']} "
            f"max drawdown {m['max_drawdown']} trades {m['trades']}"
        )
        typer.echo(
            f"in-sample mean sharpe {doc['in_sample']['mean_sharpe']}; walk-forward efficiency "
            f"{doc.get('walk_forward_efficiency')}; deflated Sharpe (mean) {doc['deflated_sharpe_mean']}"
        )
    elif doc.get("best_params") is not None:
        typer.echo(
            f"best {doc['best_params']} (in-sample: {doc['in_sample']}); deflated Sharpe {doc['deflated_sharpe_mean']}"
        )
    else:
        typer.echo("no trial passed the constraints")
