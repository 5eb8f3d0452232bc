"""The ccxt adapter EXCHANGE=ccxt:<id> names, built from the settings (keys, URLs, update intervals): apart from
the adapter so the adapter takes plain arguments (tests build it directly) and the settings' names stay here."""

from __future__ import annotations

from typing import Any

from roottrading.exchange.ccxt.adapter import CcxtExchange


def ccxt_from_settings(settings: Any, clock: Any = None) -> CcxtExchange:
    """The adapter EXCHANGE=ccxt:<id> names. ccxt:binance takes the BINANCE_* keys, and BINANCE_REST_URL when
    it is not Binance's own (a simulator); other ids take CCXT_API_KEY/SECRET/PASSWORD and CCXT_REST_URL."""
    ex_id = settings.ccxt_id
    if ex_id is None:
        raise ValueError(f"EXCHANGE={settings.exchange} is not a ccxt exchange")
    if ex_id == "binance":
        key, secret, password = settings.binance_api_key, settings.binance_secret_key, None
        url = settings.binance_rest_url if settings.binance_rest_url != "https://api.binance.com" else None
    else:
        key, secret, password = settings.ccxt_api_key, settings.ccxt_secret, settings.ccxt_password
        url = settings.ccxt_rest_url or None
    return CcxtExchange(
        ex_id,
        api_key=key.get_secret_value(),
        secret=secret.get_secret_value(),
        password=password.get_secret_value() if password is not None else None,
        rest_url=url,
        poll_interval_s=settings.ccxt_poll_interval_s,
        user_stream=settings.ccxt_user_stream,
        reconcile_interval_s=settings.ccxt_reconcile_interval_s,
        clock=clock,
    )
