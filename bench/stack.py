"""A live stack for one benchmark: fresh database, simulator, gateway, API key.

The gateway runs as its own OS process by default (`python -m app.cli serve`), so the
load generator, the simulator and the subscribers — all in this process — do not share
its event loop; `in_process=True` runs it in this loop instead, like the test suite.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from app.auth.service import IssuedKey
from app.db.migrate import upgrade_to_head
from app.settings import Environment, ProviderConfig, Settings
from app.simulator.config import SimulatorConfig
from bench.load import BodyFor
from bench.media import Media
from tests.support.database import create_database, drop_database
from tests.support.gateway import free_port, running_gateway
from tests.support.process import issue_key, settings_env
from tests.support.simulator import RunningSimulator, running_simulator

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

# The gateway's own defaults (app/settings.py) except where a benchmark needs a shorter
# fuse; every deviation is listed in docs/benchmarks.md.
BENCH_OVERRIDES: dict[str, object] = {
    "poll_overdue_grace_s": 2.0,  # default 60: the first safety-net poll after estimate + 2 s
    "poll_backoff_base_s": 1.0,  # default 5
    "poll_backoff_max_s": 5.0,  # default 300
}


def bench_settings(
    database_url: str, simulator_url: str, port: int, **overrides: object
) -> Settings:
    media = Path(tempfile.gettempdir()) / "motion-gateway-bench"
    values: dict[str, object] = {
        "environment": Environment.test,  # loopback http allowed for callbacks and endpoints
        "database_url": database_url,
        "public_base_url": f"http://127.0.0.1:{port}",
        "secret_key": "bench-secret-key-0123456789abcdef0123456789",
        "providers": [ProviderConfig(name="simulator", base_url=simulator_url, api_key="sim-key")],
        "log_level": "WARNING",
        "data_dir": media / "data",
        "media_dir": media / "media",
        **BENCH_OVERRIDES,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def sim_config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "pending_time_s": 0.1,
        "processing_time_s": 0.3,
        "callback_retry_delays_s": (0.2, 0.5, 1.0),
        "allow_insecure_callbacks": True,
    }
    values.update(overrides)
    return SimulatorConfig.model_validate(values)


@dataclass
class Stack:
    base_url: str
    simulator: RunningSimulator
    key: IssuedKey
    settings: Settings
    media: Media
    log_path: Path | None
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def http(self, *, timeout_s: float = 15.0) -> httpx.AsyncClient:
        """A keep-alive client with the key; closed with the stack."""
        client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.key.api_key}"},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.clients.append(client)
        return client

    def bodies(self, prompt: str | None = None) -> BodyFor:
        """Job i's body: the loopback media, and `prompt` (simulator directives) if given."""
        return lambda _i: self.media.job_body(prompt)

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample over the series matching `labels`."""
        text = (await self.http().get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    async def sim_faults(self, rules: dict[str, Any] | None) -> None:
        """Install global simulator faults (None clears them)."""
        async with httpx.AsyncClient(base_url=self.simulator.base_url, timeout=5.0) as sim:
            if rules is None:
                (await sim.delete("/_sim/faults")).raise_for_status()
            else:
                (await sim.post("/_sim/faults", json=rules)).raise_for_status()

    def log_problems(self) -> list[str]:
        """ERROR / CRITICAL / Traceback lines of the gateway process's log."""
        if self.log_path is None or not self.log_path.exists():
            return []
        pattern = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if pattern.search(line)
        ]


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


@contextlib.asynccontextmanager
async def _gateway_process(settings: Settings, port: int, log_path: Path) -> AsyncIterator[str]:
    base_url = f"http://127.0.0.1:{port}"
    log = _open_log(log_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=ROOT,
        env=settings_env(settings),
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S), httpx.AsyncClient() as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base_url}/readyz")).status_code == 200:
                        break
                if proc.returncode is not None:
                    raise RuntimeError(f"gateway exited with {proc.returncode}; see {log_path}")
                await asyncio.sleep(0.1)
        yield base_url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def running_stack(
    server: str,
    simulator: SimulatorConfig,
    media: Media,
    *,
    in_process: bool = False,
    log_dir: Path | None = None,
    label: str = "stack",
    overrides: Mapping[str, object] | None = None,
) -> AsyncIterator[Stack]:
    """Fresh database on `server`, a simulator, a gateway wired to both, one client key.

    `overrides` replace gateway settings (see `bench_settings`)."""
    database_url = await create_database(server)
    try:
        await upgrade_to_head(database_url)
        async with running_simulator(simulator) as sim:
            port = free_port()
            settings = bench_settings(database_url, sim.base_url, port, **(overrides or {}))
            log_path: Path | None = None
            gateway: contextlib.AbstractAsyncContextManager[Any]
            if in_process:
                gateway = running_gateway(settings, port)
            else:
                folder = log_dir or Path(tempfile.gettempdir())
                folder.mkdir(parents=True, exist_ok=True)
                log_path = folder / f"gateway-{label}-{os.getpid()}.log"
                gateway = _gateway_process(settings, port, log_path)
            async with gateway:
                key = await issue_key(database_url, f"bench-{label}")
                stack = Stack(f"http://127.0.0.1:{port}", sim, key, settings, media, log_path)
                try:
                    yield stack
                finally:
                    for client in stack.clients:
                        await client.aclose()
    finally:
        await drop_database(server, database_url)
