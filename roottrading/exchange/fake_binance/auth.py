"""Request authentication exactly as Binance Spot checks it: API key header, signature, timestamp, recvWindow.

Order of checks and error codes (Binance spot error docs):
  X-MBX-APIKEY missing or malformed        -> -2014 "API-key format invalid."  (HTTP 401)
  X-MBX-APIKEY not an account key          -> -2015 "Invalid API-key, IP, or permissions for action." (401)
  timestamp / signature missing            -> -1102 "Mandatory parameter '...' was not sent, ..."
  recvWindow > 60000 or not a number       -> -1131 / -1100
  signature does not match                 -> -1022 "Signature for this request is not valid."
  timestamp > server time + 1000 ms        -> -1021 "Timestamp for this request was 1000ms ahead of the server's time."
  server time - timestamp > recvWindow     -> -1021 "Timestamp for this request is outside of the recvWindow."
The signed payload is the raw query string followed by the raw body (no separator), minus `signature`.
If a parameter is in both, the query string's value wins.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from roottrading.exchange.binance.signing import split_signature, verify_hmac
from roottrading.exchange.errors import (
    BadApiKeyFormat,
    BinanceError,
    IllegalParameter,
    InvalidApiKey,
    InvalidSignature,
    InvalidTimestamp,
    MandatoryParamMissing,
)

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.account import TradingAccount

_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")


class RecvWindowTooLarge(BinanceError):
    code = -1131
    default_msg = "recvWindow must be less than 60000"


async def read_params(request: Request) -> tuple[dict[str, str], str, str]:
    """(params, raw query, raw body). Body params are form-encoded; query values win on duplicates."""
    raw_query = request.url.query
    raw_body = (await request.body()).decode("utf-8", errors="replace")
    params: dict[str, str] = {}
    if raw_body and "application/json" not in request.headers.get("content-type", ""):
        params.update(parse_qsl(raw_body, keep_blank_values=True))
    params.update(parse_qsl(raw_query, keep_blank_values=True))
    return params, raw_query, raw_body


def check_api_key(request: Request, account: TradingAccount) -> None:
    key = request.headers.get("x-mbx-apikey")
    if not key or not _KEY_RE.match(key):
        raise BadApiKeyFormat()
    if key != account.api_key:
        raise InvalidApiKey()


def check_signed(params: dict[str, str], raw_query: str, raw_body: str, account: TradingAccount) -> None:
    """Signature, timestamp and recvWindow of a SIGNED request (the API key is checked first by the caller)."""
    if not params.get("timestamp"):
        raise MandatoryParamMissing.for_param("timestamp")
    if not params.get("signature"):
        raise MandatoryParamMissing.for_param("signature")
    try:
        ts = int(params["timestamp"])
        recv_window = int(params.get("recvWindow", "5000") or 5000)
    except ValueError:
        raise IllegalParameter("Illegal characters found in parameter 'timestamp' or 'recvWindow'.") from None
    if recv_window > 60_000 or recv_window <= 0:
        raise RecvWindowTooLarge()
    q, q_sig = split_signature(raw_query)
    b, b_sig = split_signature(raw_body)
    sig = unquote(q_sig if q_sig is not None else (b_sig or ""))
    if not verify_hmac(account.api_secret, q + b, sig):
        raise InvalidSignature()
    now = account.now_ms()
    if ts > now + 1000:
        raise InvalidTimestamp("Timestamp for this request was 1000ms ahead of the server's time.")
    if now - ts > recv_window:
        raise InvalidTimestamp()
