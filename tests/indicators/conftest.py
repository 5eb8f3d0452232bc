"""Module-scoped access to the shared data folder (the root `shared_data` fixture is function-scoped)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED = _ROOT if _ROOT.is_dir() else Path(os.environ.get("ROOTTRADING_SHARED_DATA", "../shared/data")).resolve()


@pytest.fixture(scope="module")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"shared data folder missing: {SHARED}")
        pytest.skip(f"shared data folder missing: {SHARED}")
    return SHARED
