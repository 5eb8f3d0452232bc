"""The FastAPI app around a set of services.

One-process mode: every service's routes under `/api/<service>/...`, `GET /api/health` aggregating all.
Per-service mode: the reference paths at the root (`GET /health`, `GET /orders`, ...).
Every mutating request (POST, PUT, PATCH, DELETE) needs `Authorization: Bearer <API_TOKEN>`; without it
the middleware answers 401 before any route runs, so nothing can change.
Every error answer has one shape, declared in the OpenAPI document (runtime/errors.py).
A NUL character in the path or the query is refused (422) before any route runs: PostgreSQL cannot store or
compare it in text, so a filter like `?symbol=%00` was a 500 there (and a silent no-match on SQLite).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from roottrading.runtime import errors
from roottrading.runtime.metrics import install_metrics

if TYPE_CHECKING:
    from roottrading.runtime.host import Host
    from roottrading.runtime.service import Service

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def build_app(host: Host, *, per_service: bool = False) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """When served by an external ASGI server (or a test client), the app owns the host's lifecycle."""
        owned = not host.started
        if owned:
            await host.start()
        try:
            yield
        finally:
            if owned:
                await host.stop()

    app = FastAPI(
        title="RootTrading",
        version="0.1.0",
        lifespan=lifespan,
        description="Automated crypto trading platform. Mutating routes need a bearer token.",
    )
    token = host.api_token
    errors.install(app, auth_methods=MUTATING)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method in MUTATING:
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not given or not secrets.compare_digest(given.encode(), token.encode()):
                return errors.error_json(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        params = request.query_params.multi_items()
        if "\x00" in request.url.path or any("\x00" in k or "\x00" in v for k, v in params):
            return errors.error_json(422, "a NUL character is not allowed in the path or the query")
        return await call_next(request)

    prefix_health = "" if per_service else "/api"

    @app.get(f"{prefix_health}/health", tags=["system"])
    async def health() -> JSONResponse:
        report = await host.health()
        return JSONResponse(report, status_code=200 if report["status"] != "down" else 503)

    for name, svc in host.services.items():
        router = svc.router()
        if not per_service:  # per-service mode: the root /health above already reports this service
            app.add_api_route(
                f"/api/{name}/health", _service_health(svc), methods=["GET"], tags=[name], summary=f"{name} health"
            )
        if router is not None:
            app.include_router(router, prefix="" if per_service else f"/api/{name}", tags=[name])

    install_metrics(app, host)  # GET /metrics, before the dashboard's catch-all route
    if not per_service:
        _mount_dashboard(app)
    app.state.host = host
    return app


def _service_health(svc: Service) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Every service's `GET .../health`, from its `health()`: written once here, not in each service."""

    async def health() -> dict[str, Any]:
        h = await svc.health()
        return {"status": h.status, **h.details}

    return health


def _mount_dashboard(app: FastAPI) -> None:
    """Serve the built React app at `/` (falls back to index.html for client-side routes)."""
    index = WEB_DIR / "index.html"
    if not index.is_file():

        @app.get("/", include_in_schema=False)
        async def no_dashboard() -> dict[str, Any]:
            return {"message": "RootTrading API is running; the dashboard is not built (make web). See /docs."}

        return
    if (WEB_DIR / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str) -> FileResponse:
        if path == "api" or path.startswith("api/"):  # an unknown API route is a 404, not the dashboard
            raise HTTPException(404, f"no such API route: /{path}")
        target = (WEB_DIR / path).resolve()
        if path and target.is_file() and WEB_DIR in target.parents:
            return FileResponse(target)
        return FileResponse(index)
