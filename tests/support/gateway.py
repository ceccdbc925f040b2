"""Run the real gateway (API + workers) on a loopback port, in this event loop."""

from __future__ import annotations

import contextlib
import random
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.auth.service import IssuedKey, create_client_with_key
from app.db.engine import transaction
from app.main import create_app
from app.runtime import Runtime
from app.serving import server_config
from app.settings import Environment, ProviderConfig, Settings
from tests.support.servers import RunningServer, start_server


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port *below* the ephemeral range. A port the kernel can hand out as the source
    port of an outgoing connection (asyncpg over TCP opens many) may be taken while a killed
    gateway is down, and its restart on the same port would then fail to bind."""
    low = min(_ephemeral_low(), 32768)
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def gateway_settings(database_url: str, simulator_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": Environment.test,
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
        "providers": [ProviderConfig(name="simulator", base_url=simulator_url, api_key="sim-key")],
        "worker_sweep_interval_s": 0.5,
        "poll_first_delay_s": 1.0,
        "poll_backoff_base_s": 0.3,
        "poll_backoff_max_s": 1.0,
        "poll_overdue_grace_s": 1.0,
        "submit_retry_base_s": 0.2,
        "submit_retry_max_s": 1.0,
        "submit_unknown_window_s": 3.0,
        "submit_reconcile_first_s": 0.1,
        "submit_reconcile_interval_s": 0.2,
        "submit_reconcile_max_interval_s": 0.5,
        "provider_submit_timeout_s": 2.0,
        "provider_query_timeout_s": 2.0,
        "circuit_open_s": 1.0,
        "webhook_retry_schedule_s": [0.0, 0.2, 0.4, 0.8],
        "webhook_timeout_s": 3.0,
        "webhook_circuit_open_s": 0.5,
        "webhook_circuit_open_max_s": 1.0,
        "log_level": "WARNING",
        "media_dir": Path(tempfile.gettempdir()) / "motion-gateway-test-media",
        # The payloads' media URLs point at a documentation address no one can fetch;
        # the tests of probing (tests/integration/test_media_urls.py) turn it on.
        "media_url_probe": "off",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Gateway:
    base_url: str
    runtime: Runtime
    server: RunningServer

    async def new_client(self, name: str = "tester", *, admin: bool = False) -> IssuedKey:
        async with transaction(self.runtime.session_factory) as session:
            return await create_client_with_key(session, name=name, admin=admin)

    def http(self, key: IssuedKey | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key.api_key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10.0)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, port: int | None = None) -> AsyncIterator[Gateway]:
    port = port or int(settings.public_base_url.rsplit(":", 1)[1].split("/")[0])
    app = create_app(settings)
    # Served as `motion-gateway serve` serves it: `server_config` carries the head limit.
    server = await start_server(
        app, "127.0.0.1", port, graceful_shutdown_s=1, make_config=server_config
    )
    try:
        yield Gateway(server.base_url, app.state.runtime, server)
    finally:
        await server.stop()
