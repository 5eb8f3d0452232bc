"""The simulated market: candle series per symbol, the replay that turns them into Binance stream events,
and the simulated "now". REST and WebSocket read the same state, so they never disagree."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from roottrading.datasets import load_candles, synthetic_candles
from roottrading.domain import Candle, interval_ms
from roottrading.exchange.fake_binance.config import FakeBinanceConfig
from roottrading.exchange.fake_binance.hub import Hub

log = structlog.get_logger(__name__)

_DEFAULT_PRICES = {"BTC": 40_000.0, "ETH": 2_200.0, "BNB": 300.0, "SOL": 100.0, "XRP": 0.6, "ADA": 0.5}
_enc = msgspec.json.Encoder()


def fmt(x: float) -> str:
    """Binance's 8-decimal string for a price or quantity."""
    return f"{x:.8f}"


def load_series(cfg: FakeBinanceConfig) -> dict[str, list[Candle]]:
    """Candle series per served symbol, closed and contiguous."""
    out: dict[str, list[Candle]] = {}
    for i, sym in enumerate(s.upper() for s in cfg.symbols):
        if cfg.source == "candles":
            assert cfg.candles is not None
            series = list(cfg.candles[sym])
        elif cfg.source == "bundled":
            series = load_candles(cfg.aliases.get(sym, sym), cfg.interval, as_symbol=sym)
        else:
            price = cfg.start_prices.get(sym) or next(
                (p for base, p in _DEFAULT_PRICES.items() if sym.startswith(base)), 100.0
            )
            series = synthetic_candles(
                sym,
                cfg.interval,
                cfg.synthetic_count,
                seed=cfg.seed + i,
                start_ms=cfg.start_ms,
                start_price=price,
                base_volume=cfg.base_volumes.get(sym, 50.0),
            )
        if not series:
            raise ValueError(f"no candles for {sym}")
        out[sym] = series
    return out


def _path(c: Candle, k: int, n: int) -> float:
    """Price at fraction (k+1)/n of a candle along open -> first extreme -> second extreme -> close."""
    pts = (c.open, c.low, c.high, c.close) if c.close >= c.open else (c.open, c.high, c.low, c.close)
    x = (k + 1) / n * 3.0
    seg = min(int(x), 2)
    frac = x - seg
    return float(fmt(pts[seg] + (pts[seg + 1] - pts[seg]) * frac))


class Market:
    """Replays the series. `now_ms` is the simulated time of the last emitted step."""

    def __init__(self, cfg: FakeBinanceConfig, hub: Hub) -> None:
        self.cfg = cfg
        self.hub = hub
        self.series = load_series(cfg)
        self.step_ms = interval_ms(cfg.interval)
        self.open_times = {s: [c.open_time for c in cs] for s, cs in self.series.items()}
        first = min(cs[0].open_time for cs in self.series.values())
        self.start_ms = first + min(cfg.history_candles, min(len(c) for c in self.series.values()) - 1) * self.step_ms
        self.end_ms = max(cs[-1].close_time + 1 for cs in self.series.values())
        self.now_ms = self.start_ms
        self.last_price: dict[str, float] = {}
        self.book: dict[str, tuple[float, float]] = {}
        self._trade_id = dict.fromkeys(self.series, 1000000)
        self.last_qty: dict[str, float] = dict.fromkeys(self.series, 0.0)  # of the last replayed trade
        self._update_id = 1
        self.finished = asyncio.Event()
        self._running = asyncio.Event()
        if not cfg.start_paused:
            self._running.set()
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []  # (event type, payload) for other modules
        for s in self.series:
            c = self.last_closed(s)
            if c is not None:
                self._set_price(s, c.close)

    # --- queries used by REST -----------------------------------------------------------------------
    def closed_candles(self, symbol: str) -> list[Candle]:
        """Candles closed at the simulated now (close_time < now)."""
        cs = self.series[symbol]
        n = bisect.bisect_left(self.open_times[symbol], self.now_ms - self.step_ms + 1)
        return cs[:n]

    def last_closed(self, symbol: str) -> Candle | None:
        cs = self.closed_candles(symbol)
        return cs[-1] if cs else None

    def last_trade_id(self, symbol: str) -> int:
        """Id of the last trade the replay emitted (`t` of the @trade stream)."""
        return self._trade_id[symbol]

    def current_candle(self, symbol: str) -> Candle | None:
        """The in-progress candle at now, with the full-candle values (REST's open row)."""
        i = bisect.bisect_right(self.open_times[symbol], self.now_ms) - 1
        cs = self.series[symbol]
        if 0 <= i < len(cs) and cs[i].close_time >= self.now_ms:
            return msgspec.structs.replace(cs[i], closed=False)
        return None

    def _set_price(self, symbol: str, price: float) -> None:
        self.last_price[symbol] = price
        tick = 10 ** -(len(fmt(price).split(".")[1].rstrip("0")) or 2)
        self.book[symbol] = (float(fmt(price - tick)), float(fmt(price + tick)))

    # --- control ------------------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue the replay at the configured speed from where it stood (a pause is not caught up)."""
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    async def run(self) -> None:
        """Emit every step from start to end at the configured speed."""
        cfg = self.cfg
        n = cfg.updates_per_candle
        wall0, sim0 = time.monotonic(), self.now_ms
        by_time: dict[int, list[Candle]] = {}
        for cs in self.series.values():
            for c in cs:
                if c.open_time >= self.start_ms - self.step_ms + 1 and c.close_time >= self.start_ms:
                    by_time.setdefault(c.open_time, []).append(c)
        for open_time in sorted(by_time):
            candles = by_time[open_time]
            for k in range(n + 1):
                t = open_time + (k + 1) * self.step_ms // (n + 1) if k < n else open_time + self.step_ms
                if t < self.now_ms:
                    continue
                if not self._running.is_set():  # paused: resume at the configured speed, no catching up
                    paused_at = time.monotonic()
                    await self._running.wait()
                    wall0 += time.monotonic() - paused_at
                if cfg.speed > 0:
                    delay = wall0 + (t - sim0) / 1000.0 / cfg.speed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        await asyncio.sleep(0)
                else:
                    await asyncio.sleep(0)
                self.now_ms = t
                for c in candles:
                    if k < n:
                        self._emit_update(c, k, n, t)
                    else:
                        self._emit_kline(
                            c,
                            c.close_time + 1,
                            closed=True,
                            o=c.open,
                            h=c.high,
                            lo=c.low,
                            cl=c.close,
                            v=c.volume,
                            q=c.quote_volume,
                            trades=c.trades,
                        )
        self.now_ms = max(self.now_ms, self.end_ms)
        self.finished.set()
        log.info("fake_binance.replay_finished", now_ms=self.now_ms)

    # --- event builders ------------------------------------------------------------------------------
    def _emit_update(self, c: Candle, k: int, n: int, t: int) -> None:
        sym = c.symbol
        prices = [c.open] + [_path(c, j, n) for j in range(k + 1)]
        price = prices[-1]
        qty = float(fmt(c.volume / (n + 1)))
        self._trade_id[sym] += 1
        tid = self._trade_id[sym]
        maker = (tid % 2) == 0
        self._set_price(sym, price)
        self.last_qty[sym] = qty
        low = sym.lower()
        trade = {
            "e": "trade",
            "E": t,
            "s": sym,
            "t": tid,
            "p": fmt(price),
            "q": fmt(qty),
            "T": t,
            "m": maker,
            "M": True,
        }
        agg = {
            "e": "aggTrade",
            "E": t,
            "s": sym,
            "a": tid,
            "p": fmt(price),
            "q": fmt(qty),
            "f": tid,
            "l": tid,
            "T": t,
            "m": maker,
            "M": True,
        }
        self._publish(f"{low}@trade", trade)
        self._publish(f"{low}@aggTrade", agg)
        bid, ask = self.book[sym]
        self._update_id += 1
        self._publish(
            f"{low}@bookTicker",
            {"u": self._update_id, "s": sym, "b": fmt(bid), "B": "1.00000000", "a": fmt(ask), "A": "1.00000000"},
        )
        self._emit_kline(
            c,
            t,
            closed=False,
            o=c.open,
            h=max(prices),
            lo=min(prices),
            cl=price,
            v=float(fmt(c.volume * (k + 1) / (n + 1))),
            q=0.0,
            trades=k + 1,
        )

    def _emit_kline(
        self,
        c: Candle,
        t: int,
        *,
        closed: bool,
        o: float,
        h: float,
        lo: float,
        cl: float,
        v: float,
        q: float,
        trades: int,
    ) -> None:
        sym = c.symbol
        payload = {
            "e": "kline",
            "E": t,
            "s": sym,
            "k": {
                "t": c.open_time,
                "T": c.close_time,
                "s": sym,
                "i": c.interval,
                "f": 0,
                "L": trades,
                "o": fmt(o),
                "c": fmt(cl),
                "h": fmt(h),
                "l": fmt(lo),
                "v": fmt(v),
                "n": trades,
                "x": closed,
                "q": fmt(q),
                "V": "0.00000000",
                "Q": "0.00000000",
                "B": "0",
            },
        }
        if closed:
            self._set_price(sym, cl)
        self._publish(f"{sym.lower()}@kline_{c.interval}", payload)

    def _publish(self, stream: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(stream, payload)
        if self.hub.has_subscribers(stream):
            self.hub.publish(stream, _enc.encode(payload))
