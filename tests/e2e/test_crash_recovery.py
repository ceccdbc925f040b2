"""SIGKILL the gateway with jobs in flight; after a restart every job still ends."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import fast_simulator_config
from tests.support.flows import TERMINAL_NAMES, assert_history_is_clean, submissions_per_job
from tests.support.gateway import free_port, gateway_settings
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.simulator import RunningSimulator, running_simulator

pytestmark = pytest.mark.slow

PROMPTS = [
    "",
    "#sim:drop_callback",
    "#sim:fail",
    "#sim:delay_callback=1",
    "",
    "#sim:dup_callback=2",
]


async def test_sigkill_with_jobs_in_flight_loses_nothing(database_url: str) -> None:
    sim_config = fast_simulator_config(processing_time_s=2.0)
    async with running_simulator(sim_config) as sim:
        port = free_port()
        settings = gateway_settings(
            database_url,
            sim.base_url,
            public_base_url=f"http://127.0.0.1:{port}",
            worker_lease_s=3.0,
            webhook_timeout_s=2.0,  # a lease must outlive every call
        )
        key = await issue_key(database_url)
        gateway = GatewayProcess(settings, port)
        await gateway.start()
        try:
            headers = {"Authorization": f"Bearer {key.api_key}"}
            async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
                ids = []
                for prompt in PROMPTS * 2:
                    response = await http.post("/v1/jobs", json=job_body(prompt=prompt or None))
                    assert response.status_code == 202
                    ids.append(response.json()["id"])
                await asyncio.sleep(0.5)  # some submitted, some processing, none finished
                before = [(await http.get(f"/v1/jobs/{i}")).json()["status"] for i in ids]
                gateway.kill()
                await asyncio.sleep(2.5)  # the upstream finishes and its callbacks hit nothing
                await gateway.start()
                final = await _wait_all_settled(http, ids, sim)
                histories = [(await http.get(f"/v1/jobs/{i}/events")).json()["data"] for i in ids]
        finally:
            gateway.stop()
        counts = submissions_per_job(sim)
    assert not set(before) & TERMINAL_NAMES, before  # the kill really hit jobs in flight
    # A create the kill cut off before it reached the upstream made no task: nothing can
    # find one, so that job stays visibly unknown, its estimate at risk, for an operator.
    unknown = [j for j in final if j["status"] not in TERMINAL_NAMES]
    assert all(_unknown_without_task(j, counts) for j in unknown), unknown
    assert sum(j["status"] == "succeeded" for j in final) >= 6, [j["status"] for j in final]
    assert all(counts[i] <= 1 for i in ids), counts
    for history in histories:
        assert_history_is_clean(history)


def _unknown_without_task(job: dict[str, Any], counts: Counter[str]) -> bool:
    cost = job["cost"]
    return (
        job["status"] == "submitting"
        and cost["at_risk"] == cost["estimated"] != "0.0000"
        and counts[str(job["id"])] == 0
    )


async def _wait_all_settled(
    http: httpx.AsyncClient, ids: list[str], sim: RunningSimulator
) -> list[dict[str, Any]]:
    """Every job terminal, or unknown with no upstream task (stable: never resent)."""
    async with asyncio.timeout(40):
        while True:
            jobs = [(await http.get(f"/v1/jobs/{i}")).json() for i in ids]
            counts = submissions_per_job(sim)
            if all(j["status"] in TERMINAL_NAMES or _unknown_without_task(j, counts) for j in jobs):
                return jobs
            await asyncio.sleep(0.2)
