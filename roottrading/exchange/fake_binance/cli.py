"""`roottrading fake-binance`: run the local Binance simulator (market + trading side) with uvicorn.

Every FakeBinanceConfig option is a flag (underscores become dashes); `--balance ASSET=AMOUNT` may repeat.
Without --api-key/--api-secret a key pair is generated and printed (the only time it is shown).
The engine state is written to --state on every change and at shutdown, and restored at start.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Sequence
from typing import Any

from roottrading.exchange.fake_binance.config import FakeBinanceConfig

_SKIP = {"candles", "aliases", "start_prices", "balances", "api_key", "api_secret", "state_file"}


def _type_of(f: dataclasses.Field[Any]) -> Any:
    t = str(f.type)
    if "bool" in t:
        return "bool"
    if t.startswith("int"):
        return int
    if t.startswith("float"):
        return float
    return str


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="roottrading fake-binance",
        description="Local Binance Spot simulator: public market data + a funded trading account.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--api-key", help="API key of the funded account (generated when omitted)")
    ap.add_argument("--api-secret", help="HMAC secret of the account (generated when omitted)")
    ap.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="ASSET=AMOUNT",
        help="initial balance, repeatable (default USDT=10000 BTC=1)",
    )
    ap.add_argument("--state", help="engine snapshot file: restored at start, written on every change")
    ap.add_argument("--no-trading", action="store_true", help="serve the market side only")
    defaults = FakeBinanceConfig()
    for f in dataclasses.fields(FakeBinanceConfig):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _type_of(f)
        default = getattr(defaults, f.name)
        if f.name == "symbols":
            ap.add_argument(flag, default=",".join(default), help="comma-separated symbols")
        elif kind == "bool":
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            ap.add_argument(flag, type=kind, default=default, help=f"(default {default})")
    return ap


def config_from_args(ns: argparse.Namespace) -> FakeBinanceConfig:
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(FakeBinanceConfig):
        if f.name in _SKIP:
            continue
        v = getattr(ns, f.name)
        if f.name == "symbols":
            v = tuple(s.strip().upper() for s in v.split(",") if s.strip())
        kw[f.name] = v
    balances: dict[str, str] = {}
    for item in ns.balance:
        asset, sep, amount = item.partition("=")
        if not sep or not asset or not amount:
            raise SystemExit(f"--balance expects ASSET=AMOUNT, got {item!r}")
        balances[asset.strip().upper()] = amount.strip()
    if balances:
        kw["balances"] = balances
    cfg = FakeBinanceConfig(**kw, api_key=ns.api_key, api_secret=ns.api_secret, state_file=ns.state)
    try:
        cfg.validate()
    except ValueError as exc:
        raise SystemExit(f"fake-binance: {exc}") from None
    return cfg


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from roottrading.exchange.fake_binance.app import build_app
    from roottrading.exchange.fake_binance.trading import trading_extension

    ns = build_parser().parse_args(list(argv) if argv is not None else None)
    cfg = config_from_args(ns)
    app = build_app(cfg, [] if ns.no_trading else [trading_extension])
    account = getattr(app.state.fake, "trading", None)
    print(
        f"fake Binance on http://{ns.host}:{ns.port} symbols={','.join(cfg.symbols)}\n"
        f"point RootTrading at it: BINANCE_REST_URL=http://{ns.host}:{ns.port} BINANCE_WS_URL=ws://{ns.host}:{ns.port}",
        flush=True,
    )
    if account is not None and (ns.api_key is None or ns.api_secret is None):
        print(f"API key:    {account.api_key}\nAPI secret: {account.api_secret}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after its graceful shutdown
    try:
        uvicorn.run(
            app,
            host=ns.host,
            port=ns.port,
            log_level="warning",
            ws_ping_interval=cfg.ws_ping_interval_s,
            ws_ping_timeout=cfg.ws_ping_interval_s * 3,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if account is not None:
            account.save()
            sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    main()
