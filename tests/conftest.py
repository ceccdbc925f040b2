"""Shared fixtures: one fresh PostgreSQL database per run, a live simulator, a live gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from app.db.migrate import upgrade_to_head
from app.settings import Settings
from app.simulator.config import SimulatorConfig
from tests.support.database import create_database, drop_database, server_url
from tests.support.gateway import Gateway, free_port, gateway_settings, running_gateway
from tests.support.simulator import RunningSimulator, running_simulator

pytest_plugins = ["tests.support.steps", "tests.support.s3"]


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    server = server_url()
    url = await create_database(server)
    await upgrade_to_head(url)
    yield url
    await drop_database(server, url)


def fast_simulator_config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "pending_time_s": 0.2,
        "processing_time_s": 0.6,
        "callback_retry_delays_s": (0.1, 0.2, 0.4),
        "allow_insecure_callbacks": True,
    }
    values.update(overrides)
    return SimulatorConfig.model_validate(values)


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_simulator_config()) as sim:
        yield sim


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, simulator: RunningSimulator) -> SettingsFactory:
    def build(**overrides: object) -> Settings:
        port = free_port()
        values: dict[str, object] = {"public_base_url": f"http://127.0.0.1:{port}"}
        values.update(overrides)
        return gateway_settings(database_url, simulator.base_url, **values)

    return build


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[Gateway]:
    async with running_gateway(make_settings()) as gw:
        yield gw


@pytest.fixture(scope="module")
async def module_simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_simulator_config()) as sim:
        yield sim


@pytest.fixture(scope="module")
async def module_gateway(
    database_url: str, module_simulator: RunningSimulator
) -> AsyncIterator[Gateway]:
    """One gateway for a whole module of tests that only use the API (faster)."""
    settings = gateway_settings(
        database_url, module_simulator.base_url, public_base_url=f"http://127.0.0.1:{free_port()}"
    )
    async with running_gateway(settings) as gw:
        yield gw


@dataclass
class Stack:
    gateway: Gateway
    simulator: RunningSimulator


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def make_stack(database_url: str) -> StackFactory:
    """A gateway wired to its own simulator, both configured by the test."""

    @contextlib.asynccontextmanager
    async def build(
        sim: dict[str, object] | None = None, **settings: object
    ) -> AsyncIterator[Stack]:
        async with running_simulator(fast_simulator_config(**(sim or {}))) as simulator:
            values: dict[str, object] = {"public_base_url": f"http://127.0.0.1:{free_port()}"}
            values.update(settings)
            config = gateway_settings(database_url, simulator.base_url, **values)
            async with running_gateway(config) as gateway:
                yield Stack(gateway, simulator)

    return build
