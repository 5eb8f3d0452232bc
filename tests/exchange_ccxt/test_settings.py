"""EXCHANGE selects the live adapter: binance (native, default) or ccxt:<id>, with its keys checked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from roottrading.clock import SimClock
from roottrading.config import ConfigError, load_settings
from roottrading.exchange.ccxt.adapter import CcxtExchange
from roottrading.runtime.wiring import Wiring
from roottrading.services.trader.exchange_factory import create_exchange


def live(**kw: object):
    return load_settings(trading_mode="live", binance_api_key="k", binance_secret_key="s", api_token="t", **kw)


async def test_ccxt_binance_uses_the_binance_keys_and_a_simulator_url() -> None:
    s = live(exchange="CCXT:binance", binance_rest_url="http://127.0.0.1:9000")
    assert s.exchange == "ccxt:binance" and s.ccxt_id == "binance"
    ex, feed = create_exchange(SimpleNamespace(settings=s, clock=SimClock(), wiring=Wiring()))
    try:
        assert isinstance(ex, CcxtExchange) and feed is False
        assert ex.client.apiKey == "k" and ex.client.urls["api"]["private"].startswith("http://127.0.0.1:9000/api/v3")
        # the user stream too (CCXT_USER_STREAM=auto by default): ccxt.pro's class, its WebSocket API moved there
        assert ex.stream is not None and ex.reconcile_interval_s == 30.0
        assert ex.client.urls["api"]["ws"]["ws-api"]["spot"] == "http://127.0.0.1:9000/ws-api/v3"
    finally:
        await ex.close()


async def test_ccxt_user_stream_poll_keeps_polling_only() -> None:
    s = live(exchange="ccxt:binance", ccxt_user_stream="poll", ccxt_poll_interval_s=2.0)
    ex, _ = create_exchange(SimpleNamespace(settings=s, clock=SimClock(), wiring=Wiring()))
    try:
        assert isinstance(ex, CcxtExchange) and ex.stream is None and ex.poll_pace_s() == 2.0
    finally:
        await ex.close()
    with pytest.raises(ConfigError):
        live(exchange="ccxt:binance", ccxt_user_stream="sometimes")


async def test_native_stays_the_default() -> None:
    s = live()
    assert s.exchange == "binance" and s.ccxt_id is None
    ex, _ = create_exchange(SimpleNamespace(settings=s, clock=SimClock(), wiring=Wiring()))
    try:
        assert type(ex).__name__ == "BinanceExchange"
    finally:
        await ex.close()


def test_other_ccxt_exchanges_need_their_own_keys() -> None:
    with pytest.raises(ConfigError, match="EXCHANGE=ccxt:kraken needs CCXT_API_KEY and CCXT_SECRET"):
        live(exchange="ccxt:kraken")
    s = live(exchange="ccxt:kraken", ccxt_api_key="a", ccxt_secret="b")
    assert s.ccxt_id == "kraken"
    with pytest.raises(ConfigError, match=r"EXCHANGE: .*ccxt:<id>"):
        load_settings(exchange="kraken")


def test_an_unknown_ccxt_id_is_refused_when_the_adapter_is_built() -> None:
    with pytest.raises(ValueError, match="ccxt has no exchange 'nosuchexchange'"):
        CcxtExchange("nosuchexchange", api_key="a", secret="b")
