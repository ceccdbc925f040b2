"""X-Request-ID in and out, the catch-all's 500, and what counts as "database unavailable"."""

from __future__ import annotations

import asyncpg
import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from app.errors import install_error_handlers
from app.request_id import RequestIdMiddleware
from app.unavailable import is_database_unavailable


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/ok")
    async def ok() -> dict[str, object]:
        """Echo what the log context holds."""
        return {"bound": structlog.contextvars.get_contextvars().get("request_id")}

    @app.get("/boom")
    async def boom() -> None:
        """A bug."""
        raise ZeroDivisionError("no")

    @app.get("/db-down")
    async def db_down() -> None:
        """The pool could not hand out a connection in time."""
        raise sa_exc.TimeoutError("QueuePool limit reached")

    return app


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


async def test_request_id_is_taken_echoed_and_bound() -> None:
    async with _client() as http:
        given = await http.get("/ok", headers={"X-Request-ID": "abc-123"})
        made = await http.get("/ok")
        refused = await http.get("/ok", headers={"X-Request-ID": "bad id\twith spaces"})
    assert given.headers["x-request-id"] == "abc-123" == given.json()["bound"]
    assert made.headers["x-request-id"].startswith("req_")
    assert made.json()["bound"] == made.headers["x-request-id"]
    assert refused.headers["x-request-id"].startswith("req_")
    assert structlog.contextvars.get_contextvars().get("request_id") is None


async def test_an_unhandled_error_is_a_problem_with_the_request_id() -> None:
    async with _client() as http:
        response = await http.get("/boom", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "r-1"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["status"] == 500
    assert body["request_id"] == "r-1"


async def test_database_unavailable_is_a_503_with_retry_after() -> None:
    async with _client() as http:
        response = await http.get("/db-down")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 5
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_every_problem_carries_the_request_id() -> None:
    async with _client() as http:
        response = await http.get("/nowhere", headers={"X-Request-ID": "r-2"})
    assert response.status_code == 404
    assert response.json()["request_id"] == "r-2"


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def test_what_counts_as_database_unavailable() -> None:
    refused_here = ConnectionRefusedError(111, "refused")
    try:
        raise refused_here
    except OSError:
        pass
    assert is_database_unavailable(sa_exc.TimeoutError("pool"))
    assert is_database_unavailable(sa_exc.OperationalError("x", None, Exception("gone")))
    assert is_database_unavailable(sa_exc.InterfaceError("x", None, Exception("closed")))
    assert is_database_unavailable(_wrapped(Exception("reset"), invalidated=True))
    assert is_database_unavailable(_wrapped(asyncpg.exceptions.QueryCanceledError("timeout")))
    assert is_database_unavailable(_wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("x")))
    # The same OS error raised outside the driver is someone else's failure.
    assert not is_database_unavailable(refused_here)
    assert not is_database_unavailable(_wrapped(asyncpg.exceptions.UniqueViolationError("x")))
    assert not is_database_unavailable(ValueError("bug"))
