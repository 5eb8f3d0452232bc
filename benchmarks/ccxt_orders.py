"""Order-path latency of the ccxt adapter beside the native Binance adapter, one run, one fake Binance.

Each sample is one place_order (a resting LIMIT) or one cancel_order, timed separately; both adapters talk to
the same local fake Binance over HTTP, so the difference is the adapters' own cost (ccxt parses every answer
into its unified structures). ccxt's client-side rate limiter is switched off, as the native client's order
limit is lifted: both measure the transport, not the throttle. Prints p50/p99 per adapter and the ratios.

Run: .venv/bin/python benchmarks/ccxt_orders.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.binance_orders import free_port
from roottrading.domain import OrderType, Side
from roottrading.exchange.binance.adapter import BinanceExchange
from roottrading.exchange.ccxt.adapter import CcxtExchange
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.trading import trading_extension

KEY, SECRET = "k" * 64, "s" * 64


async def sample(ex: Any, n: int, price: Decimal, prefix: str) -> tuple[list[float], list[float]]:
    place, cancel = [], []
    for i in range(n):
        t0 = time.perf_counter()
        await ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            client_order_id=f"{prefix}{i}",
            quantity=Decimal("0.001"),
            price=price,
        )
        t1 = time.perf_counter()
        await ex.cancel_order("BTCUSDT", f"{prefix}{i}")
        t2 = time.perf_counter()
        place.append((t1 - t0) * 1000)
        cancel.append((t2 - t1) * 1000)
    return place, cancel


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def main(n: int) -> None:
    cfg = FakeBinanceConfig(
        symbols=("BTCUSDT",),
        api_key=KEY,
        api_secret=SECRET,
        order_limit_10s=1_000_000,
        weight_limit=10_000_000,
        start_paused=True,
    )
    app = build_app(cfg, [trading_extension])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    price = (app.state.fake.trading.engine.last_price("BTCUSDT") / 2).quantize(Decimal("0.01"))
    native = BinanceExchange(KEY, SECRET, base_url=url, ws_url=url.replace("http", "ws"), user_stream=False)
    await native.exchange_info()
    native.rest.order_limit_10s = 10**9
    cx = CcxtExchange("binance", api_key=KEY, secret=SECRET, rest_url=url)
    cx.client.enableRateLimit = False
    await cx.exchange_info()
    results = {}
    for name, ex in (("native", native), ("ccxt", cx)):
        await sample(ex, 20, price, f"w{name}")  # warm-up
        results[name] = await sample(ex, n, price, name)
        await ex.close()
    server.should_exit = True
    await task
    print(f"samples per operation: {n}")
    for op, k in (("place_order", 0), ("cancel_order", 1)):
        nat, cc = results["native"][k], results["ccxt"][k]
        print(
            f"{op:13s} native p50 {statistics.median(nat):6.2f} ms  p99 {pct(nat, 0.99):6.2f} ms | "
            f"ccxt p50 {statistics.median(cc):6.2f} ms  p99 {pct(cc, 0.99):6.2f} ms | "
            f"ratio p50 {statistics.median(cc) / statistics.median(nat):.2f}x  p99 {pct(cc, 0.99) / pct(nat, 0.99):.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
