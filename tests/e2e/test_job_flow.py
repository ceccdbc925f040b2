"""Whole flows over real HTTP: gateway ⇄ simulator, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import io

import av
import pytest

from app.inbound.tokens import callback_token
from tests.conftest import StackFactory
from tests.support.flows import (
    TERMINAL_NAMES,
    assert_history_is_clean,
    create_job,
    events,
    submissions_per_job,
    wait_for_status,
)
from tests.support.gateway import Gateway
from tests.support.payloads import job_body
from tests.support.simulator import RunningSimulator


def _decode_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data), mode="r") as container:
        return len(list(container.decode(video=0)))


async def test_job_succeeds_end_to_end_with_a_playable_result(
    gateway: Gateway, simulator: RunningSimulator
) -> None:
    key = await gateway.new_client()
    async with gateway.http(key) as http:
        job_id = await create_job(http, job_body())
        job = await wait_for_status(http, job_id)
        history = await events(http, job_id)
        assert job["status"] == "succeeded", job
        assert job["progress"] == 100
        assert job["provider"]["name"] == "simulator"
        assert job["provider"]["task_id"].startswith("task-unified-")
        assert job["result"]["duration_s"] == 5
        assert job["cost"]["billed_seconds"] == 5
        assert job["cost"]["billed"] == "0.5670"  # 5 s × $0.1134
        assert job["completed_at"] is not None
        video = await http.get(job["result"]["video_url"])
        metrics = (await http.get("/metrics")).text
    assert video.status_code == 200
    assert _decode_frames(video.content) > 0
    statuses = [e["to_status"] for e in history]
    assert statuses[:3] == ["queued", "submitting", "submitted"]
    assert statuses[-1] == "succeeded"
    assert_history_is_clean(history)
    assert submissions_per_job(simulator)[job_id] == 1
    for sample in (
        'mgw_upstream_calls_total{op="submit",outcome="ok",provider="simulator"}',
        'mgw_upstream_calls_total{op="fetch",outcome="ok",provider="simulator"}',
        'mgw_upstream_callbacks_total{outcome="new",provider="simulator"}',
        'mgw_job_transitions_total{source="poll",to_status="succeeded"}',
    ):
        assert sample in metrics, sample


async def test_dropped_callbacks_are_recovered_by_the_poller(
    gateway: Gateway, simulator: RunningSimulator
) -> None:
    key = await gateway.new_client()
    async with gateway.http(key) as http:
        job_id = await create_job(http, job_body(prompt="walk #sim:drop_callback"))
        job = await wait_for_status(http, job_id)
    assert job["status"] == "succeeded"
    assert all(t.callback_dropped for t in simulator.simulator.store.all())


async def test_duplicated_and_out_of_order_callbacks_apply_once(
    gateway: Gateway, simulator: RunningSimulator
) -> None:
    key = await gateway.new_client()
    async with gateway.http(key) as http:
        job_id = await create_job(http, job_body(prompt="#sim:dup_callback=3 #sim:out_of_order"))
        job = await wait_for_status(http, job_id)
        task = simulator.simulator.store.all()[0]
        # let the stale "processing" callback sent after the terminal one arrive too
        for _ in range(50):
            if len(task.callback_attempts) >= 4:
                break
            await asyncio.sleep(0.1)
        history = await events(http, job_id)
    assert job["status"] == "succeeded"
    assert len(task.callback_attempts) >= 4
    assert [e["to_status"] for e in history].count("succeeded") == 1
    assert_history_is_clean(history)


async def test_failed_task_fails_the_job_with_the_upstream_reason(gateway: Gateway) -> None:
    key = await gateway.new_client()
    async with gateway.http(key) as http:
        job_id = await create_job(http, job_body(prompt="#sim:fail=content_policy"))
        job = await wait_for_status(http, job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "content_policy"
    assert job["cost"]["billed"] == "0.0000"


SLOW = {"processing_time_s": 60.0}


async def test_forged_callbacks_change_nothing(make_stack: StackFactory) -> None:
    async with make_stack(SLOW) as stack:
        gateway, secret = stack.gateway, stack.gateway.runtime.settings.secret_bytes
        key = await gateway.new_client()
        async with gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            job = await wait_for_status(http, job_id, {"submitted", "processing"})
            task_id = job["provider"]["task_id"]
            forged = {
                "id": task_id,
                "object": "video.generation.task",
                "status": "completed",
                "progress": 100,
                "results": ["https://evil.example/x.mp4"],
            }
            url = f"/v1/upstream/simulator/callbacks/{job_id}"
            good_token = callback_token(secret, "simulator", job_id)
            bad_token = await http.post(url, params={"token": "0" * 64}, json=forged)
            other_job = await http.post(
                f"/v1/upstream/simulator/callbacks/job_{'1' * 26}",
                params={"token": good_token},
                json=forged,
            )
            unconfirmed = await http.post(url, params={"token": good_token}, json=forged)
            foreign = await http.post(
                url, params={"token": good_token}, json=forged | {"id": "task-unified-1-forged00"}
            )
            await asyncio.sleep(1.0)  # the confirming poll runs in milliseconds; be generous
            after = (await http.get(f"/v1/jobs/{job_id}")).json()
            history = await events(http, job_id)
    assert bad_token.status_code == other_job.status_code == 401
    assert unconfirmed.status_code == foreign.status_code == 204
    assert after["status"] in ("submitted", "processing")
    assert after["result"] is None
    assert not {e["to_status"] for e in history} & TERMINAL_NAMES


async def test_cancel_queued_and_refuse_a_second_cancel(make_stack: StackFactory) -> None:
    async with make_stack(role="api") as stack:  # no workers: the job stays queued
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            cancelled = await http.post(f"/v1/jobs/{job_id}/cancel")
            again = await http.post(f"/v1/jobs/{job_id}/cancel")
            history = await events(http, job_id)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["code"] == "not_cancellable"
    assert [e["to_status"] for e in history] == ["queued", "cancelled"]


async def test_cancel_of_a_submitted_job_is_409_when_the_provider_cannot(
    make_stack: StackFactory,
) -> None:
    async with make_stack(SLOW) as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            await wait_for_status(http, job_id, {"submitted", "processing"})
            response = await http.post(f"/v1/jobs/{job_id}/cancel")
            job = (await http.get(f"/v1/jobs/{job_id}")).json()
    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"
    assert job["status"] in ("submitted", "processing")


async def test_job_expires_at_its_deadline(make_stack: StackFactory) -> None:
    async with make_stack(SLOW, job_deadline_s=1.5) as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job_id = await create_job(http, job_body())
            job = await wait_for_status(http, job_id)
    assert job["status"] == "expired"
    assert job["error"]["code"] == "deadline_exceeded"


async def test_poll_only_mode_when_the_callback_url_is_not_public(make_stack: StackFactory) -> None:
    # prod judges http://127.0.0.1 the way the upstream does: not a usable callback URL
    async with make_stack(environment="prod") as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ready = (await http.get("/readyz")).json()
            job_id = await create_job(http, job_body())
            job = await wait_for_status(http, job_id)
    assert ready["callback_mode"] == "poll-only"
    assert job["status"] == "succeeded"
    assert all(t.callback_url is None for t in stack.simulator.simulator.store.all())


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("#sim:early_callback", id="callback-before-create-returns"),
        pytest.param("#sim:delay_callback=1.5", id="delayed-callback"),
        pytest.param("#sim:early_callback #sim:dup_callback=3", id="early-and-duplicated"),
    ],
)
async def test_callback_timing_faults_end_in_one_clean_success(
    gateway: Gateway, simulator: RunningSimulator, prompt: str
) -> None:
    key = await gateway.new_client()
    async with gateway.http(key) as http:
        job_id = await create_job(http, job_body(prompt=prompt))
        job = await wait_for_status(http, job_id)
        history = await events(http, job_id)
    [task] = simulator.simulator.store.all()
    assert job["status"] == "succeeded"
    assert job["provider"]["task_id"] == task.id
    assert_history_is_clean(history)
    assert submissions_per_job(simulator)[job_id] == 1
