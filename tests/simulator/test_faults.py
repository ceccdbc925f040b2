"""Global, counted fault rules set through `/_sim/faults`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.simulator import RunningSimulator, sample_create_body

from .helpers import sim_tasks, wait_for_status


async def set_faults(client: httpx.AsyncClient, rules: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/_sim/faults", json=rules)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create(client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
    return await client.post("/v1/videos/generations", json=sample_create_body(), **kwargs)


async def test_counted_create_503_then_success(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"status": 503, "count": 2}})

    answers = [await create(client) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [503, 503, 200]
    assert answers[0].json()["error"]["type"] == "service_unavailable_error"
    tasks = await sim_tasks(client)
    assert tasks["create_calls"] == 3
    assert [task["id"] for task in tasks["tasks"]] == [answers[2].json()["id"]]


async def test_create_429_carries_retry_after(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"status": 429, "retry_after": 1, "count": 1}})

    limited = await create(client)
    after = await create(client)

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert after.status_code == 200


async def test_fault_code_and_message_can_be_chosen(client: httpx.AsyncClient) -> None:
    rule = {"status": 402, "code": "insufficient_quota", "message": "top up", "count": 1}
    await set_faults(client, {"create": rule})

    refused = await create(client)

    assert refused.status_code == 402
    assert refused.json()["error"] == {
        "code": "insufficient_quota",
        "message": "top up",
        "type": "insufficient_quota_error",
    }


async def test_uncounted_fault_lasts_until_reset(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"status": 502}})

    first, second = await create(client), await create(client)
    reset = await client.delete("/_sim/faults")
    third = await create(client)

    assert (first.status_code, second.status_code) == (502, 502)
    assert reset.json() == {}
    assert third.status_code == 200


async def test_create_500_after_creating_is_ambiguous(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"status": 500, "create_anyway": True, "count": 1}})

    answer = await create(client)

    assert answer.status_code == 500
    assert len((await sim_tasks(client))["tasks"]) == 1


async def test_create_timeout_still_creates_the_task(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"timeout": True, "count": 1}})

    with pytest.raises(httpx.ReadTimeout):
        await create(client, timeout=0.3)
    tasks = await sim_tasks(client)

    assert len(tasks["tasks"]) == 1
    assert tasks["tasks"][0]["status"] in ("pending", "processing", "completed")


async def test_counted_query_500(client: httpx.AsyncClient) -> None:
    task_id = (await create(client)).json()["id"]
    await set_faults(client, {"query": {"status": 500, "count": 3}})

    answers = [await client.get(f"/v1/tasks/{task_id}") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [500, 500, 500, 200]
    assert answers[0].json()["error"]["type"] == "internal_server_error"


async def test_query_timeout_hangs_until_reset(client: httpx.AsyncClient) -> None:
    task_id = (await create(client)).json()["id"]
    await set_faults(client, {"query": {"timeout": True}})

    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/v1/tasks/{task_id}", timeout=0.3)
    await client.delete("/_sim/faults")

    assert (await client.get(f"/v1/tasks/{task_id}")).status_code == 200


async def test_result_fault(client: httpx.AsyncClient) -> None:
    task_id = (await create(client)).json()["id"]
    final = await wait_for_status(client, task_id, "completed")
    await set_faults(client, {"result": {"status": 503, "count": 1}})

    faulted = await client.get(final["results"][0])
    served = await client.get(final["results"][0])

    assert (faulted.status_code, served.status_code) == (503, 200)


async def test_faults_report_what_is_left(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"create": {"status": 503, "count": 2}, "callbacks": {"drop": True}})
    await create(client)

    described = (await client.get("/_sim/faults")).json()

    assert described["create"]["remaining"] == 1
    assert described["callbacks"] == {"drop": True, "remaining": None}


@pytest.mark.parametrize(
    "rules",
    [
        {"create": {"count": 1}},
        {"create": {"status": 503, "timeout": True}},
        {"create": {"status": 200}},
        {"nothing": {"status": 500}},
        {"query": {"status": 500, "count": 0}},
    ],
)
async def test_malformed_fault_rules_are_refused(
    sim: RunningSimulator, client: httpx.AsyncClient, rules: dict[str, Any]
) -> None:
    response = await client.post("/_sim/faults", json=rules)

    assert response.status_code == 422
    assert sim.simulator.faults.describe() == {}
