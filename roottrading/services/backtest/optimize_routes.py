"""Optimisation studies, read-only (one-process mode: /api/backtest/optimize/...): the dashboard's Optimise page.

Studies are run by `roottrading optimize` (locally or on a cluster) and recorded in the study storage beside the
platform's database (optimize/results.py); these routes read that record and the trials' progress with a few
SQL aggregates, so polling a running 10,000-trial study costs the same as a finished 10-trial one. Applying a
study's chosen parameters goes through the analyzer's own route (PUT /api/analyzer/strategies/{name}, per
symbol), which validates and saves them, exactly as `roottrading optimize --apply` does.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException

from roottrading.runtime.errors import error_responses


class StudyReader:
    """The study storage of a platform database, opened on first use (and only if studies were ever run)."""

    def __init__(self, database_url: str | None) -> None:
        from roottrading.optimize.study import platform_storage_url

        self.url = platform_storage_url(database_url) if database_url else None
        self._storage: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from roottrading.optimize.study import make_storage

        with self._lock:
            if self._storage is None:
                if self.url is None:
                    return None
                if (
                    self.url.startswith("sqlite:///")
                    and not Path(self.url.removeprefix("sqlite:///").split("?")[0]).exists()
                ):
                    return None  # no study was ever run: do not create an empty storage just to say so
                self._storage = make_storage(self.url)
            return self._storage

    def list(self) -> list[dict[str, Any]]:
        from roottrading.optimize.results import list_studies

        storage = self._open()
        return [] if storage is None else list_studies(storage)

    def get(self, name: str) -> dict[str, Any] | None:
        from roottrading.optimize.results import get_study

        storage = self._open()
        return None if storage is None else get_study(storage, name)


def _brief(d: dict[str, Any]) -> dict[str, Any]:
    keep = ("study", "strategy", "symbols", "interval", "objective", "status", "started_at", "finished_at")
    out = {k: d.get(k) for k in keep}
    out.update(
        trials_done=d["trials_done"],
        trials_total=d["trials_total"],
        best_value=d["best_value"],
        windows=len(d["windows"]),
        walk_forward=d.get("walk_forward"),
        chosen_params=(d.get("result") or {}).get("chosen_params"),
    )
    return out


def optimize_router(reader: StudyReader) -> APIRouter:
    r = APIRouter(prefix="/optimize")

    @r.get("/studies")
    async def studies() -> list[dict[str, Any]]:
        """Every recorded study, newest first: progress (trials done/total, best value) and chosen parameters."""
        return [_brief(d) for d in await asyncio.to_thread(reader.list)]

    @r.get("/studies/{name:path}", responses=error_responses(404))
    async def study(name: str) -> dict[str, Any]:
        """One study: its plan, per window the progress and (once finished) the walk-forward row, and the result
        (stitched out-of-sample figures and the chosen parameters)."""
        d = await asyncio.to_thread(reader.get, name)
        if d is None:
            raise HTTPException(404, f"no study {name!r}")
        return d

    return r
