"""Fixtures for the simulator tests: a fast simulator on loopback and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.simulator import RunningSimulator, running_simulator

from .helpers import FAST, client_for


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(FAST) as running:
        yield running


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sim) as http:
        yield http
