"""Upstream failures on create and on query: every job ends right, none is paid twice."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.settings import ProviderConfig
from tests.conftest import StackFactory, fast_simulator_config
from tests.support.flows import (
    assert_history_is_clean,
    create_job,
    events,
    submissions_per_job,
    wait_for_status,
)
from tests.support.gateway import free_port, gateway_settings, running_gateway
from tests.support.payloads import job_body
from tests.support.simulator import RunningSimulator, running_simulator


async def set_faults(sim: RunningSimulator, rules: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        response = await http.post("/_sim/faults", json=rules)
        response.raise_for_status()


async def run_one_job(
    stack: Any, body: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    key = await stack.gateway.new_client()
    async with stack.gateway.http(key) as http:
        job_id = await create_job(http, body or job_body())
        job = await wait_for_status(http, job_id, timeout_s=25)
        return job, await events(http, job_id)


CREATE_FAULTS_THAT_RETRY = [
    pytest.param({"create": {"status": 503, "count": 2}}, id="503x2"),
    pytest.param({"create": {"status": 502, "count": 1}}, id="502"),
    pytest.param({"create": {"status": 429, "retry_after": 0.5, "count": 2}}, id="429-retry-after"),
]


@pytest.mark.parametrize("rules", CREATE_FAULTS_THAT_RETRY)
async def test_retryable_create_failures_are_retried_and_submitted_once(
    make_stack: StackFactory, rules: dict[str, Any]
) -> None:
    async with make_stack() as stack:
        await set_faults(stack.simulator, rules)
        job, history = await run_one_job(stack)
        counts = submissions_per_job(stack.simulator)
    assert job["status"] == "succeeded"
    assert counts[job["id"]] == 1
    assert [e["to_status"] for e in history].count("queued") >= 2  # requeued after the failure
    assert_history_is_clean(history)


async def test_create_timeout_is_reconciled_by_the_callback_not_resubmitted(
    make_stack: StackFactory,
) -> None:
    """The upstream created the task but the answer never came: our job id in the callback
    URL identifies it, and the confirming poll settles the job."""
    async with make_stack(sim={"fault_hang_s": 4.0}, submit_unknown_window_s=30.0) as stack:
        await set_faults(stack.simulator, {"create": {"timeout": True, "count": 1}})
        job, history = await run_one_job(stack)
        tasks = stack.simulator.simulator.store.all()
    assert job["status"] == "succeeded"
    assert len(tasks) == 1
    assert job["provider"]["task_id"] == tasks[0].id
    assert "submitted" not in [e["to_status"] for e in history]  # went submitting → succeeded


async def test_create_timeout_without_callback_is_found_in_the_task_list(
    make_stack: StackFactory,
) -> None:
    """No answer and no callback: the reconciler finds the task in the aggregator's list
    (by our callback URL in it) and the job finishes; nothing is sent twice."""
    async with make_stack(sim={"fault_hang_s": 4.0}) as stack:
        await set_faults(
            stack.simulator,
            {"create": {"timeout": True, "count": 1}, "callbacks": {"drop": True}},
        )
        job, history = await run_one_job(stack)
        tasks = stack.simulator.simulator.store.all()
    assert job["status"] == "succeeded"
    assert len(tasks) == 1  # never resubmitted
    assert job["provider"]["task_id"] == tasks[0].id
    assert job["cost"]["at_risk"] == "0.0000"
    assert_history_is_clean(history)


async def test_create_500_is_ambiguous_and_never_resubmitted(make_stack: StackFactory) -> None:
    """The 500 made no task: nothing finds one, so the job stays visibly unknown, its
    estimate at risk, past the window (an operator settles it: tests/e2e/test_lost_creates)."""
    async with make_stack() as stack:
        await set_faults(stack.simulator, {"create": {"status": 500, "count": 1}})
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            await asyncio.sleep(stack.gateway.runtime.settings.submit_unknown_window_s + 1.0)
            job = (await http.get(f"/v1/jobs/{job_id}")).json()
            usage = (await http.get("/v1/usage")).json()
        tasks = stack.simulator.simulator.store.all()
    assert (job["status"], job["error"]) == ("submitting", None)
    assert job["cost"]["at_risk"] == job["cost"]["estimated"] == usage["at_risk_usd"]
    assert tasks == []
    assert stack.simulator.simulator.store.create_calls == 1


async def test_permanent_create_refusal_fails_the_job(make_stack: StackFactory) -> None:
    async with make_stack() as stack:
        await set_faults(
            stack.simulator,
            {"create": {"status": 400, "code": "invalid_request_error", "count": 1}},
        )
        job, _ = await run_one_job(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_request_error"


QUERY_FAULTS = [
    pytest.param({"query": {"status": 500, "count": 3}}, id="500x3"),
    pytest.param({"query": {"status": 503, "count": 2}}, id="503x2"),
    pytest.param({"query": {"status": 429, "retry_after": 0.5, "count": 2}}, id="429"),
    pytest.param({"query": {"timeout": True, "hang_s": 3.0, "count": 2}}, id="timeout"),
]


@pytest.mark.parametrize("rules", QUERY_FAULTS)
async def test_query_failures_with_dropped_callbacks_still_finish(
    make_stack: StackFactory, rules: dict[str, Any]
) -> None:
    async with make_stack() as stack:
        await set_faults(stack.simulator, {**rules, "callbacks": {"drop": True}})
        job, _ = await run_one_job(stack)
        counts = submissions_per_job(stack.simulator)
    assert job["status"] == "succeeded"
    assert counts[job["id"]] == 1


@pytest.mark.parametrize(
    "down",
    [
        pytest.param({"status": 503}, id="unavailable"),
        pytest.param({"status": 402, "code": "insufficient_quota_error"}, id="out-of-quota"),
        pytest.param({"status": 401, "code": "invalid_api_key"}, id="bad-key"),
    ],
)
async def test_failover_to_the_next_cheapest_provider(
    database_url: str, down: dict[str, Any]
) -> None:
    cheap_cfg, dear_cfg = fast_simulator_config(), fast_simulator_config()
    async with running_simulator(cheap_cfg) as cheap, running_simulator(dear_cfg) as dear:
        providers = [
            ProviderConfig(
                name="cheap",
                base_url=cheap.base_url,
                api_key="k",
                price_720p_usd_per_s=Decimal("0.10"),
                price_1080p_usd_per_s=Decimal("0.16"),
            ),
            ProviderConfig(
                name="dear",
                base_url=dear.base_url,
                api_key="k",
                price_720p_usd_per_s=Decimal("0.13"),
                price_1080p_usd_per_s=Decimal("0.17"),
            ),
        ]
        settings = gateway_settings(
            database_url,
            cheap.base_url,
            providers=providers,
            public_base_url=f"http://127.0.0.1:{free_port()}",
        )
        await set_faults(cheap, {"create": down})
        async with running_gateway(settings) as gateway:
            key = await gateway.new_client()
            async with gateway.http(key) as http:
                job_id = await create_job(http, job_body())
                job = await wait_for_status(http, job_id)
        assert job["status"] == "succeeded"
        assert job["provider"]["name"] == "dear"
        assert job["cost"]["billed"] == "0.6500"  # 5 s × $0.13 at the provider used
        assert cheap.simulator.store.all() == []
        assert len(dear.simulator.store.all()) == 1
