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


async def create_database_from(server: str, template_url: str) -> str:
    """A new database copied from an already-migrated template: a fresh schema in ~0.1 s
    instead of a full Alembic run. The template must have no open connections."""
    name = f"mgw_step_{secrets.token_hex(4)}"
    template = urlsplit(template_url).path.lstrip("/")
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return with_database(server, name)
