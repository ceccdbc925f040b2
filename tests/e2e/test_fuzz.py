"""A short, deterministic schemathesis run against the live gateway (`make fuzz` is the
long one): no 5xx, every answer matches its documented schema, no undocumented status."""

from __future__ import annotations

import pytest

from bench.fuzz import run_schemathesis
from tests.support.gateway import Gateway

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("admin", [False, True], ids=["client key", "admin key"])
async def test_schemathesis_finds_nothing(gateway: Gateway, admin: bool) -> None:
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
    assert run.report["cases"], run.report
    assert run.report["server_errors"] == 0, run.report
    assert run.report["failures"] == {}, run.report
    assert run.returncode == 0, run.report
