"""Engine and session factory, built at start-up (never at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.embedded import start_embedded_postgres
from app.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def normalize_database_url(url: str) -> str:
    """Accept the libpq spelling (`postgresql://`) and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when given, else the embedded server under the data dir."""
    if settings.database_url:
        return normalize_database_url(settings.database_url)
    return start_embedded_postgres(settings.data_root)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout_s: float = 60.0,
    pool_timeout_s: float = 30.0,
    command_timeout_s: float | None = None,
) -> AsyncEngine:
    """An engine that gives up fast on a dead database when told to (see Settings.db_*).

    `hide_parameters`: a failed statement's message must not carry its bound values
    (key hashes, secrets) into the log.
    """
    connect_args: dict[str, object] = {"timeout": connect_timeout_s}
    if command_timeout_s is not None:
        # The server cancels first (a clean error, the connection stays usable); the
        # client-side bound is for a server that no longer answers at all.
        statement_ms = str(int(command_timeout_s * 1000))
        connect_args["server_settings"] = {"statement_timeout": statement_ms}
        connect_args["command_timeout"] = command_timeout_s + 1.0
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=pool_timeout_s,
        connect_args=connect_args,
        hide_parameters=True,
    )


def make_runtime_engine(url: str, settings: Settings) -> AsyncEngine:
    return make_engine(
        url,
        connect_timeout_s=settings.db_connect_timeout_s,
        pool_timeout_s=settings.db_pool_timeout_s,
        command_timeout_s=settings.db_command_timeout_s,
    )


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """One round trip to the database; raises when it does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """The boundary's unit of work: commit on success, roll back on any error."""
    async with factory() as session, session.begin():
        yield session


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain DSN asyncpg.connect() takes, for the LISTEN connection."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
