"""All options of the fake Binance server in one dataclass (constructor args; the CLI maps flags onto it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from roottrading.domain import Candle


@dataclass
class FakeBinanceConfig:
    """Market source, replay speed, rate limits and fault injection. Randomness is seeded by `seed`."""

    # --- market source -------------------------------------------------------------------------------
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    interval: str = "1m"  # the replayed (base) interval; kline streams/REST for other intervals are refused
    source: str = "synthetic"  # "synthetic" | "bundled" (roottrading.datasets) | "candles" (below)
    candles: dict[str, list[Candle]] | None = None  # explicit series per symbol (source="candles")
    aliases: dict[str, str] = field(default_factory=dict)  # bundled: served symbol -> dataset symbol
    synthetic_count: int = 5_000  # candles per symbol for the synthetic market
    start_ms: int = 1_704_067_200_000  # synthetic: open time of the first candle (2024-01-01)
    start_prices: dict[str, float] = field(default_factory=dict)  # synthetic: per symbol, default by name
    base_volumes: dict[str, float] = field(default_factory=dict)  # synthetic: per symbol mean volume (default 50)
    history_candles: int = 500  # candles already closed when the replay starts (REST history)
    seed: int = 0
    # --- replay --------------------------------------------------------------------------------------
    speed: float = 60.0  # simulated seconds per wall second (60: a 1m candle per second); <= 0: max speed
    updates_per_candle: int = 4  # in-progress kline/trade/bookTicker updates between two closes
    start_paused: bool = False  # wait for FakeBinanceState.replay.resume()
    rest_include_open_candle: bool = False  # True: /klines also returns the in-progress candle (real Binance)
    # --- rate limits (per client IP, like Binance) ---------------------------------------------------
    weight_limit: int = 6_000
    weight_window_s: float = 60.0
    ban_s: float = 120.0  # ban length after ignoring a 429
    # --- fault injection -----------------------------------------------------------------------------
    drop_every_s: float | None = None  # close each WS connection after about N s
    stall_every_s: float | None = None  # every N s a connection goes silent (messages lost) ...
    stall_duration_s: float = 5.0  # ... for this long, without closing
    malformed_prob: float = 0.0  # probability of an extra malformed JSON frame before a message
    duplicate_prob: float = 0.0  # probability that a message is sent twice
    out_of_order_prob: float = 0.0  # probability that a message is swapped with the next one
    rest_429_prob: float = 0.0
    rest_418_prob: float = 0.0
    rest_5xx_prob: float = 0.0
    fault_ban_s: float = 1.0  # length of a randomly injected 418 ban
    ws_ping_interval_s: float = 20.0  # protocol-level pings sent by the server (uvicorn)
    ws_queue_size: int = 10_000  # per-connection backlog; a client slower than this is disconnected
    # --- trading side (fake_binance.trading; used only when its extension is installed) ----------------
    api_key: str | None = None  # the one funded account; None: generated at start (printed by the CLI)
    api_secret: str | None = None
    balances: dict[str, str] = field(default_factory=lambda: {"USDT": "10000", "BTC": "1"})
    state_file: str | None = None  # engine snapshot (JSON): restored at start, written on every change
    maker_fee: str = "0.001"
    taker_fee: str = "0.001"
    order_limit_10s: int = 100  # Binance ORDERS rate limits (per account), answered with -1015
    order_limit_1d: int = 200_000
    listen_key_ttl_s: float = 3600.0  # a listenKey expires this long after its last keepalive
    clock_skew_ms: int = 0  # the trading side's clock = wall clock + skew (timestamp/recvWindow checks)
    # trading faults
    order_timeout_prob: float = 0.0  # accept the order, then answer only after order_timeout_s
    order_timeout_s: float = 12.0  # longer than the client's timeout: the client never sees the answer
    order_5xx_prob: float = 0.0  # accept the order, then answer HTTP 500 (outcome unknown to the client)
    timestamp_error_prob: float = 0.0  # answer -1021 to a signed request (before executing it)
    insufficient_balance_prob: float = 0.0  # reject a new order with -2010 insufficient balance
    user_stream_drop_every_s: float | None = None  # close every user-data WebSocket every N s

    def validate(self) -> None:
        from roottrading.domain.market import INTERVAL_MS

        if self.interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {self.interval!r}")
        if self.source not in ("synthetic", "bundled", "candles"):
            raise ValueError(f"source must be synthetic, bundled or candles, not {self.source!r}")
        if self.source == "candles" and not self.candles:
            raise ValueError("source='candles' needs candles={symbol: [Candle, ...]}")
        if self.updates_per_candle < 1:
            raise ValueError("updates_per_candle must be >= 1")
        for name in (
            "malformed_prob",
            "duplicate_prob",
            "out_of_order_prob",
            "rest_429_prob",
            "rest_418_prob",
            "rest_5xx_prob",
            "order_timeout_prob",
            "order_5xx_prob",
            "timestamp_error_prob",
            "insufficient_balance_prob",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
