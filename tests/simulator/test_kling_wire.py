"""The simulator on the official Kling wire (UPSTREAM.md §B): auth, shapes, lifecycle, faults."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import jwt
import pytest

from app.simulator.config import SimulatorConfig
from tests.support.simulator import (
    RunningSimulator,
    admin_tasks,
    fast_kling_config,
    install_faults,
    kling_client,
    kling_token,
    running_simulator,
    sample_kling_body,
    wait_until,
)

CREATE = "/v1/videos/motion-control"


@pytest.fixture
async def ksim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_kling_config(processing_time_s=0.15)) as running:
        yield running


@pytest.fixture
async def kclient(ksim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with kling_client(ksim) as http:
        yield http


def assert_refusal(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    body: dict[str, Any] = response.json()
    assert body["message"]
    assert isinstance(body["request_id"], str)
    assert body["data"] is None
    return body


async def create_task(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post(CREATE, json=sample_kling_body(**fields))
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 0, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


async def query(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await http.get(f"{CREATE}/{task_id}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


async def wait_status(http: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        task = await query(http, task_id)
        return task if task["task_status"] == status else None

    return await wait_until(probe)


async def admin_task(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await http.get(f"/_sim/tasks/{task_id}")
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    return summary


def decode_frame_count(mp4: bytes) -> int:
    with av.open(io.BytesIO(mp4), mode="r") as container:
        return sum(1 for _ in container.decode(video=0))


# --- authentication ------------------------------------------------------------------


def token(config: SimulatorConfig, *, secret: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": config.kling_access_key, "exp": now + 1800, "nbf": now - 5, **claims}
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret or config.kling_secret_key, algorithm="HS256")


async def test_a_valid_jwt_is_accepted(ksim: RunningSimulator) -> None:
    async with kling_client(ksim, kling_token(ksim)) as http:
        task = await create_task(http)
        assert (await query(http, task["task_id"]))["task_id"] == task["task_id"]


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda c: token(c, exp=int(time.time()) - 10), 1004),
        (lambda c: token(c, nbf=int(time.time()) + 600), 1003),
        (lambda c: token(c, secret="another-secret-key-of-32-bytes-or-more"), 1000),
        (lambda c: token(c, iss="someone-else"), 1000),
        (lambda c: token(c, nbf=None), 1002),
        (lambda c: token(c, exp=None), 1002),
        (lambda c: "not-a-jwt", 1002),
    ],
)
async def test_bad_jwts_are_refused(ksim: RunningSimulator, make_token: Any, code: int) -> None:
    async with kling_client(ksim, make_token(ksim.config)) as http:
        created = await http.post(CREATE, json=sample_kling_body())
        queried = await http.get(f"{CREATE}/123")

    assert_refusal(created, 401, code)
    assert_refusal(queried, 401, code)


@pytest.mark.parametrize(("header", "code"), [(None, 1001), ("Basic abc", 1002), ("Bearer", 1002)])
async def test_missing_or_malformed_authorization(
    ksim: RunningSimulator, header: str | None, code: int
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(base_url=ksim.base_url) as http:
        response = await http.post(CREATE, json=sample_kling_body(), headers=headers)

    assert_refusal(response, 401, code)


# --- create and query shapes ---------------------------------------------------------


async def test_create_answers_a_wrapped_submitted_task(kclient: httpx.AsyncClient) -> None:
    response = await kclient.post(CREATE, json=sample_kling_body(external_task_id="job-1"))

    body = response.json()
    assert response.status_code == 200
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    assert isinstance(body["request_id"], str)
    assert body["request_id"]
    task = body["data"]
    assert task["task_id"].isdigit()
    assert (task["task_status"], task["task_status_msg"]) == ("submitted", "")
    assert task["task_info"] == {"external_task_id": "job-1"}
    # Milliseconds: a seconds timestamp would be below 10**12 for centuries yet.
    assert task["created_at"] > 10**12
    assert task["updated_at"] == task["created_at"]
    assert "task_result" not in task


async def test_query_answers_the_same_task(kclient: httpx.AsyncClient) -> None:
    created = await create_task(kclient)

    response = await kclient.get(f"{CREATE}/{created['task_id']}")

    body = response.json()
    assert (response.status_code, body["code"]) == (200, 0)
    assert set(body) == {"code", "message", "request_id", "data"}
    assert set(created) <= set(body["data"])
    assert body["data"]["task_id"] == created["task_id"]


async def test_unknown_task_is_404_1202(kclient: httpx.AsyncClient) -> None:
    assert_refusal(await kclient.get(f"{CREATE}/999999999999999999"), 404, 1202)


async def test_the_create_fields_are_recorded(kclient: httpx.AsyncClient) -> None:
    pro = await create_task(kclient, mode="pro", character_orientation="video")
    default = await create_task(kclient, model_name=None)

    assert (await admin_task(kclient, pro["task_id"]))["mode"] == "pro"
    assert (await admin_task(kclient, pro["task_id"]))["model_name"] == "kling-v3"
    # Left out, the model is an older one: the reason adapters always send it.
    assert (await admin_task(kclient, default["task_id"]))["model_name"] != "kling-v3"


@pytest.mark.parametrize(
    "changes",
    [
        {"keep_original_sound": True},
        {"keep_original_sound": "true"},
        {"mode": None},
        {"mode": "ultra"},
        {"character_orientation": None},
        {"image_url": None},
        {"video_url": ""},
        {"prompt": "x" * 2501},
        {"element_list": [{"element_id": "e1"}]},
        {"element_list": [{"element_id": "e1"}, {"element_id": "e2"}]},
        {"model_name": "kling-v9"},
        {"callback_url": "ftp://example.com/cb"},
        {"prompt": "#sim:no_such_directive"},
    ],
)
async def test_bad_parameters_are_400_1201(
    kclient: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    response = await kclient.post(CREATE, json=sample_kling_body(**changes))

    assert_refusal(response, 400, 1201)


async def test_optional_fields_are_accepted(kclient: httpx.AsyncClient) -> None:
    task = await create_task(
        kclient,
        character_orientation="video",
        element_list=[{"element_id": "e1"}],
        watermark_info={"enabled": True},
        keep_original_sound="no",
        prompt="x" * 2500,
    )

    assert task["task_status"] == "submitted"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"])
async def test_unreadable_bodies_are_400_1200(kclient: httpx.AsyncClient, raw: bytes) -> None:
    response = await kclient.post(CREATE, content=raw, headers={"Content-Type": "application/json"})

    assert_refusal(response, 400, 1200)


async def test_duplicate_external_task_id_is_refused(kclient: httpx.AsyncClient) -> None:
    first = await create_task(kclient, external_task_id="job-dup")

    again = await kclient.post(CREATE, json=sample_kling_body(external_task_id="job-dup"))
    other = await create_task(kclient, external_task_id="job-other")

    refusal = assert_refusal(again, 400, 1201)
    assert "external_task_id" in refusal["message"]
    tasks = (await kclient.get("/_sim/tasks")).json()
    assert [task["id"] for task in tasks["tasks"]] == [first["task_id"], other["task_id"]]
    assert tasks["create_calls"] == 3


# --- lifecycle -----------------------------------------------------------------------


async def test_lifecycle_ends_with_a_decodable_mp4(
    ksim: RunningSimulator, kclient: httpx.AsyncClient
) -> None:
    task_id = (await create_task(kclient, prompt="#sim:duration=7.5"))["task_id"]
    seen: list[str] = []

    async def finished() -> bool:
        seen.append((await query(kclient, task_id))["task_status"])
        return seen[-1] == "succeed"

    await wait_until(finished, interval_s=0.01)
    final = await query(kclient, task_id)
    (video,) = final["task_result"]["videos"]
    download = await kclient.get(video["url"])

    order = ["submitted", "processing", "succeed"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert final["updated_at"] >= final["created_at"]
    assert video["url"] == f"{ksim.base_url}/results/{task_id}.mp4"
    assert video["duration"] == "7.5"
    assert isinstance(video["id"], str)
    assert video["id"]
    assert download.headers["content-type"] == "video/mp4"
    assert await asyncio.to_thread(decode_frame_count, download.content) > 0


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("#sim:fail=content_policy", "content safety"), ("#sim:fail_bare", "")],
)
async def test_failed_tasks_carry_their_reason(
    kclient: httpx.AsyncClient, prompt: str, message: str
) -> None:
    task_id = (await create_task(kclient, prompt=prompt))["task_id"]

    final = await wait_status(kclient, task_id, "failed")

    assert message in final["task_status_msg"]
    assert bool(final["task_status_msg"]) == bool(message)
    assert "task_result" not in final
    assert_refusal(await kclient.get(f"/results/{task_id}.mp4"), 404, 1202)


async def test_admin_can_end_a_stuck_task(kclient: httpx.AsyncClient) -> None:
    failing = (await create_task(kclient, prompt="#sim:stuck"))["task_id"]
    cancelled = (await create_task(kclient, prompt="#sim:stuck"))["task_id"]
    await wait_status(kclient, failing, "processing")

    await kclient.post(f"/_sim/tasks/{failing}/fail", json={"message": "no person found"})
    await kclient.post(f"/_sim/tasks/{cancelled}/cancel")

    assert (await query(kclient, failing))["task_status_msg"] == "no person found"
    assert (await query(kclient, cancelled))["task_status"] == "failed"
    again = await kclient.post(f"/_sim/tasks/{failing}/complete")
    assert again.status_code == 409


# --- global faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, 1100),
        (429, 1101),
        (429, 1102),
        (429, 1302),
        (429, 1303),
        (403, 1103),
        (400, 1300),
        (400, 1301),
        (500, 5000),
        (503, 5001),
        (504, 5002),
        (200, 1102),
    ],
)
async def test_create_faults_answer_kling_codes(
    ksim: RunningSimulator, kclient: httpx.AsyncClient, status: int, code: int
) -> None:
    await install_faults(ksim, {"create": {"status": status, "code": code, "count": 1}})

    refused = await kclient.post(CREATE, json=sample_kling_body())
    accepted = await kclient.post(CREATE, json=sample_kling_body())

    assert_refusal(refused, status, code)
    assert accepted.json()["code"] == 0
    assert len(await admin_tasks(ksim)) == 1


@pytest.mark.parametrize(("status", "code"), [(429, 1302), (503, 5001), (504, 5002), (404, 1202)])
async def test_a_status_alone_gets_its_default_code(
    ksim: RunningSimulator, kclient: httpx.AsyncClient, status: int, code: int
) -> None:
    await install_faults(ksim, {"query": {"status": status, "retry_after": 2, "count": 1}})

    response = await kclient.get(f"{CREATE}/123")

    assert_refusal(response, status, code)
    assert response.headers["Retry-After"] == "2"


async def test_create_anyway_leaves_a_task_behind(
    ksim: RunningSimulator, kclient: httpx.AsyncClient
) -> None:
    rule = {"status": 500, "code": 5000, "create_anyway": True, "count": 1}
    await install_faults(ksim, {"create": rule})

    response = await kclient.post(CREATE, json=sample_kling_body(external_task_id="job-x"))
    again = await kclient.post(CREATE, json=sample_kling_body(external_task_id="job-x"))

    assert_refusal(response, 500, 5000)
    assert_refusal(again, 400, 1201)
    assert len(await admin_tasks(ksim)) == 1


@pytest.mark.parametrize(
    "rule",
    [{"status": 200}, {"status": 200, "code": 0}, {"status": 199, "code": 1102}],
)
async def test_a_2xx_fault_needs_a_code(kclient: httpx.AsyncClient, rule: dict[str, Any]) -> None:
    response = await kclient.post("/_sim/faults", json={"create": rule})

    assert response.status_code == 422


async def test_the_aggregator_wire_is_not_served(kclient: httpx.AsyncClient) -> None:
    response = await kclient.post("/v1/videos/generations", json={})

    assert response.status_code in (404, 405)
