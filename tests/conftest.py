"""Shared fixtures. Server-backed fixtures skip locally when the server is absent, but FAIL when CI=true:
CI must never pass by skipping the tests that prove the real backends work."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

# Third-party samples copied into the repository (licences and attribution in tests/fixtures/README.md):
# a clone of the project alone runs every test.
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str, default_port: int) -> bool:
    u = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, url: str, default_port: int) -> None:
    """Skip when the server is missing on a dev machine; fail under CI=true."""
    if _reachable(url, default_port):
        return
    msg = f"{name} not reachable at {url}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: server-backed tests must run)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: data files that ship with the repository (never skipped: they are always there)."""
    return FIXTURES_DIR


@pytest.fixture
def redis_url() -> str:
    require_server("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
def postgres_url() -> str:
    require_server("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


@pytest.fixture
def nats_url() -> str:
    require_server("NATS", NATS_URL, 4222)
    return NATS_URL


@pytest.fixture
def unique() -> str:
    """A short unique suffix so tests sharing a server never see each other's data."""
    return uuid.uuid4().hex[:10]
