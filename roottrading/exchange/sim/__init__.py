"""Simulated spot exchange (matching engine) for demo mode, paper trading and backtests.

Execution model
---------------
- Order types: MARKET (by quantity or quoteOrderQty), LIMIT (GTC, IOC, FOK), LIMIT_MAKER, STOP_LOSS_LIMIT,
  TAKE_PROFIT_LIMIT, and classic OCO (LIMIT_MAKER + STOP_LOSS_LIMIT sharing one order list id and one
  lock; when a leg fills, even partly, or triggers, the other leg EXPIRES; cancelling a leg cancels both).
- Market data: `on_trade` / `on_book` / `on_tick` when ticks exist, `on_candle` otherwise.
  The account's orders are matched against the public market only (there is no other participant):
  a resting BUY at L fills at L (maker) when a trade prints at <= L, the ask reaches <= L, or a candle's
  path passes through L; SELL symmetrically. An arriving order that crosses fills at once as taker at the
  ask/bid (else the last trade price).
- Intra-candle path convention: a candle is walked as four prices,
  **O -> L -> H -> C when close >= open (bullish), O -> H -> L -> C otherwise (bearish)**
  (`market.candle_path`, also what the trader walks its stops along: one implementation).
  The jump from the previous close to O is a gap: stops crossed by it see the market at O. Within the
  candle the path is continuous: a stop crossed between two points sees the market at its stop price.
- Stops trigger on the last trade price (the mid of a book update). A trigger condition already true at
  placement is rejected (-2010 "Order would trigger immediately."), as Binance does.
- Fees (SimConfig.maker_fee/taker_fee, default 0.1%) are charged in the asset received, rounded half-up
  to the symbol's commission precision.
- Slippage: MARKET orders fill `slippage_bps` worse than the reference price, rounded to the tick.
- Liquidity: `volume_cap` limits each market event to a fraction of its volume (see SimConfig); the rest
  of a limit order stays open (PARTIALLY_FILLED), of a MARKET/IOC order EXPIRES, and a FOK that cannot fill
  completely EXPIRES without fills.
- Latency: `latency_ms` delays when an order reaches the engine (status NEW meanwhile, funds already
  locked); a LIMIT_MAKER that would take on arrival EXPIRES, a MARKET order that can no longer be paid EXPIRES.
- Balances: a LIMIT/stop BUY locks price*quantity of quote, a SELL locks quantity of base; fills consume
  the lock (a price improvement goes back to free), cancel/expiry unlocks the remainder.
- Filters (roottrading.exchange.filters) are enforced and errors carry Binance's codes.
- Deterministic: no wall clock, no randomness; time only comes from the events and calls fed to it.
- `snapshot` / `restore` / `to_json` persist the whole state as JSON.
"""

from roottrading.exchange.sim.adapter import SimExchange
from roottrading.exchange.sim.config import SimConfig
from roottrading.exchange.sim.engine import SimEngine
from roottrading.exchange.sim.snapshot import restore, snapshot, to_json

__all__ = ["SimConfig", "SimEngine", "SimExchange", "restore", "snapshot", "to_json"]
