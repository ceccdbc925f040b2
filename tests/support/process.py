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
    def __init__(
        self,
        settings: Settings,
        port: int,
        *,
        cwd: Path = ROOT,
        wrapper: list[str] | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:
        """`wrapper`: a command the gateway runs under (e.g. setpriv); `env`: variables to
        set, or to drop where the value is None."""
        self.settings = settings
        self.port = port
        self.cwd = cwd
        self.wrapper = wrapper or []
        self.env_overrides = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        env = settings_env(self.settings)
        for name, value in self.env_overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 30.0) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*self.wrapper, sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            cwd=self.cwd,
            env=self._env(),
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

    def terminate(self, timeout_s: float) -> int:
        """SIGTERM, as a deploy sends it; the exit code once the process is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

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
