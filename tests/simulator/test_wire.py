"""The create and query endpoints speak UPSTREAM.md §A's wire format."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.simulator import RunningSimulator, running_simulator, sample_create_body

from .helpers import client_for, fast_config

TASK_ID = re.compile(r"^task-unified-\d+-[A-Za-z0-9]{8}$")


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == error_type
    assert isinstance(error["code"], str)
    assert error["message"]
    return error


async def test_create_answers_a_pending_task(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/videos/generations", json=sample_create_body(quality="1080p"))

    assert response.status_code == 200
    task = response.json()
    assert TASK_ID.match(task["id"])
    assert task["object"] == "video.generation.task"
    assert isinstance(task["created"], int)
    assert task["model"] == "kling-v3-motion-control"
    assert (task["status"], task["progress"], task["type"]) == ("pending", 0, "video")
    assert task["task_info"]["can_cancel"] is False
    assert isinstance(task["task_info"]["estimated_time"], int)
    assert task["task_info"]["video_duration"] == 5
    assert task["usage"]["billing_rule"] == "per_second"
    assert isinstance(task["usage"]["credits_reserved"], int)
    assert task["usage"]["user_group"] == "default"
    assert "results" not in task
    assert "error" not in task


async def test_query_answers_the_same_shape(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/videos/generations", json=sample_create_body())).json()

    queried = (await client.get(f"/v1/tasks/{created['id']}")).json()

    assert set(created) <= set(queried)
    assert queried["id"] == created["id"]


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic abc", "sk-test"])
async def test_missing_bearer_key_is_401(sim: RunningSimulator, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        response = await http.post(
            "/v1/videos/generations", json=sample_create_body(), headers=headers
        )
        query = await http.get("/v1/tasks/task-unified-1-abcdefgh", headers=headers)

    assert_error(response, 401, "authentication_error")
    assert_error(query, 401, "authentication_error")


async def test_configured_keys_refuse_others() -> None:
    async with (
        running_simulator(fast_config(accepted_api_keys={"sk-good"})) as running,
        client_for(running, "sk-good") as good,
        client_for(running, "sk-bad") as bad,
    ):
        accepted = await good.post("/v1/videos/generations", json=sample_create_body())
        refused = await bad.post("/v1/videos/generations", json=sample_create_body())

    assert accepted.status_code == 200
    assert assert_error(refused, 401, "authentication_error")["code"] == "invalid_api_key"


INVALID_BODIES: dict[str, dict[str, Any]] = {
    "wrong model": sample_create_body(model="kling-v2"),
    "two images": sample_create_body(image_urls=["https://a/1.png", "https://a/2.png"]),
    "no image": sample_create_body(image_urls=[]),
    "two videos": sample_create_body(video_urls=["https://a/1.mp4", "https://a/2.mp4"]),
    "no video": sample_create_body(video_urls=[]),
    "long prompt": sample_create_body(prompt="x" * 2501),
    "bad quality": sample_create_body(quality="4k"),
    "no model_params": {k: v for k, v in sample_create_body().items() if k != "model_params"},
    "no orientation": sample_create_body(model_params={"keep_sound": True}),
    "bad orientation": sample_create_body(model_params={"character_orientation": "side"}),
    "two elements": sample_create_body(
        model_params={
            "character_orientation": "video",
            "element_list": [{"element_id": "a"}, {"element_id": "b"}],
        }
    ),
    "element with image orientation": sample_create_body(
        model_params={"character_orientation": "image", "element_list": [{"element_id": "a"}]}
    ),
    "unknown directive": sample_create_body(prompt="dance #sim:explode"),
    "bad directive value": sample_create_body(prompt="#sim:duration=soon"),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
async def test_invalid_create_is_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/videos/generations", json=body)

    assert_error(response, 400, "invalid_request_error")


async def test_upstream_limits_are_accepted(client: httpx.AsyncClient) -> None:
    body = sample_create_body(
        prompt="x" * 2500,
        model_params={
            "character_orientation": "video",
            "keep_sound": False,
            "element_list": [{"element_id": "el-1"}],
            "watermark_info": {"enabled": True},
        },
    )

    response = await client.post("/v1/videos/generations", json=body)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"])
async def test_unreadable_body_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/videos/generations", content=raw, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_request_error")


async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tasks/task-unified-1-nothere0")

    assert_error(response, 404, "not_found_error")


async def test_another_keys_task_is_404(sim: RunningSimulator, client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/videos/generations", json=sample_create_body())).json()

    async with client_for(sim, "sk-someone-else") as other:
        response = await other.get(f"/v1/tasks/{created['id']}")

    assert_error(response, 404, "not_found_error")


async def test_integer_error_codes_like_the_mirror() -> None:
    async with (
        running_simulator(fast_config(error_code_style="int")) as running,
        client_for(running) as http,
    ):
        response = await http.get("/v1/tasks/task-unified-1-nothere0")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_duration_directive_sets_video_duration(client: httpx.AsyncClient) -> None:
    five = await client.post("/v1/videos/generations", json=sample_create_body())
    seven = await client.post(
        "/v1/videos/generations", json=sample_create_body(prompt="walk #sim:duration=7")
    )

    assert seven.json()["task_info"]["video_duration"] == 7
    assert seven.json()["usage"]["credits_reserved"] > five.json()["usage"]["credits_reserved"]


async def test_idempotency_key_is_recorded_but_ignored_by_default(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "job-1"}
    first = await client.post("/v1/videos/generations", json=sample_create_body(), headers=headers)
    second = await client.post("/v1/videos/generations", json=sample_create_body(), headers=headers)

    assert first.json()["id"] != second.json()["id"]
    tasks = (await client.get("/_sim/tasks")).json()
    assert [task["idempotency_key"] for task in tasks["tasks"]] == ["job-1", "job-1"]
    assert tasks["create_calls"] == 2


async def test_idempotency_key_can_be_honored() -> None:
    async with (
        running_simulator(fast_config(honor_idempotency_key=True)) as running,
        client_for(running) as http,
    ):
        headers = {"Idempotency-Key": "job-1"}
        first = await http.post(
            "/v1/videos/generations", json=sample_create_body(), headers=headers
        )
        second = await http.post(
            "/v1/videos/generations", json=sample_create_body(), headers=headers
        )
        tasks = (await http.get("/_sim/tasks")).json()

    assert first.json()["id"] == second.json()["id"]
    assert len(tasks["tasks"]) == 1
    assert tasks["tasks"][0]["create_calls"] == 2
