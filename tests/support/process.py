"""The gateway as a real OS process, so a test can SIGKILL it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from app.auth.service import IssuedKey, create_client_with_key
from app.db.engine import make_engine, make_session_factory, transaction
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"MGW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["DATABASE_URL"] = settings.database_url or ""
    env["PUBLIC_BASE_URL"] = settings.public_base_url
    env.pop("MGW_DATABASE_URL", None)
    env.pop("MGW_PUBLIC_BASE_URL", None)
    return env


class GatewayProcess:
    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 30.0) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=settings_env(self.settings),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        async with asyncio.timeout(timeout_s), httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None:
                    tail = Path(self.log.name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{tail}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no finally block runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def issue_key(database_url: str, name: str = "crash-test") -> IssuedKey:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_session_factory(engine)) as session:
            return await create_client_with_key(session, name=name)
    finally:
        await engine.dispose()
