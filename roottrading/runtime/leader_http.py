"""HTTP side of active/standby (runtime/leader.py): a standby answers 503 naming the leader, so a caller with
several configured URLs (the coordinator's risk client) asks the next one."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from roottrading.runtime.leader import NotLeader


def standby_route_class() -> type[APIRoute]:
    """Routes that answer NotLeader with 503 {"detail", "leader"}: the caller asks the next instance."""

    class StandbyRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await inner(request)
                except NotLeader as exc:
                    return JSONResponse({"detail": str(exc), "leader": exc.leader}, status_code=503)

            return handler

    return StandbyRoute
