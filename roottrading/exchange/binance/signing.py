"""Request signing for Binance's SIGNED endpoints (HMAC-SHA256 and Ed25519 API keys).

Why a module of its own: the adapter signs, the fake Binance server verifies, and the tests check both
against Binance's documented example; all three must agree on exactly which bytes are signed.

Binance rule: the signature covers `totalParams` = the query string concatenated with the request body
(no separator), exactly as sent on the wire. HMAC keys give a lower-case hex digest; Ed25519 keys give a
base64 signature (which must then be percent-encoded in the request). Secrets never appear in `repr`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode


class Signer(Protocol):
    kind: str

    def sign(self, payload: str) -> str:
        """Signature of `payload` (the exact totalParams string), ready to be url-encoded."""
        ...


class HmacSigner:
    """HMAC-SHA256 with the API secret; hex digest (Binance's classic keys)."""

    kind = "HMAC_SHA256"

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("empty Binance API secret")
        self._key = secret.encode()

    def sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(<secret hidden>)"


class Ed25519Signer:
    """Ed25519 with a private key (PEM, PKCS#8); base64 signature (Binance's recommended key type)."""

    kind = "ED25519"

    def __init__(self, private_key_pem: str | bytes, password: bytes | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        key = load_pem_private_key(pem, password=password)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 private key")
        self._key = key

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._key.sign(payload.encode())).decode()

    def __repr__(self) -> str:
        return "Ed25519Signer(<key hidden>)"


def make_signer(secret_or_pem: str | bytes) -> Signer:
    """An Ed25519 signer for a PEM private key, else an HMAC signer for a plain secret."""
    text = secret_or_pem.decode() if isinstance(secret_or_pem, bytes) else secret_or_pem
    if "-----BEGIN" in text and "PRIVATE KEY-----" in text:
        return Ed25519Signer(text)
    return HmacSigner(text)


def _fmt(value: Any) -> str:
    """Parameter value as Binance expects it: bools lower-case, Decimals in plain notation (never 1E+1)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    from decimal import Decimal

    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode_params(params: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """`a=1&b=2` in the given order, None values dropped, values percent-encoded (like urllib)."""
    items = params.items() if isinstance(params, Mapping) else params
    return urlencode([(k, _fmt(v)) for k, v in items if v is not None])


def signed_query(params: Mapping[str, Any], signer: Signer) -> str:
    """The full query string with `&signature=` appended (signature over the encoded params)."""
    payload = encode_params(params)
    sig = signer.sign(payload)
    return f"{payload}&signature={quote(sig, safe='')}"


def split_signature(raw: str) -> tuple[str, str | None]:
    """(raw without the `signature` parameter, the url-encoded signature or None). Order is preserved so the
    remainder is exactly what the client signed."""
    if not raw:
        return "", None
    parts = raw.split("&")
    sig = None
    kept = []
    for p in parts:
        if p.startswith("signature="):
            sig = p[len("signature=") :]
        else:
            kept.append(p)
    return "&".join(kept), sig


def verify_hmac(secret: str, payload: str, signature: str) -> bool:
    """Constant-time check of a hex HMAC-SHA256 signature (case-insensitive, as hex is)."""
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())
