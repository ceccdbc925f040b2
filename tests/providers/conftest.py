"""Fixtures for the adapter tests: a fast simulator and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.providers.evolink import EvolinkProvider
from tests.support.simulator import RunningSimulator, running_simulator

from .helpers import FAST


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(FAST) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def provider(sim: RunningSimulator, http: httpx.AsyncClient) -> EvolinkProvider:
    return EvolinkProvider("evolink", sim.base_url, "sk-test", http, timeout_s=2.0)
