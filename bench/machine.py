"""Where and on what a run happened: machine, Python, date, git commit."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.db.engine import asyncpg_dsn

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(args), cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory() -> str:
    """`free -h`'s Mem line: total, used, free, …"""
    if shutil.which("free") is None:
        return "unknown"
    for line in _run("free", "-h").splitlines():
        if line.startswith("Mem:"):
            total, used, _free, *_ = line.split()[1:]
            return f"{total} total, {used} used"
    return "unknown"


def git_commit() -> str:
    commit = _run("git", "rev-parse", "--short", "HEAD") or "unknown"
    if _run("git", "status", "--porcelain"):
        commit += " plus uncommitted changes"
    return commit


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def database_label(server: str) -> str:
    """What the run used, with the server's version and without credentials."""
    try:
        conn = await asyncpg.connect(asyncpg_dsn(server), timeout=10)
        try:
            version = str(await conn.fetchval("SHOW server_version")).split()[0]
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError):
        version = "?"
    if not os.environ.get("DATABASE_URL"):
        return f"embedded PostgreSQL {version}"
    host = server.split("@")[-1].split("?")[0]
    return f"PostgreSQL {version} at {host} (DATABASE_URL)"


def stamp(database: str) -> list[tuple[str, str]]:
    return [
        ("date (end of run)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", git_commit()),
        ("machine", f"nproc {_run('nproc') or os.cpu_count()}, {cpu_model()}"),
        ("memory", memory()),
        ("python", platform.python_version()),
        ("database", database),
        ("load average (1, 5, 15 min) at the end", load_average()),
    ]


def stamp_markdown(database: str) -> str:
    return "\n".join(f"- **{key}**: {value}" for key, value in stamp(database))
