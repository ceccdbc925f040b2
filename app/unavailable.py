"""Telling "the database is unreachable" apart from every other failure.

A request answers the former with 503 and Retry-After, and a worker logs it as one line
and backs off; anything else is a bug (500, a traceback in the log).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

# statement/lock timeouts, shutdown and start-up of the server, no connection slot left
_UNAVAILABLE_SQLSTATES = frozenset({"57014", "55P03", "57P01", "57P02", "57P03", "53300"})
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        for linked in (current.__cause__, current.__context__, orig):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _raised_in_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.InterfaceError | sa_exc.OperationalError):
        return True  # pool checkout timed out; connection-level failures
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate[:2] == "08"):
        return True
    # Connection refused/reset and connect timeouts reach us raw from the driver; the same
    # types raised anywhere else (an HTTP call, a file) are not about the database.
    return isinstance(exc, OSError) and _raised_in_driver(exc)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached right now."""
    return any(_unavailable(e) for e in _chain(exc))


def describe(exc: BaseException) -> str:
    """One short line for the log: the type and the first line of the message."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0][:300]}" if message else type(exc).__name__
