"""Fixtures for testing one step (claim, apply, record) directly against real PostgreSQL.

Each test starts from an empty database (every table truncated; one TRUNCATE costs
milliseconds where creating and dropping a database forces checkpoints), so a claim sees
only the rows that test made, and a real `Runtime` built by the app's own `build_runtime`
against a live simulator, without starting the HTTP server or the worker loops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from app.auth.service import IssuedKey, create_client_with_key
from app.db.engine import transaction
from app.db.migrate import upgrade_to_head
from app.main import build_runtime
from app.runtime import Runtime
from app.settings import Settings
from tests.support.database import create_database, drop_database, empty_database, server_url
from tests.support.gateway import free_port, gateway_settings
from tests.support.simulator import RunningSimulator


@pytest.fixture(scope="session")
async def step_database() -> AsyncIterator[str]:
    """One migrated database for every step test, emptied before each of them."""
    server = server_url()
    url = await create_database(server)
    await upgrade_to_head(url)
    yield url
    await drop_database(server, url)


@pytest.fixture
async def step_database_url(step_database: str) -> str:
    await empty_database(step_database)
    return step_database


@dataclass
class Steps:
    """A runtime for calling steps directly, and a way to make clients in its database."""

    runtime: Runtime

    async def new_client(self, name: str = "step-tester", **kwargs: object) -> IssuedKey:
        async with transaction(self.runtime.session_factory) as session:
            return await create_client_with_key(session, name=name, **kwargs)  # type: ignore[arg-type]


async def open_steps(settings: Settings) -> Steps:
    return Steps(await build_runtime(settings))


async def close_steps(steps: Steps) -> None:
    rt = steps.runtime
    for client in (rt.webhook_client, rt.media_client, rt.upstream_client):
        await client.aclose()
    await rt.engine.dispose()


def step_settings(database_url: str, simulator_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"public_base_url": f"http://127.0.0.1:{free_port()}"}
    values.update(overrides)
    return gateway_settings(database_url, simulator_url, auto_migrate=False, **values)


@pytest.fixture
async def steps(step_database_url: str, simulator: RunningSimulator) -> AsyncIterator[Steps]:
    """A runtime on a database of its own, wired to the test's simulator."""
    opened = await open_steps(step_settings(step_database_url, simulator.base_url))
    try:
        yield opened
    finally:
        await close_steps(opened)


# A provider URL nothing listens on (port 9, discard): for steps that never call a provider.
NO_PROVIDER_URL = "http://127.0.0.1:9"


@pytest.fixture
async def db_steps(step_database_url: str) -> AsyncIterator[Steps]:
    """Like `steps` without a simulator, for service, transition and claim tests that never
    reach a provider: one server fewer to start and stop per test."""
    opened = await open_steps(step_settings(step_database_url, NO_PROVIDER_URL))
    try:
        yield opened
    finally:
        await close_steps(opened)
