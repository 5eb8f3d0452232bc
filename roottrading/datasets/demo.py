"""The demo's market: the bundled real BTC day first, then a seeded synthetic continuation, so a demo keeps
moving for hours instead of going quiet when the real data ends. Other symbols are synthetic from the start."""

from __future__ import annotations

from roottrading.datasets.bundled import available, load_candles
from roottrading.datasets.synthetic import synthetic_candles
from roottrading.domain import Candle, interval_ms

REAL_LIMIT = 1440


def demo_candles(symbols: list[str], interval: str, n: int = 12_000) -> list[Candle]:
    """`n` candles per symbol, aligned on the same open times, ordered by close time then symbol.

    BTC* symbols at 1m use LEAN's Binance BTC/BUSD day (Apache-2.0, relabelled for the demo), other bundled
    pairs use their own file; a seeded random walk continues each series from its last close."""
    have = set(available())
    real: dict[str, list[Candle]] = {}
    for sym in symbols:
        if (sym, interval) in have:
            real[sym] = load_candles(sym, interval)[: min(n, REAL_LIMIT)]
        elif sym.startswith("BTC") and interval == "1m" and ("BTCBUSD", "1m") in have:
            real[sym] = load_candles("BTCBUSD", "1m", as_symbol=sym)[: min(n, REAL_LIMIT)]
    start = min((c[0].open_time for c in real.values() if c), default=None)
    step = interval_ms(interval)
    out: list[Candle] = []
    for i, sym in enumerate(symbols):
        head = real.get(sym, [])
        rest = n - len(head)
        if head:
            out.extend(head)
            if rest > 0:
                out.extend(
                    synthetic_candles(
                        sym,
                        interval,
                        rest,
                        seed=101 + i,
                        start_ms=head[-1].open_time + step,
                        start_price=head[-1].close,
                    )
                )
        else:
            kwargs = {"start_ms": start} if start is not None else {}
            price = 1500.0 if sym.startswith("ETH") else 100.0 * (i + 1)
            out.extend(synthetic_candles(sym, interval, n, seed=7 + i, start_price=price, **kwargs))
    return sorted(out, key=lambda c: (c.close_time, c.symbol))
