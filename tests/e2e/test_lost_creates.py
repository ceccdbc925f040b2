"""Creates whose answer is lost, over real HTTP on both wires: a timeout or a 500 after
the upstream made the task, its callbacks dropped, or the gateway SIGKILLed while the
create is held. Each job ends `succeeded` with exactly one upstream task; where the
provider offers no way to find it, it stays visible with `at_risk` until an operator
adopts its task. `/v1/usage` equals the sum over the jobs, to the cent, after the run."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.settings import ProviderConfig
from app.simulator.config import SimulatorConfig
from tests.conftest import fast_simulator_config
from tests.support.flows import TERMINAL_NAMES, assert_history_is_clean, create_job
from tests.support.gateway import Gateway, free_port, gateway_settings, running_gateway
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.simulator import (
    RunningSimulator,
    fast_kling_config,
    install_faults,
    kling_provider_config,
    running_simulator,
)

DROPPED: dict[str, Any] = {"callbacks": {"drop": True}}
LOSSES: dict[str, dict[str, Any]] = {
    "timeout": {"create": {"timeout": True, "hang_s": 4.0, "count": 1}},
    "500": {"create": {"status": 500, "create_anyway": True, "count": 1}},
}
WIRES = ["evolink", "evolink-idempotent", "kling"]


def sim_config(wire: str) -> SimulatorConfig:
    if wire == "kling":
        return fast_kling_config(pending_time_s=0.2, processing_time_s=0.6)
    return fast_simulator_config(honor_idempotency_key=wire == "evolink-idempotent")


def provider(wire: str, base_url: str) -> ProviderConfig:
    if wire == "kling":
        return kling_provider_config(base_url, name="simulator")
    honors = wire == "evolink-idempotent"
    return ProviderConfig(
        name="simulator", base_url=base_url, api_key="sim-key", honors_idempotency_key=honors
    )


def tasks_per_job(sim: RunningSimulator) -> Counter[str]:
    """Upstream tasks per gateway job: the aggregator records our Idempotency-Key, Kling
    our external_task_id (both are the job id)."""
    return Counter(
        t.idempotency_key or t.external_task_id or "?" for t in sim.simulator.store.all()
    )


@contextlib.asynccontextmanager
async def stack(
    database_url: str, wire: str, **settings: Any
) -> AsyncIterator[tuple[Gateway, RunningSimulator]]:
    async with running_simulator(sim_config(wire)) as sim:
        config = gateway_settings(
            database_url,
            sim.base_url,
            public_base_url=f"http://127.0.0.1:{free_port()}",
            providers=[provider(wire, sim.base_url)],
            **settings,
        )
        async with running_gateway(config) as gateway:
            yield gateway, sim


async def wait_job(
    http: httpx.AsyncClient, job_id: str, statuses: set[str], timeout_s: float = 30.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            if job["status"] in statuses:
                return job
            await asyncio.sleep(0.1)


async def assert_usage_is_the_sum(http: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    usage = (await http.get("/v1/usage")).json()
    billed = sum((Decimal(j["cost"]["billed"]) for j in jobs), Decimal("0"))
    at_risk = sum((Decimal(j["cost"]["at_risk"]) for j in jobs), Decimal("0"))
    assert Decimal(usage["billed_usd"]) == billed
    assert Decimal(usage["at_risk_usd"]) == at_risk
    assert usage["billed_seconds"] == sum(j["cost"]["billed_seconds"] or 0 for j in jobs)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("wire", WIRES)
async def test_a_lost_create_is_found_and_billed_once(
    database_url: str, wire: str, loss: str
) -> None:
    faults = {**LOSSES[loss], **DROPPED}
    if wire == "evolink-idempotent":
        faults["list"] = {"status": 503}  # the replay alone must find it
    async with stack(database_url, wire) as (gateway, sim):
        await install_faults(sim, faults)
        key = await gateway.new_client()
        async with gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            job = await wait_job(http, job_id, TERMINAL_NAMES)
            history = (await http.get(f"/v1/jobs/{job_id}/events")).json()["data"]
            await assert_usage_is_the_sum(http, [job])
        counts = tasks_per_job(sim)
    assert job["status"] == "succeeded", job
    assert counts == {job_id: 1}
    assert job["provider"]["task_id"] == sim.simulator.store.all()[0].id
    assert Decimal(job["cost"]["billed"]) > 0
    assert job["cost"]["at_risk"] == "0.0000"
    assert_history_is_clean(history)
    adopted = next(e for e in history if e["from_status"] == "submitting")
    assert adopted["source"] in {"reconciler", "callback", "poller"}


async def test_with_no_way_to_find_it_the_charge_stays_visible_until_adopted(
    database_url: str,
) -> None:
    """The aggregator without idempotency and with its task list failing: nothing can
    find the task. The job stays `submitting` with its estimate at risk, past the window,
    until an operator attaches the task; then it finishes and is billed."""
    faults = {**LOSSES["500"], **DROPPED, "list": {"status": 503}}
    async with stack(database_url, "evolink") as (gateway, sim):
        await install_faults(sim, faults)
        key = await gateway.new_client()
        admin = await gateway.new_client("operator", admin=True)
        async with gateway.http(key) as http, gateway.http(admin) as ops:
            job_id = await create_job(http, job_body())
            await wait_unknown(ops, job_id)
            await asyncio.sleep(gateway.runtime.settings.submit_unknown_window_s + 1.0)

            job = (await http.get(f"/v1/jobs/{job_id}")).json()
            assert (job["status"], job["error"]) == ("submitting", None)
            assert job["cost"]["at_risk"] == job["cost"]["estimated"] != "0.0000"
            usage = (await http.get("/v1/usage")).json()
            assert usage["at_risk_usd"] == job["cost"]["estimated"]
            listed = (await ops.get("/v1/admin/jobs", params={"submit_unknown": "true"})).json()
            assert [j["id"] for j in listed["data"]] == [job_id]
            metrics = (await ops.get("/metrics")).text
            assert 'mgw_submit_unknown_jobs{kind="unresolved"} 1.0' in metrics

            [task] = sim.simulator.store.all()
            wrong = await ops.post(f"/v1/admin/jobs/{job_id}/adopt", json={"task_id": "nope"})
            assert (wrong.status_code, wrong.json()["code"]) == (422, "unknown_upstream_task")
            adopted = await ops.post(f"/v1/admin/jobs/{job_id}/adopt", json={"task_id": task.id})
            assert adopted.status_code == 200, adopted.text
            assert adopted.json()["provider"]["task_id"] == task.id
            again = await ops.post(f"/v1/admin/jobs/{job_id}/adopt", json={"task_id": task.id})
            assert (again.status_code, again.json()["code"]) == (409, "not_adoptable")

            job = await wait_job(http, job_id, TERMINAL_NAMES)
            await assert_usage_is_the_sum(http, [job])
        counts = tasks_per_job(sim)
    assert job["status"] == "succeeded"
    assert job["cost"]["at_risk"] == "0.0000"
    assert Decimal(job["cost"]["billed"]) > 0
    assert counts == {job_id: 1}


async def test_an_operator_rules_out_a_create_that_made_nothing(database_url: str) -> None:
    faults = {"create": {"status": 500, "count": 1}, **DROPPED, "list": {"status": 503}}
    async with stack(database_url, "evolink") as (gateway, sim):
        await install_faults(sim, faults)
        key = await gateway.new_client()
        admin = await gateway.new_client("operator", admin=True)
        async with gateway.http(key) as http, gateway.http(admin) as ops:
            job_id = await create_job(http, job_body())
            await wait_unknown(ops, job_id)
            both = await ops.post(
                f"/v1/admin/jobs/{job_id}/adopt", json={"task_id": "x", "ruled_out": True}
            )
            assert both.status_code == 422
            ruled = await ops.post(f"/v1/admin/jobs/{job_id}/adopt", json={"ruled_out": True})
            assert ruled.status_code == 200, ruled.text
            job = ruled.json()
            await assert_usage_is_the_sum(http, [job])
    assert (job["status"], job["error"]["code"]) == ("failed", "submit_ruled_out")
    assert (job["cost"]["at_risk"], job["cost"]["billed"]) == ("0.0000", "0.0000")
    assert sim.simulator.store.all() == []


async def wait_unknown(ops: httpx.AsyncClient, job_id: str) -> None:
    async with asyncio.timeout(15):
        while True:
            listed = (await ops.get("/v1/admin/jobs", params={"submit_unknown": "true"})).json()
            if job_id in [j["id"] for j in listed["data"]]:
                return
            await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("wire", ["evolink", "kling"])
async def test_a_gateway_killed_while_its_create_is_held_finds_the_task(
    database_url: str, wire: str
) -> None:
    async with running_simulator(sim_config(wire)) as sim:
        port = free_port()
        settings = gateway_settings(
            database_url,
            sim.base_url,
            public_base_url=f"http://127.0.0.1:{port}",
            providers=[provider(wire, sim.base_url)],
            worker_lease_s=4.0,  # must outlive every call; short, so the restart sees it end
            provider_submit_timeout_s=3.0,
        )
        await install_faults(sim, {"create": {"timeout": True, "hang_s": 30.0}, **DROPPED})
        key = await issue_key(database_url, name=f"lost-create-{wire}")
        gateway = GatewayProcess(settings, port)
        await gateway.start()
        try:
            headers = {"Authorization": f"Bearer {key.api_key}"}
            async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
                job_id = await create_job(http, job_body())
                async with asyncio.timeout(15):
                    while not sim.simulator.store.all():  # the task exists, its answer held
                        await asyncio.sleep(0.05)
                gateway.kill()
                async with httpx.AsyncClient(base_url=sim.base_url) as sim_admin:
                    (await sim_admin.delete("/_sim/faults")).raise_for_status()
                    await install_faults(sim, DROPPED)
                await gateway.start()
                job = await wait_job(http, job_id, TERMINAL_NAMES, timeout_s=40)
                history = (await http.get(f"/v1/jobs/{job_id}/events")).json()["data"]
                await assert_usage_is_the_sum(http, [job])
        finally:
            gateway.stop()
        counts = tasks_per_job(sim)
    assert job["status"] == "succeeded", job
    assert counts == {job_id: 1}
    assert_history_is_clean(history)
