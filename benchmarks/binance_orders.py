"""Orders per second through BinanceExchange over real HTTP against fake Binance, vs the in-process
SimExchange (same engine, no HTTP/signing) as the baseline measured in the same run.

Run: .venv/bin/python benchmarks/binance_orders.py [N]
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from decimal import Decimal

import uvicorn

from roottrading.domain import OrderType, Side
from roottrading.exchange.binance.adapter import BinanceExchange
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.trading import trading_extension
from roottrading.exchange.sim import SimEngine, SimExchange

KEY, SECRET = "k" * 64, "s" * 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def place_many(ex, n: int, price: Decimal, prefix: str) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            client_order_id=f"{prefix}{i}",
            quantity=Decimal("0.001"),
            price=price,
        )
        await ex.cancel_order("BTCUSDT", f"{prefix}{i}")  # keep below MAX_NUM_ORDERS
    return time.perf_counter() - t0


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
    acct = app.state.fake.trading
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    price = (acct.engine.last_price("BTCUSDT") / 2).quantize(Decimal("0.01"))
    ex = BinanceExchange(
        KEY, SECRET, base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", user_stream=False
    )
    await ex.exchange_info()
    # exchangeInfo advertises Binance's 100 orders / 10 s, which the client honours (10 orders/s); lift it to
    # measure the transport itself.
    ex.rest.order_limit_10s = 10**9
    await place_many(ex, 20, price, "warm")
    http_s = await place_many(ex, n, price, "h")
    await ex.close()
    server.should_exit = True
    await task
    sim = SimExchange(SimEngine(acct.rules, balances={"USDT": 10_000_000}))
    sim.engine.on_trade("BTCUSDT", 0, price * 2)
    sim_s = await place_many(sim, n, price, "s")
    http_rate, sim_rate = 2 * n / http_s, 2 * n / sim_s
    print(f"requests (place+cancel): {2 * n}")
    print(
        f"BinanceExchange over HTTP (signed, fake Binance, same host): {http_rate:,.0f} req/s "
        f"({n / http_s:,.0f} orders/s incl. their cancels)"
    )
    print(f"baseline SimExchange in-process:                             {sim_rate:,.0f} req/s")
    print(f"ratio HTTP / in-process: {http_rate / sim_rate:.4f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
