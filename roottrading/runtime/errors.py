"""One error shape for the whole HTTP API, and an OpenAPI document that declares it.

Every error answer, whatever its status (400, 401, 404, 405, 409, 422, ...), is an `ErrorResponse`:

    {"detail": "<a readable reason>", "errors": [{"loc": ["query", "limit"], "msg": "...", "type": "..."}]}

`detail` is always a string: the dashboard and scripts show it as it is. `errors` is present only when
FastAPI's request validation refused the input, one entry per field. FastAPI's default 422 body
(`HTTPValidationError`, `detail` as a list) is replaced by this shape, and so is its schema in the OpenAPI
document: before, routes that raised `HTTPException(422, "...")` sent a string where the document declared a
list, so a generated client or an OpenAPI fuzzer (tests/runtime/test_api_fuzz.py) saw the API break its own
contract.

What declares what:
- `install(app, auth_methods)` registers the exception handlers and post-processes the OpenAPI document:
  every declared 422 becomes an `ErrorResponse`, every route with a body declares a 400 (a body that is not
  JSON), and every route with a method in `auth_methods` declares the bearer-token security scheme and its 401 (the token middleware in runtime/http.py answers before any route).
- Routes declare the other codes they raise with `responses=error_responses(404, 409, ...)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

REF = "#/components/schemas/"
DESCRIPTIONS: dict[int, str] = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    422: "Invalid input (out of range, unknown value, or refused by a validation rule)",
}
BEARER = "bearerAuth"


class FieldError(BaseModel):
    """One refused input field, as FastAPI's request validation reports it."""

    loc: list[str | int] = Field(description='where: ["query", "limit"], ["body", "quantity"], ...')
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every error answer of the API."""

    detail: str = Field(description="a readable reason")
    errors: list[FieldError] | None = Field(None, description="per-field errors when the input failed validation")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that raises these codes: each declared with the one error schema."""
    return {code: {"model": ErrorResponse, "description": DESCRIPTIONS.get(code, "Error")} for code in codes}


def error_json(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An `ErrorResponse` without per-field errors, for answers given outside a route (middlewares)."""
    return JSONResponse({"detail": detail}, status, headers=headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    return error_json(exc.status_code, detail, exc.headers)


def _loc(loc: Iterable[Any]) -> list[str | int]:
    return [x if isinstance(x, int) else str(x) for x in loc]


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """A readable `detail` ("query.limit: Input should be ...; ...") and the per-field list, without the
    refused input itself (it may be large or not JSON)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(loc=_loc(e.get("loc", ())), msg=str(e.get("msg", "")), type=str(e.get("type", "")))
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors) or "invalid request"
    return JSONResponse(ErrorResponse(detail=detail, errors=errors).model_dump(), 422)


def install(app: FastAPI, auth_methods: Iterable[str]) -> None:
    """Answer every error with an `ErrorResponse` and declare it in the app's OpenAPI document."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    build = app.openapi
    methods = {m.lower() for m in auth_methods}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare(build(), methods)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare(doc: dict[str, Any], auth_methods: set[str]) -> dict[str, Any]:
    """Rewrite FastAPI's document: `ErrorResponse` for every 422, bearer security + 401 on `auth_methods`."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _model_schemas(ErrorResponse).items():
        schemas.setdefault(name, schema)
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            for resp in responses.values():
                content = resp.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == REF + "HTTPValidationError":
                    content["schema"] = {"$ref": REF + "ErrorResponse"}
            # the NUL guard (runtime/http.py) may answer 422 on any route, parameters declared or not
            responses.setdefault("422", _declared(422))
            if "requestBody" in op:  # a body that is not JSON at all: FastAPI answers 400 before validation
                responses.setdefault("400", _declared(400))
            if method in auth_methods:
                op.setdefault("security", [{BEARER: []}])
                responses.setdefault("401", _declared(401))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if auth_methods:
        doc["components"].setdefault("securitySchemes", {})[BEARER] = {"type": "http", "scheme": "bearer"}
    return doc


def _declared(code: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(code, "Error"),
        "content": {"application/json": {"schema": {"$ref": REF + "ErrorResponse"}}},
    }


def _model_schemas(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema split into components (the model and the models it uses)."""
    schema = model.model_json_schema(ref_template=REF + "{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {model.__name__: schema, **defs}
