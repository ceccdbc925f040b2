"""A fresh database per test run, on DATABASE_URL's server or an embedded one."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.db.embedded import start_embedded_postgres
from app.db.engine import asyncpg_dsn, normalize_database_url


def server_url() -> str:
    """The server the suite runs on: DATABASE_URL when set, else an embedded PostgreSQL."""
    if url := os.environ.get("DATABASE_URL"):
        return normalize_database_url(url)
    root = Path(tempfile.gettempdir()) / "motion-gateway-test-pg"
    return start_embedded_postgres(root)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(url: str) -> str:
    name = f"mgw_test_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(url, name)


async def drop_database(server: str, test_url: str) -> None:
    name = urlsplit(test_url).path.lstrip("/")
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def empty_database(url: str) -> None:
    """Truncate every table but Alembic's, in one statement (foreign keys included)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(row["name"] for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
