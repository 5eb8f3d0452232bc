"""Every bus topic, its payload schema and the wire format, in one place.

Wire format: a JSON envelope `{"v", "id", "topic", "key", "ts", "payload"}`. `v` is the schema version:
a consumer refuses a message from a newer major version with a clear error instead of guessing.
Decoding validates the payload against the topic's Struct, so a malformed message raises
`MessageError` (which the bus parks on the dead-letter topic) and never crashes a consumer.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import msgspec

from roottrading.domain import Balance, Candle, Fill, Order, OrderRequest, Signal, Tick, TradeCycle
from roottrading.domain.money import plain_text

SCHEMA_VERSION = 1

# --- topic names -----------------------------------------------------------------------------------
MARKET_CANDLES = "market.candles"  # + ".<SYMBOL>"
MARKET_TICKS = "market.ticks"  # + ".<SYMBOL>"
SIGNALS = "signals"
ORDER_REQUESTS = "order.requests"
ORDER_UPDATES = "order.updates"
TRADE_EXECUTIONS = "trade.executions"
CYCLE_UPDATES = "cycle.updates"
PORTFOLIO_BALANCES = "portfolio.balances"
RISK_EVENTS = "risk.events"
LOGS = "logs"  # + ".<level>"
SYSTEM_HEALTH = "system.health"
BACKTEST_PROGRESS = "backtest.progress"
UNIVERSE_CHANGED = "universe.changed"
STRATEGY_CONTROL = "control.strategies"  # a strategy enabled/disabled or re-parameterised, for every analyzer
DEAD_LETTER = "deadletter"  # + ".<original topic>"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def candles_topic(symbol: str) -> str:
    return f"{MARKET_CANDLES}.{symbol.upper()}"


def ticks_topic(symbol: str) -> str:
    return f"{MARKET_TICKS}.{symbol.upper()}"


def logs_topic(level: str) -> str:
    return f"{LOGS}.{level.lower()}"


def dead_letter_topic(topic: str) -> str:
    return f"{DEAD_LETTER}.{topic}"


# --- payloads that are not plain domain types ---------------------------------------------------------
class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An order's new state, announced after it is stored."""

    event: str  # NEW, TRADE, CANCELED, REJECTED, EXPIRED, ...
    order: Order
    time: int


class BalancesUpdate(msgspec.Struct, frozen=True, kw_only=True):
    time: int
    balances: list[Balance]
    total_value: Decimal | None = None
    quote_asset: str = "USDT"


class RiskEvent(msgspec.Struct, frozen=True, kw_only=True):
    time: int
    rule: str
    action: str  # reject, shrink, pause, disable_strategy, kill_switch, resume
    message: str
    symbol: str | None = None
    strategy: str | None = None


class LogRecord(msgspec.Struct, frozen=True, kw_only=True):
    time: int
    level: str
    service: str
    event: str
    context: dict[str, Any] = {}


class BacktestProgress(msgspec.Struct, frozen=True, kw_only=True):
    """A backtest run's progress (services/backtest): `status` running, completed, interrupted or failed."""

    run_id: str
    status: str
    done: int
    total: int
    time: int  # wall clock, epoch ms
    error: str | None = None


class UniverseChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The universe after a refresh (services/universe). Full lists, not only the change, so a consumer that
    missed a message (restart) converges on the next one.

    `members`: pairs new entries may be taken on. `streamed`: members plus pairs that left but still have an
    open cycle: their market data keeps flowing until the cycle exits (never orphaned)."""

    time: int  # market time of the refresh (platform clock), epoch ms
    members: list[str]
    streamed: list[str]
    added: list[str] = []
    removed: list[str] = []


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    time: int
    status: str  # ok, degraded, down
    components: dict[str, dict[str, Any]]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message that could not be handled: the raw bytes are kept so nothing is lost."""

    topic: str
    group: str
    message_id: str
    error: str
    attempts: int
    raw: str
    time: int


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """Test/benchmark payload (also used by the health checks of the bus)."""

    seq: int
    sent_ns: int = 0
    note: str = ""


class StrategyControl(msgspec.Struct, frozen=True, kw_only=True):
    """A change asked on one analyzer instance's API (PUT /strategies/{name}), applied by every other one."""

    time: int
    strategy: str
    symbol: str | None = None
    enabled: bool | None = None
    params: dict[str, Any] | None = None
    origin: str = ""  # the instance that applied it first (it skips its own message)


_EXACT: dict[str, type] = {
    SIGNALS: Signal,
    ORDER_REQUESTS: OrderRequest,
    ORDER_UPDATES: OrderUpdate,
    TRADE_EXECUTIONS: Fill,
    CYCLE_UPDATES: TradeCycle,
    PORTFOLIO_BALANCES: BalancesUpdate,
    RISK_EVENTS: RiskEvent,
    SYSTEM_HEALTH: HealthReport,
    BACKTEST_PROGRESS: BacktestProgress,
    UNIVERSE_CHANGED: UniverseChanged,
    STRATEGY_CONTROL: StrategyControl,
}
_PREFIX: dict[str, type] = {
    MARKET_CANDLES: Candle,
    MARKET_TICKS: Tick,
    LOGS: LogRecord,
    DEAD_LETTER: DeadLetter,
    "test": Ping,
    "bench": Ping,
}


class MessageError(ValueError):
    """A message that cannot be decoded or does not match its topic's schema."""


def schema_for(topic: str) -> type:
    """The payload Struct for a topic; a clear error for a topic nobody declared."""
    if topic in _EXACT:
        return _EXACT[topic]
    prefix = topic.split(".", 1)[0] if topic.startswith(("test", "bench", DEAD_LETTER)) else topic.rsplit(".", 1)[0]
    if prefix in _PREFIX:
        return _PREFIX[prefix]
    raise MessageError(f"unknown topic {topic!r}: declare it in roottrading/messages.py")


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    v: int
    id: str
    topic: str
    key: str | None
    ts: int
    payload: msgspec.Raw


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded message as handlers receive it."""

    id: str
    topic: str
    key: str | None
    ts: int
    payload: Any
    attempt: int = 1


_encoder = msgspec.json.Encoder(decimal_format="string")
_envelope_decoder = msgspec.json.Decoder(Envelope)
_payload_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def new_message_id() -> str:
    return uuid.uuid4().hex


def encode(topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None, ts: int = 0) -> bytes:
    """Serialise a payload for `topic`; refuses a payload of the wrong type before it reaches the wire."""
    expected = schema_for(topic)
    if not isinstance(payload, expected):
        raise MessageError(f"topic {topic!r} carries {expected.__name__}, got {type(payload).__name__}")
    body = _encoder.encode(payload)
    env = Envelope(
        v=SCHEMA_VERSION, id=msg_id or new_message_id(), topic=topic, key=key, ts=ts, payload=msgspec.Raw(body)
    )
    return _encoder.encode(env)


def decode(raw: bytes | str, attempt: int = 1) -> Message:
    """Parse and validate a wire message. Raises MessageError with the reason; never anything else."""
    try:
        env = _envelope_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MessageError(f"bad envelope: {exc}") from None
    if env.v > SCHEMA_VERSION:
        raise MessageError(f"message {env.id} has schema v{env.v}; this build reads up to v{SCHEMA_VERSION}")
    schema = schema_for(env.topic)
    dec = _payload_decoders.get(schema)
    if dec is None:
        dec = _payload_decoders[schema] = msgspec.json.Decoder(schema)
    try:
        payload = dec.decode(env.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MessageError(f"bad {schema.__name__} payload on {env.topic!r} (id {env.id}): {exc}") from None
    return Message(id=env.id, topic=env.topic, key=env.key, ts=env.ts, payload=payload, attempt=attempt)


def to_builtins(obj: Any) -> Any:
    """JSON-friendly dict form for REST responses and the store: Decimals as plain-notation strings.

    msgspec renders a Decimal with `str()`, which prints `2E+4` or `1E-8`; people and JSON clients
    reading a price expect `20000` and `0.00000001`. The bus wire keeps msgspec's form (it round-trips
    exactly and is the hot path); everything a person or another program reads goes through here.
    """
    return _plain_decimals(msgspec.to_builtins(obj, builtin_types=(Decimal,)))


def _plain_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_text(value)
    if isinstance(value, dict):
        return {k: _plain_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_decimals(v) for v in value]
    return value
