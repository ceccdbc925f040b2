"""A short, deterministic schemathesis run against the live gateway (`make fuzz` is the
long one): no 5xx, every answer matches its documented schema, no undocumented status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.db.migrate import upgrade_to_head
from bench.fuzz import run_schemathesis
from tests.conftest import fast_simulator_config
from tests.support.database import create_database, drop_database, server_url
from tests.support.gateway import Gateway, free_port, gateway_settings, running_gateway
from tests.support.simulator import running_simulator

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


@pytest.fixture
async def own_gateway() -> AsyncIterator[Gateway]:
    """A database of its own: what the run finds (e.g. through admin lists) is only what it
    made itself against its own simulator, so the same cases meet the same state."""
    server = server_url()
    database_url = await create_database(server)
    try:
        await upgrade_to_head(database_url)
        async with running_simulator(fast_simulator_config()) as sim:
            port = free_port()
            settings = gateway_settings(
                database_url, sim.base_url, public_base_url=f"http://127.0.0.1:{port}"
            )
            async with running_gateway(settings) as gateway:
                yield gateway
    finally:
        await drop_database(server, database_url)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("admin", [False, True], ids=["client key", "admin key"])
async def test_schemathesis_finds_nothing(own_gateway: Gateway, admin: bool) -> None:
    gateway = own_gateway
    key = await gateway.new_client("fuzz-admin" if admin else "fuzz", admin=admin)
    run = await run_schemathesis(
        gateway.base_url,
        key.api_key,
        label="admin" if admin else "client",
        extra=[
            "--checks",
            CHECKS,
            "--generation-deterministic",  # derandomized: the same cases every run
            "--max-examples",
            "4",
            "--phases",
            "examples,fuzzing",
            "--no-shrink",
            *(["--include-path-regex", "^/v1/admin/"] if admin else []),
        ],
        quiet=True,
    )
    found = {k: run.report.get(k) for k in ("server_errors", "failures", "examples", "output")}
    assert run.report["cases"], run.report
    assert run.report["server_errors"] == 0, found
    assert run.report["failures"] == {}, found
    assert run.returncode == 0, found
