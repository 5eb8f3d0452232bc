"""Which exchange the trader talks to: one given by the host, the simulator (demo), or Binance (live).

Why a factory: the trader's state machine only knows the `Exchange` port, so the mode decides nothing but
this choice (DESIGN.md principle 1). Demo rules come from a real Binance exchangeInfo capture (BTCUSDT,
basana, Apache-2.0) so the simulator rejects exactly what Binance would; other symbols get a clone of
BTCUSDT's filters with the tick and step sizes scaled to the symbol's price, so a 100 USDT coin has a
sensible grid instead of BTC's 0.01 tick.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading.capital.pnl import split_symbol
from roottrading.exchange.filters import SymbolRules, load_exchange_info

DATA = Path(__file__).parent / "data" / "binance_btc_usdt_exchange_info.json"
DEMO_BALANCES: dict[str, Decimal] = {"USDT": Decimal(10_000)}
# Reference prices used to scale cloned filters (the demo's synthetic market starts near these).
REFERENCE_PRICES: dict[str, Decimal] = {
    "BTC": Decimal(20_000),
    "ETH": Decimal(1_500),
    "BNB": Decimal(300),
    "SOL": Decimal(20),
    "XRP": Decimal("0.4"),
    "DOGE": Decimal("0.08"),
}
DEFAULT_PRICE = Decimal(100)
# The paper account remembers 5,000 trades and closed orders per symbol (reconciliation reads one day back):
# the whole account is stored after each change, so its size is bounded.
PAPER_HISTORY = 5_000


class LiveAdapterUnavailable(RuntimeError):
    """Live mode was asked for but the Binance trading adapter cannot be imported."""


def btcusdt_rules() -> SymbolRules:
    """The bundled real BTCUSDT rules (exchangeInfo of 2022-12-11)."""
    return load_exchange_info(DATA)["BTCUSDT"]


def _pow10(x: Decimal) -> Decimal:
    """The power of ten nearest to `x` (in log space), as an exact Decimal."""
    return Decimal(1).scaleb(round(math.log10(float(x))))


def derive_rules(symbol: str, template: SymbolRules, price: Decimal, quote_asset: str = "USDT") -> SymbolRules:
    """Clone `template` for `symbol`, scaling tick/step so tick/price and step*price stay as in the template.

    The template is assumed to be priced near REFERENCE_PRICES of its base asset."""
    base, quote = split_symbol(symbol, quote_asset)
    ref = REFERENCE_PRICES.get(template.base_asset, Decimal(20_000))
    scale = price / ref
    tick = max(_pow10(template.tick_size * scale), Decimal("1e-8"))
    step = min(max(_pow10(template.step_size / scale), Decimal("1e-8")), Decimal(1))
    max_qty = (template.max_qty / scale).quantize(step) if template.max_qty else template.max_qty
    market_max = ((template.market_max_qty or Decimal(0)) / scale).quantize(step) or None
    return dataclasses.replace(
        template,
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        tick_size=tick,
        min_price=tick,
        step_size=step,
        min_qty=step,
        max_qty=max_qty,
        market_max_qty=market_max,
        market_step_size=Decimal(0) if template.market_step_size is not None else None,
        market_min_qty=Decimal(0) if template.market_min_qty is not None else None,
    )


def demo_rules(
    symbols: list[str], prices: Mapping[str, Any] | None = None, quote_asset: str = "USDT"
) -> dict[str, SymbolRules]:
    """Rules for every demo symbol: BTCUSDT verbatim, the others derived (see `derive_rules`)."""
    template = btcusdt_rules()
    out: dict[str, SymbolRules] = {}
    for sym in symbols:
        if sym == template.symbol:
            out[sym] = template
            continue
        base, _ = split_symbol(sym, quote_asset)
        given = (prices or {}).get(sym)
        price = Decimal(str(given)) if given is not None else REFERENCE_PRICES.get(base, DEFAULT_PRICE)
        out[sym] = derive_rules(sym, template, price, quote_asset)
    return out


def create_exchange(ctx: Any) -> tuple[Any, bool]:
    """(exchange, feed_market_data). `feed_market_data` says the trader must push the candles/ticks it
    consumes into the exchange (an in-process simulator has no market of its own)."""
    given = ctx.wiring.exchange
    if given is not None:
        feed = ctx.wiring.feed_exchange
        return given, hasattr(given, "on_candle") if feed is None else feed
    if ctx.settings.trading_mode == "live" and ctx.settings.ccxt_id is not None:  # EXCHANGE=ccxt:<id>
        from roottrading.exchange.ccxt.settings import ccxt_from_settings

        return ccxt_from_settings(ctx.settings, ctx.clock), False
    if ctx.settings.trading_mode == "live":
        try:
            from roottrading.exchange.binance.adapter import BinanceExchange
        except ImportError as exc:
            raise LiveAdapterUnavailable(
                f"live trading adapter not available (roottrading.exchange.binance.adapter: {exc}); "
                "use TRADING_MODE=demo"
            ) from None
        return BinanceExchange(ctx.settings, clock=ctx.clock), False
    from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange

    rules = demo_rules(list(ctx.settings.symbols), ctx.wiring.demo_prices, ctx.settings.quote_asset)
    balances = dict(DEMO_BALANCES)
    for asset, amount in (ctx.wiring.demo_balances or {}).items():
        balances[asset] = Decimal(str(amount))
    engine = SimEngine(
        rules,
        ctx.wiring.sim_config or SimConfig(history_limit=PAPER_HISTORY),
        balances,
        start_time=ctx.clock.now_ms(),
    )
    if not ctx.settings.trader_paper_account_stored:
        return SimExchange(engine, ctx.clock), True
    # paper trading runs for weeks across restarts: the account is stored with the cycles (paper_account.py)
    from roottrading.services.trader.paper_account import PaperAccount
    from roottrading.store import SafetyStateRepo

    def list_rules(symbol: str) -> SymbolRules:  # a stored pair the universe added before the restart
        return demo_rules([symbol], ctx.wiring.demo_prices, ctx.settings.quote_asset)[symbol]

    return PaperAccount(engine, ctx.clock, SafetyStateRepo(ctx.db), list_rules=list_rules), True


RulesLoader = Callable[[], Awaitable[dict[str, SymbolRules]]]


def rules_loader(ctx: Any) -> RulesLoader:
    """How a service other than the trader (the coordinator) reads the exchange's symbol rules itself, in
    any deployment, making the same choice as `create_exchange`: the exchange given by the host (its
    `exchange_info()`); in demo the very rules the trader's simulator enforces (`demo_rules` of the same
    settings); live, Binance's public exchangeInfo at the trader's REST URL (no API key needed).
    Errors propagate (the caller keeps what it had and retries)."""
    given = ctx.wiring.exchange
    if given is not None:
        return given.exchange_info

    def symbols() -> list[str]:  # read at each load: SYMBOLS follows the pair universe (docs/universe.md)
        return [s.upper() for s in ctx.settings.symbols]

    if ctx.settings.trading_mode == "live" and ctx.settings.ccxt_id is not None:
        from roottrading.exchange.ccxt.settings import ccxt_from_settings

        async def via_ccxt() -> dict[str, SymbolRules]:
            ex = ccxt_from_settings(ctx.settings)
            try:
                return await ex.exchange_info()
            finally:
                await ex.close()

        return via_ccxt
    if ctx.settings.trading_mode == "live":
        from roottrading.exchange.binance.rest_market import BinanceMarketRest
        from roottrading.exchange.binance.trading import TESTNET_REST
        from roottrading.exchange.filters import parse_exchange_info

        testnet = bool(getattr(ctx.settings, "binance_testnet", False))
        url = TESTNET_REST if testnet else ctx.settings.binance_rest_url

        async def live() -> dict[str, SymbolRules]:
            rest = BinanceMarketRest(url, max_retries=1, max_ban_wait_s=0, timeout_s=5.0)
            try:
                return parse_exchange_info(await rest.exchange_info(symbols()))
            finally:
                await rest.aclose()

        return live

    async def demo() -> dict[str, SymbolRules]:
        return dict(demo_rules(symbols(), ctx.wiring.demo_prices, ctx.settings.quote_asset))

    return demo
