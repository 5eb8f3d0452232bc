"""The `roottrading` command (also `python -m roottrading`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Annotated

import typer

from roottrading.config import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="RootTrading: automated crypto trading platform.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
app.add_typer(config_app, name="config")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _banner(settings: Settings, token: str, created: bool, port: int) -> None:
    url = f"http://{settings.http_host}:{port}"
    typer.echo(f"RootTrading ({settings.trading_mode} mode) on {url}  dashboard: {url}/  API docs: {url}/docs")
    if created:
        typer.echo(f"API token (shown once; stored in {settings.data_dir / 'api_token'}): {token}")


def check_http_exposure(settings: Settings) -> None:
    """Refuse to serve beyond loopback without an operator-chosen token (runtime/http.py)."""
    from roottrading.runtime.http import exposure_problem

    problem = exposure_problem(settings)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)


def _serve(
    settings: Settings,
    services: list[str] | None,
    *,
    per_service: bool = False,
    port: int | None = None,
    clock: object | None = None,
) -> None:
    from roottrading.runtime import Host
    from roottrading.runtime.logsetup import configure_logging
    from roottrading.services.gateway.demo_db import release_demo_database

    check_http_exposure(settings)
    configure_logging(settings.log_level, settings.effective_log_format)
    if release_demo_database(settings.database_url):
        typer.echo(f"note: {settings.database_url} was a demo database; it is now kept (the demo will not reset it)")
    host = Host(settings, services, per_service_http=per_service, clock=clock)  # type: ignore[arg-type]
    port = port or settings.http_port
    _banner(settings, host.api_token, host.token_created, port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(host.serve(port=port))


DEMO_STRATEGIES = (
    "ema_cross",
    "macd_crossover",
    "rsi_cross",
    "bollinger_touch",
    "supertrend_reversal",
    "donchian_breakout",
    "adx_direction",
    "stochastic_oversold",
)


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port (default HTTP_PORT, 8000)")] = None,
    split: Annotated[
        bool, typer.Option("--split", help="every service in its own supervised process (needs BUS_URL, DATABASE_URL)")
    ] = False,
    replicas: Annotated[
        str | None, typer.Option(help="with --split: processes per service, e.g. analyzer=2 (analyzer only for now)")
    ] = None,
) -> None:
    """Run every service in one process (embedded defaults: memory bus, SQLite), or with --split one process
    per service on Redis/NATS and PostgreSQL, restarted with back-off when one crashes."""
    if not split:
        if replicas:
            typer.echo("error: --replicas needs --split (the one-process mode runs each service once)", err=True)
            raise typer.Exit(2)
        _serve(_settings(), None, port=port)
        return
    if port is not None:
        typer.echo("error: --port is for the one-process mode; with --split each service has its port", err=True)
        raise typer.Exit(2)
    _up_split(_settings(), replicas)


def _up_split(settings: Settings, replicas: str | None) -> None:
    from roottrading.runtime import supervisor as sup
    from roottrading.runtime.logsetup import configure_logging
    from roottrading.store import Database

    problem = sup.embedded_defaults_problem(settings)
    try:
        wanted = sup.parse_replicas(replicas, settings.bus_url)
        problem = problem or sup.replicas_problem(settings, wanted)
        specs = sup.plan(settings, wanted)
    except sup.SplitConfigError as exc:
        problem = problem or str(exc)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    check_http_exposure(settings)
    configure_logging(settings.log_level, settings.effective_log_format)
    # Once, before any child: the children then find the same token (data_dir/api_token or API_TOKEN[_FILE])
    # and the schema at head, instead of racing to create either.
    token, created = settings.ensure_api_token()

    async def migrate_then_supervise() -> int:
        db = Database(settings.database_url)
        await db.migrate()
        await db.close()
        return await sup.Supervisor(specs).run()

    typer.echo(f"RootTrading split ({settings.trading_mode} mode): {len(specs)} processes")
    for s in specs:
        typer.echo(f"  {s.label:<14} http://{settings.http_host}:{s.port}")
    if created:
        typer.echo(f"API token (shown once; stored in {settings.data_dir / 'api_token'}): {token}")
    raise typer.Exit(asyncio.run(migrate_then_supervise()))


@app.command()
def service(
    name: Annotated[str, typer.Argument(help="gateway, analyzer, trader, coordinator, ...")],
    port: Annotated[int | None, typer.Option(help="default: the service's reference port")] = None,
) -> None:
    """Run one service in its own process (use BUS_URL=redis://... and DATABASE_URL=postgresql://...)."""
    from roottrading.runtime.registry import SERVICES

    settings = _settings()
    if name not in SERVICES:
        typer.echo(f"error: unknown service {name!r}; known: {', '.join(sorted(SERVICES))}", err=True)
        raise typer.Exit(2)
    if settings.bus_url.startswith("memory"):
        typer.echo(
            "warning: BUS_URL is memory://, so this service cannot talk to the others; "
            "set BUS_URL=redis://127.0.0.1:6379/0",
            err=True,
        )
    from roottrading.runtime.supervisor import SPLIT_PORTS

    default_port = settings.service_ports.get(name, SPLIT_PORTS.get(name, settings.http_port))
    _serve(settings, [name], per_service=True, port=port or default_port)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    speed: Annotated[float, typer.Option(help="replayed candles per second and symbol")] = 20.0,
) -> None:
    """Demo mode offline: a local fake Binance replays bundled real market data; the real gateway reads it
    over WebSockets; simulated orders; the replayed market time drives the platform's clock. Each start uses a
    fresh demo database (<DATA_DIR>/demo.db; the previous one kept as demo.previous.db)."""
    from roottrading.runtime.logsetup import configure_logging
    from roottrading.services.gateway.demo import run_demo
    from roottrading.services.gateway.demo_db import DemoDatabaseError

    settings = _settings(trading_mode="demo")
    if not settings.strategies:  # a readable demo: a classic set; the Strategies page enables the others live
        settings.strategies = list(DEMO_STRATEGIES)
    check_http_exposure(settings)
    configure_logging(settings.log_level, settings.effective_log_format)
    port = port or settings.http_port
    try:
        asyncio.run(
            run_demo(
                settings,
                port=port,
                candles_per_s=speed,
                on_ready=lambda host: _banner(settings, host.api_token, host.token_created, port),
                announce=typer.echo,
            )
        )
    except DemoDatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("fake-binance", context_settings=_PASS_THROUGH)
def fake_binance(ctx: typer.Context) -> None:
    """Local Binance simulator (market + trading side). `roottrading fake-binance --help` for options."""
    from roottrading.exchange.fake_binance.cli import main as fake_main

    fake_main(list(ctx.args))


@app.command("download-data", context_settings=_PASS_THROUGH)
def download_data(ctx: typer.Context) -> None:
    """Download or import historical candles (Binance REST, monthly CSV files). `--help` for options."""
    from roottrading.history.cli import main as history_main

    history_main(list(ctx.args))


def _register_backtest() -> None:
    from roottrading.backtest.cli import backtest

    app.command("backtest")(backtest)


_register_backtest()


@app.command("check-strategy")
def check_strategy(
    name: Annotated[str, typer.Argument(help="strategy name (built-in or from STRATEGIES_DIR)")],
    symbol: Annotated[str, typer.Option(help="symbol of the data")] = "BTCUSDT",
    interval: Annotated[str, typer.Option(help="candle interval")] = "1d",
    data: Annotated[str, typer.Option(help="bundled, store, a Parquet folder or Binance kline files")] = "bundled",
    param: Annotated[list[str] | None, typer.Option("--param", help="KEY=VALUE strategy parameter")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Bias checks: lookahead (signals that change when future candles are cut) and history length (signals
    that change with 2x/4x the live window). Exit 1 when a check finds something."""
    from roottrading.backtest.bias import cli_main

    raise typer.Exit(cli_main(name, symbol, interval, data, param or [], as_json))


@app.command("compare")
def compare(
    start: Annotated[str, typer.Option(help="ISO date/time (UTC) or epoch ms, inclusive")],
    end: Annotated[str, typer.Option(help="ISO date/time (UTC) or epoch ms, exclusive")],
    symbols: Annotated[str | None, typer.Option(help="comma-separated (default: SYMBOLS setting)")] = None,
    strategy: Annotated[list[str] | None, typer.Option("--strategy", help="strategy (repeatable)")] = None,
    interval: Annotated[str | None, typer.Option(help="candle interval (default: INTERVAL setting)")] = None,
    data: Annotated[str, typer.Option(help="candles for the backtest: store, a Parquet folder, ...")] = "store",
    balance: Annotated[str, typer.Option(help="the backtest's starting balance (the live account's)")] = "10000",
    set_: Annotated[list[str] | None, typer.Option("--set", help="a setting the live platform ran with")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Drift report: what the platform did (the store) vs a replay backtest of the same period, trade by trade,
    every difference with its reason. Exit 1 when anything differs."""
    from roottrading.backtest.drift import cli_main

    raise typer.Exit(cli_main(start, end, symbols, strategy or [], interval, data, balance, set_ or [], as_json))


def _register_optimize() -> None:
    from roottrading.optimize.cli import optimize

    app.command("optimize")(optimize)
    from roottrading.optimize.tune_cli import tune

    app.command("tune")(tune)


_register_optimize()


@app.command()
def report() -> None:
    """Print performance: PnL, win rate, profit factor, Sharpe, Sortino, drawdown, Calmar, per strategy/symbol."""
    from roottrading.capital.report import print_report
    from roottrading.runtime.logsetup import configure_logging

    settings = _settings()
    configure_logging("WARNING", settings.effective_log_format)  # logs to stderr, the report alone on stdout
    typer.echo(print_report(settings))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (DATABASE_URL)."""
    from roottrading.store import Database

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url)
        await db.migrate()
        await db.close()
        typer.echo(f"database at head ({db.dialect}{', TimescaleDB' if db.timescale else ''})")

    asyncio.run(run())


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration as JSON, secrets masked."""
    typer.echo(json.dumps(_settings().masked(), indent=2, default=str))


@app.command()
def status(
    url: Annotated[str | None, typer.Option(help="base URL of a running platform")] = None,
    service: Annotated[
        str | None, typer.Option(help="ask one service of a split platform (its port, GET /health)")
    ] = None,
    allow_degraded: Annotated[
        bool, typer.Option("--allow-degraded", help="exit 0 when degraded too (container health checks)")
    ] = False,
) -> None:
    """Ask a running platform (or one service) for its health report; sends the API token when one is set."""
    import httpx

    from roottrading.runtime.supervisor import SPLIT_PORTS

    settings = _settings()
    if service is not None:
        port = settings.service_ports.get(service, SPLIT_PORTS.get(service))
        if port is None:
            typer.echo(f"error: unknown service {service!r}", err=True)
            raise typer.Exit(2)
        base, path = url or f"http://127.0.0.1:{port}", "/health"
    else:
        base, path = url or f"http://{settings.http_host}:{settings.http_port}", "/api/health"
    token = settings.api_token.get_secret_value()
    token_file = settings.data_dir / "api_token"
    if not token and token_file.is_file():
        token = token_file.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(f"{base}{path}", timeout=5, headers=headers)
    except httpx.HTTPError as exc:
        typer.echo(f"not reachable at {base}: {exc}", err=True)
        raise typer.Exit(1) from None
    if resp.status_code == 401:
        typer.echo(f"refused by {base} (401): set API_TOKEN or API_TOKEN_FILE to the platform's token", err=True)
        raise typer.Exit(1)
    report = resp.json()
    typer.echo(f"{report['status'].upper()}  mode={report.get('mode')}")
    for name, comp in report.get("components", {}).items():
        typer.echo(f"  {name:<12} {comp.get('status', '?')}")
    healthy = report["status"] == "ok" or (allow_degraded and report["status"] == "degraded")
    raise typer.Exit(0 if healthy else 1)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # raised lazily by a service reading settings
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
