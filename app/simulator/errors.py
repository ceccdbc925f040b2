"""The upstream's error shape: `{"error": {"code", "message", "type"}}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import Request
from fastapi.responses import JSONResponse

# The `type` the upstream pairs with each status (UPSTREAM.md §A, "Errors").
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large_error",
    429: "rate_limit_error",
    500: "internal_server_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "gateway_timeout_error",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "internal_server_error" if status >= 500 else "api_error")


class SimulatorError(Exception):
    """An error answered in the upstream's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = error_type_for(status)
        # Most upstream codes equal the type; specific ones are passed in.
        self.code = code or self.type
        self.headers = headers or {}


def error_body(
    exc: SimulatorError, style: Literal["string", "int"]
) -> dict[str, dict[str, str | int]]:
    code: str | int = exc.status if style == "int" else exc.code
    return {"error": {"code": code, "message": exc.message, "type": exc.type}}


def error_response(exc: SimulatorError, style: Literal["string", "int"]) -> JSONResponse:
    return JSONResponse(error_body(exc, style), status_code=exc.status, headers=exc.headers)


def make_handler(
    style: Literal["string", "int"],
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The exception handler the app registers for `SimulatorError`."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, SimulatorError):  # registered for this class only
            raise exc
        return error_response(exc, style)

    return handle
