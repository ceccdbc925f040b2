"""One error tree and one renderer: every failure leaves as application/problem+json."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from app.unavailable import describe, is_database_unavailable

PROBLEM_JSON = "application/problem+json"
DATABASE_RETRY_AFTER_S = 2
log = logging.getLogger(__name__)


class DomainError(Exception):
    """Raised by services; carries the HTTP status and a stable snake_case code."""

    status_code = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status_code, code, title = 404, "not_found", "Not found"


class Unauthorized(DomainError):
    status_code, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: every 401 names its scheme


class Forbidden(DomainError):
    status_code, code, title = 403, "forbidden", "Forbidden"


class Conflict(DomainError):
    status_code, code, title = 409, "conflict", "Conflict"


class Unprocessable(DomainError):
    """A 422 always carries `errors: [{loc, msg}]`, like a schema validation failure."""

    status_code, code, title = 422, "unprocessable", "Unprocessable content"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        loc: list[str | int] | None = None,
        **extra: Any,
    ) -> None:
        extra.setdefault("errors", [{"loc": loc or ["body"], "msg": detail}])
        super().__init__(detail, code=code, **extra)


class PaymentRequired(DomainError):
    status_code, code, title = 402, "budget_exceeded", "Budget exceeded"


class BadGateway(DomainError):
    status_code, code, title = 502, "upstream_unavailable", "Upstream unavailable"


class TooManyRequests(DomainError):
    status_code, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after_s)


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://motion-gateway.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    if "request_id" not in body and (request_id := current_request_id()):
        body["request_id"] = request_id
    return body


def current_request_id() -> str | None:
    """The id the request-id middleware bound for the request being answered, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem(status, title, detail, code, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _loc(error: dict[str, Any]) -> list[str | int]:
    # In full, like every other 422: ["body", "prompt"], ["query", "cursor"], ["body"].
    return list(error.get("loc", ())) or ["body"]


async def _domain_handler(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(DomainError, exc)
    return problem_response(
        exc.status_code, exc.title, exc.detail, exc.code, headers=exc.headers or None, **exc.extra
    )


def _error(error: dict[str, Any]) -> dict[str, Any]:
    if error.get("type") == "json_invalid":  # its loc is ("body", <char offset>)
        position = list(error.get("loc", ()))[1:]
        reason = (error.get("ctx") or {}).get("error", "malformed")
        where = f" at character {position[0]}" if position else ""
        return {"loc": ["body"], "msg": f"the body is not valid JSON: {reason}{where}"}
    return {"loc": _loc(error), "msg": error.get("msg", "")}


async def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = [_error(e) for e in exc.errors()]
    # A rule of ours names itself (e.g. `prompt_too_long`); pydantic's own are generic.
    ours = [e["type"] for e in exc.errors() if str(e.get("type", "")).startswith("mgw_")]
    code = ours[0].removeprefix("mgw_") if ours else "validation_error"
    detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in errors)
    return problem_response(422, "Validation failed", detail, code, errors=errors)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path: the router's 405 names only the
    methods of the first route that matched the path, not of all of them."""
    routes = [r for r in request.app.router.routes if isinstance(r, BaseRoute)]
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        401: "unauthorized",
        413: "content_too_large",
    }.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(
        exc.status_code, str(exc.detail), str(exc.detail), code, headers=headers
    )


def unhandled_error_response(exc: BaseException) -> JSONResponse:
    """The one catch-all: 503 when the database is unreachable, else a logged 500."""
    if is_database_unavailable(exc):
        log.warning("database unavailable: %s", describe(exc))
        return problem_response(
            503,
            "Database unavailable",
            "the database cannot be reached right now; retry shortly",
            "database_unavailable",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    log.error("unhandled error: %s", describe(exc), exc_info=exc)
    return problem_response(
        500,
        "Internal server error",
        "an unexpected error occurred; quote the request_id when reporting it",
        "internal_error",
    )


async def _unhandled_handler(_: Request, exc: Exception) -> JSONResponse:
    return unhandled_error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    # Backstop only: the request-id middleware answers unhandled errors first (with
    # the request id bound); this catches what escapes the middleware itself.
    app.add_exception_handler(Exception, _unhandled_handler)
    app.add_exception_handler(DomainError, _domain_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)


PROBLEM_RESPONSE_SCHEMA: dict[str, Any] = {
    "description": "Problem details (RFC 9457)",
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail", "code"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                    "request_id": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}},
                        },
                    },
                },
            }
        }
    },
}


_STATUS_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: `Bearer`",
            "schema": {"type": "string"},
        }
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations for a route's error responses."""
    return {
        status: {**PROBLEM_RESPONSE_SCHEMA, "headers": _STATUS_HEADERS[status]}
        if status in _STATUS_HEADERS
        else PROBLEM_RESPONSE_SCHEMA
        for status in statuses
    }


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return dependant.call is call or any(_depends_on(d, call) for d in dependant.dependencies)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)  # an include_router() branch


def declare_server_errors(
    app: FastAPI, *, database_dependencies: tuple[Callable[..., Any], ...]
) -> None:
    """Declare 500 on every route, and 503 on those that need the database."""
    for route in _api_routes(app.router.routes):
        route.responses.setdefault(500, PROBLEM_RESPONSE_SCHEMA)
        if any(_depends_on(route.dependant, dep) for dep in database_dependencies):
            route.responses.setdefault(503, PROBLEM_RESPONSE_SCHEMA)


def document_problem_validation_errors(app: FastAPI) -> None:
    """Every 422 leaves as problem+json, but FastAPI documents its own default 422 (a JSON
    `HTTPValidationError`) on each route that does not declare one: the schema would lie
    about the answer, so the served schema says problem+json there too."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default()
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
                if "application/json" in responses.get("422", {}).get("content", {}):
                    responses["422"] = copy.deepcopy(PROBLEM_RESPONSE_SCHEMA)
        schemas = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{name}" not in repr(schema.get("paths")):
                schemas.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
