"""Tasks move pending → processing → completed | failed, and results are real MP4s."""

from __future__ import annotations

import asyncio
import io

import av
import httpx

from tests.support.simulator import (
    RunningSimulator,
    running_simulator,
    sample_create_body,
    wait_until,
)

from .helpers import client_for, fast_config, sim_tasks, task_status, wait_for_status


def decode_frame_count(mp4: bytes) -> int:
    with av.open(io.BytesIO(mp4), mode="r") as container:
        return sum(1 for _ in container.decode(video=0))


async def create(client: httpx.AsyncClient, prompt: str | None = None) -> str:
    response = await client.post("/v1/videos/generations", json=sample_create_body(prompt=prompt))
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_happy_lifecycle_ends_with_a_playable_result() -> None:
    config = fast_config(pending_time_s=0.2, processing_time_s=0.6)
    async with running_simulator(config) as running, client_for(running) as http:
        task_id = await create(http)
        seen: list[tuple[str, int]] = []

        async def finished() -> bool:
            body = await task_status(http, task_id)
            seen.append((body["status"], body["progress"]))
            return bool(body["status"] == "completed")

        await wait_until(finished, interval_s=0.01)
        final = await task_status(http, task_id)
        video = await http.get(final["results"][0])

    statuses = [status for status, _ in seen]
    assert statuses[0] == "pending"
    assert "processing" in statuses
    order = ["pending", "processing", "completed"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    progresses = [progress for _, progress in seen]
    assert progresses == sorted(progresses)
    assert any(0 < progress < 100 for progress in progresses)
    assert final["progress"] == 100
    assert final["results"] == [f"{running.base_url}/results/{task_id}.mp4"]
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert await asyncio.to_thread(decode_frame_count, video.content) > 0


async def test_result_link_expires() -> None:
    async with (
        running_simulator(fast_config(result_ttl_s=0.3)) as running,
        client_for(running) as http,
    ):
        task_id = await create(http)
        final = await wait_for_status(http, task_id, "completed")
        url = final["results"][0]

        async def expired() -> httpx.Response | None:
            response = await http.get(url)
            return response if response.status_code == 404 else None

        gone = await wait_until(expired)

    assert gone.json()["error"]["code"] == "result_expired"
    assert gone.json()["error"]["type"] == "not_found_error"


async def test_no_result_before_completion(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:stuck")

    response = await client.get(f"/results/{task_id}.mp4")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_public_base_url_shapes_result_links() -> None:
    config = fast_config(public_base_url="https://sim.example.test/")
    async with running_simulator(config) as running, client_for(running) as http:
        task_id = await create(http)
        final = await wait_for_status(http, task_id, "completed")

    assert final["results"] == [f"https://sim.example.test/results/{task_id}.mp4"]


async def test_fail_directive_fails_with_its_code(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "dance #sim:fail=content_policy")

    final = await wait_for_status(client, task_id, "failed", "completed")

    assert final["status"] == "failed"
    assert final["error"]["code"] == "content_policy"
    assert final["error"]["message"]
    assert "results" not in final


async def test_plain_fail_directive_uses_a_generic_code(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:fail")

    final = await wait_for_status(client, task_id, "failed", "completed")

    assert final["error"]["code"] == "generation_failed"


async def test_numeric_failure_code_is_an_integer(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:fail=1301")

    final = await wait_for_status(client, task_id, "failed", "completed")

    assert final["error"]["code"] == 1301


async def test_bare_failure_has_no_error_object(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:fail_bare")

    final = await wait_for_status(client, task_id, "failed", "completed")

    assert final["status"] == "failed"
    assert "error" not in final


async def test_stuck_task_stays_processing(
    sim: RunningSimulator, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, "#sim:stuck")
    normal_id = await create(client)

    await wait_for_status(client, normal_id, "completed")

    assert (await task_status(client, task_id))["status"] == "processing"


async def test_admin_forces_outcomes(client: httpx.AsyncClient) -> None:
    done, failed, cancelled = [await create(client, "#sim:stuck") for _ in range(3)]

    completed = await client.post(f"/_sim/tasks/{done}/complete")
    fail = await client.post(f"/_sim/tasks/{failed}/fail", json={"code": "timeout"})
    cancel = await client.post(f"/_sim/tasks/{cancelled}/cancel")
    again = await client.post(f"/_sim/tasks/{done}/fail")
    unknown = await client.post("/_sim/tasks/task-unified-1-nothere0/complete")

    assert completed.json()["status"] == "completed"
    assert completed.json()["results"]
    assert fail.json()["error"]["code"] == "timeout"
    assert cancel.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert unknown.status_code == 404
    assert (await task_status(client, cancelled))["status"] == "cancelled"


async def test_admin_fail_without_code_leaves_out_error(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:stuck")

    failed = await client.post(f"/_sim/tasks/{task_id}/fail", json={"code": None})

    assert failed.json()["status"] == "failed"
    assert "error" not in failed.json()


async def test_admin_lists_tasks(client: httpx.AsyncClient) -> None:
    task_id = await create(client, "#sim:stuck")

    listing = await sim_tasks(client)
    one = (await client.get(f"/_sim/tasks/{task_id}")).json()

    assert listing["create_calls"] == 1
    assert [task["id"] for task in listing["tasks"]] == [task_id]
    assert listing["tasks"][0]["callback_attempts"] == 0
    assert one["body"]["id"] == task_id
