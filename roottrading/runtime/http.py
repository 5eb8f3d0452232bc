"""The FastAPI app around a set of services.

One-process mode: every service's routes under `/api/<service>/...`, `GET /api/health` aggregating all.
Per-service mode: the reference paths at the root (`GET /health`, `GET /orders`, ...).
Every mutating request (POST, PUT, PATCH, DELETE) needs `Authorization: Bearer <API_TOKEN>`; without it
the middleware answers 401 before any route runs, so nothing can change.
Bound beyond loopback (HTTP_HOST not 127.0.0.1/::1/localhost), reads and the live WebSocket need the token too:
positions, orders and balances are private. The one exception is the dashboard's static files and the API docs
(GET outside /api in the one-process mode): they hold no data, and a browser cannot attach a header to the page
load. The WebSocket takes the token from `Authorization` or, since browsers cannot set headers on a WebSocket,
from `?token=`. Such a server refuses to start without API_TOKEN (or API_TOKEN_FILE) set (`exposure_problem`).
CORS is closed unless CORS_ALLOW_ORIGINS lists origins: without the header a browser page from another origin
cannot read any answer.
Every error answer has one shape, declared in the OpenAPI document (runtime/errors.py).
A NUL character in the path or the query is refused (422) before any route runs: PostgreSQL cannot store or
compare it in text, so a filter like `?symbol=%00` was a 500 there (and a silent no-match on SQLite).
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from roottrading.runtime import errors
from roottrading.runtime.metrics import install_metrics

if TYPE_CHECKING:
    from roottrading.config import Settings
    from roottrading.runtime.host import Host
    from roottrading.runtime.service import Service

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def is_loopback(bind: str) -> bool:
    """True when a server bound to `bind` is reachable from this machine only."""
    if bind.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:  # a host name: it resolves to whatever the network says, so treat it as exposed
        return False


def exposure_problem(settings: Settings) -> str | None:
    """Why this server must not start, or None: bound beyond loopback, the token must be chosen by the operator
    (a token generated at start would only be shown in a log, and each container would generate its own)."""
    if is_loopback(settings.http_host) or settings.api_token.get_secret_value():
        return None
    return (
        f"HTTP_HOST={settings.http_host} exposes the API beyond this machine: set API_TOKEN (or API_TOKEN_FILE="
        "/run/secrets/api_token); every route then needs it (see docs/deployment.md)"
    )


def _bearer(value: str) -> str:
    return value[7:].strip() if value.lower().startswith("bearer ") else ""


def _token_ok(given: str, token: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), token.encode())


class WebSocketToken:
    """ASGI middleware for the WebSocket scope (FastAPI's http middleware never sees it): when the server is
    exposed, a WebSocket without the token is closed before the route accepts it (the client sees HTTP 403)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            given = _bearer(headers.get("authorization", ""))
            if not given:
                from urllib.parse import parse_qs

                given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]
            if not _token_ok(given, self.token):
                await send({"type": "websocket.close", "code": 1008, "reason": "missing or invalid token"})
                return
        await self.app(scope, receive, send)


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

    exposed = not is_loopback(host.settings.http_host)

    def needs_token(request: Request) -> bool:
        if request.method in MUTATING:
            return True
        if not exposed or request.method == "OPTIONS":  # a CORS preflight never carries the token
            return False
        return per_service or request.url.path == "/api" or request.url.path.startswith("/api/")

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if needs_token(request) and not _token_ok(_bearer(request.headers.get("authorization", "")), token):
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
    if exposed:
        app.add_middleware(WebSocketToken, token=token)
    origins = host.settings.cors_allow_origins
    if origins:  # added last, so it runs first: a preflight is answered before the token check
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
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
