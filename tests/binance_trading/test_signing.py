"""Signing against Binance's documented examples, and the server-side verification."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from roottrading.exchange.binance.signing import (
    Ed25519Signer,
    HmacSigner,
    make_signer,
    signed_query,
    split_signature,
    verify_hmac,
)

# Binance spot API docs, "SIGNED Endpoint Examples for POST /api/v3/order" (HMAC keys).
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
# Example 3: part in the query string, part in the body -> totalParams is their plain concatenation.
DOC_MIXED = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
    "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
)
DOC_MIXED_SIG = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_hmac_matches_binance_documented_signature() -> None:
    assert HmacSigner(DOC_SECRET).sign(DOC_QUERY) == DOC_SIG
    assert HmacSigner(DOC_SECRET).sign("".join(DOC_MIXED)) == DOC_MIXED_SIG


def test_signed_query_and_server_verification_agree() -> None:
    params = {
        "symbol": "LTCBTC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": 1,
        "price": "0.1",
        "recvWindow": 5000,
        "timestamp": 1499827319559,
    }
    q = signed_query(params, HmacSigner(DOC_SECRET))
    assert q == f"{DOC_QUERY}&signature={DOC_SIG}"
    payload, sig = split_signature(q)
    assert payload == DOC_QUERY and sig == DOC_SIG
    assert verify_hmac(DOC_SECRET, payload, sig)
    assert not verify_hmac(DOC_SECRET, payload.replace("0.1", "0.2"), sig)
    assert not verify_hmac("other", payload, sig)


def test_ed25519_signature_verifies_with_the_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = make_signer(pem)
    assert isinstance(signer, Ed25519Signer)
    sig = signer.sign(DOC_QUERY)
    key.public_key().verify(base64.b64decode(sig), DOC_QUERY.encode())  # raises if invalid
    payload, enc = split_signature(signed_query({"a": 1, "b": "x y"}, signer))
    assert enc is not None and unquote(enc) == signer.sign(payload)  # Ed25519 is deterministic
    assert "/" not in enc and "+" not in enc and "=" not in enc  # base64 characters are percent-encoded


def test_secrets_never_in_repr() -> None:
    assert DOC_SECRET not in repr(HmacSigner(DOC_SECRET))
    assert isinstance(make_signer(DOC_SECRET), HmacSigner)
    with pytest.raises(ValueError):
        HmacSigner("")
