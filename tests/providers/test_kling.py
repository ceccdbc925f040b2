"""The official Kling adapter against the simulator's Kling wire: requests, tokens, tasks."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from app.providers.base import (
    CancelNotSupported,
    PermanentError,
    Provider,
    SubmitRequest,
    TaskSnapshot,
    TaskStatus,
)
from app.providers.kling import KlingProvider, build_create_body
from app.simulator.config import SimulatorConfig
from tests.support.simulator import (
    RunningSimulator,
    admin_tasks,
    fast_kling_config,
    running_receiver,
    running_simulator,
    wait_until,
)

KLING_FAST = fast_kling_config()
REQUEST = SubmitRequest(
    job_id="job-0001",
    image_url="https://media.example.com/character.png",
    video_url="https://media.example.com/motion.mp4",
    quality="720p",
    character_orientation="image",
)
_RUNNING = (TaskStatus.pending, TaskStatus.processing)


@pytest.fixture
async def kling_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(KLING_FAST) as running:
        yield running


def adapter(
    base_url: str, http: httpx.AsyncClient, config: SimulatorConfig = KLING_FAST, **kwargs: Any
) -> KlingProvider:
    options: dict[str, Any] = {"timeout_s": 2.0, **kwargs}
    return KlingProvider(
        "kling", base_url, config.kling_access_key, config.kling_secret_key, http, **options
    )


@pytest.fixture
def kling(kling_sim: RunningSimulator, http: httpx.AsyncClient) -> KlingProvider:
    return adapter(kling_sim.base_url, http)


async def wait_terminal(provider: KlingProvider, task_id: str) -> TaskSnapshot:
    async def probe() -> TaskSnapshot | None:
        snapshot = await provider.fetch(task_id)
        return snapshot if snapshot.status not in _RUNNING else None

    return await wait_until(probe)


def test_it_is_a_provider(http: httpx.AsyncClient) -> None:
    provider: Provider = adapter("http://127.0.0.1:1", http)

    assert provider.name == "kling"


# --- the request ---------------------------------------------------------------------


def test_create_body_follows_the_wire_format() -> None:
    request = replace(
        REQUEST,
        quality="1080p",
        character_orientation="video",
        keep_sound=False,
        prompt="dance",
        element_ids=("el-1",),
        watermark_enabled=False,
        callback_url="https://gw.example.com/cb",
    )

    assert build_create_body(request) == {
        "model_name": "kling-v3",
        "image_url": REQUEST.image_url,
        "video_url": REQUEST.video_url,
        "keep_original_sound": "no",
        "character_orientation": "video",
        "mode": "pro",
        "external_task_id": "job-0001",
        "prompt": "dance",
        "element_list": [{"element_id": "el-1"}],
        "watermark_info": {"enabled": False},
        "callback_url": "https://gw.example.com/cb",
    }
    minimal = build_create_body(REQUEST)
    assert (minimal["mode"], minimal["keep_original_sound"]) == ("std", "yes")
    assert set(minimal) == {
        "model_name",
        "image_url",
        "video_url",
        "keep_original_sound",
        "character_orientation",
        "mode",
        "external_task_id",
    }


async def test_unknown_quality_is_refused_before_sending(http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentError) as caught:
        await adapter("http://127.0.0.1:1", http).submit(replace(REQUEST, quality="4k"))

    assert (caught.value.code, caught.value.status_code) == ("unsupported_quality", 400)


class FakeClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_token_claims_and_caching(http: httpx.AsyncClient) -> None:
    clock = FakeClock(1_800_000_000.0)
    provider = adapter("http://x", http, clock=clock)

    first = provider.token()
    # The signature is checked; the time claims are compared by value below.
    claims = jwt.decode(
        first,
        KLING_FAST.kling_secret_key,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False},
    )
    clock.now_s += 600
    cached = provider.token()
    clock.now_s += 1200  # 30 minutes in: past the refresh point, before expiry
    renewed = provider.token()

    assert jwt.get_unverified_header(first)["alg"] == "HS256"
    assert claims == {
        "iss": KLING_FAST.kling_access_key,
        "exp": 1_800_001_800,
        "nbf": 1_799_999_995,
    }
    assert cached == first
    assert renewed != first


@pytest.mark.parametrize(
    ("clock_offset_s", "code"),
    [(-4000.0, "token_expired"), (600.0, "token_not_yet_valid")],
)
async def test_a_token_outside_its_window_is_a_provider_side_refusal(
    kling_sim: RunningSimulator, http: httpx.AsyncClient, clock_offset_s: float, code: str
) -> None:
    provider = adapter(kling_sim.base_url, http, clock=lambda: time.time() + clock_offset_s)

    with pytest.raises(PermanentError) as caught:
        await provider.submit(REQUEST)

    assert (caught.value.status_code, caught.value.code) == (401, code)


async def test_a_wrong_secret_is_a_provider_side_refusal(
    kling_sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    wrong = KLING_FAST.model_copy(update={"kling_secret_key": "x" * 40})

    with pytest.raises(PermanentError) as caught:
        await adapter(kling_sim.base_url, http, wrong).submit(REQUEST)
    with pytest.raises(PermanentError) as on_fetch:
        await adapter(kling_sim.base_url, http, wrong).fetch("123")

    assert (caught.value.status_code, caught.value.code) == (401, "authentication_failed")
    assert on_fetch.value.status_code == 401


# --- happy paths ---------------------------------------------------------------------


async def test_submit_then_fetch_until_succeeded(
    kling_sim: RunningSimulator, kling: KlingProvider
) -> None:
    submitted = await kling.submit(replace(REQUEST, keep_sound=False, prompt="#sim:duration=7.5"))
    final = await wait_terminal(kling, submitted.task_id)

    assert submitted.status is TaskStatus.pending
    assert submitted.raw["task_info"] == {"external_task_id": REQUEST.job_id}
    assert (final.status, final.progress) == (TaskStatus.succeeded, 100)
    assert final.result_urls == (f"{kling_sim.base_url}/results/{submitted.task_id}.mp4",)
    assert final.video_duration_s == 7.5
    (task,) = await admin_tasks(kling_sim)
    assert (task["model_name"], task["mode"], task["external_task_id"]) == (
        "kling-v3",
        "std",
        REQUEST.job_id,
    )


@pytest.mark.parametrize(
    ("prompt", "has_message"), [("#sim:fail=content_policy", True), ("#sim:fail_bare", False)]
)
async def test_failed_task_maps_its_reason(
    kling: KlingProvider, prompt: str, has_message: bool
) -> None:
    submitted = await kling.submit(replace(REQUEST, prompt=prompt))
    final = await wait_terminal(kling, submitted.task_id)

    assert (final.status, final.error_code) == (TaskStatus.failed, "generation_failed")
    assert (final.error_message is not None) == has_message
    assert final.result_urls == ()


async def test_real_callbacks_parse(kling: KlingProvider) -> None:
    async with running_receiver() as receiver:
        submitted = await kling.submit(replace(REQUEST, callback_url=receiver.url))
        received = await receiver.wait_for(3)

    snapshots = [kling.parse_callback(json.dumps(cb.body).encode()) for cb in received]

    assert [s.status for s in snapshots] == [
        TaskStatus.pending,
        TaskStatus.processing,
        TaskStatus.succeeded,
    ]
    assert {s.task_id for s in snapshots} == {submitted.task_id}
    assert snapshots[-1].result_urls


async def test_cancel_is_not_supported(kling: KlingProvider) -> None:
    with pytest.raises(CancelNotSupported):
        await kling.cancel("123")


# --- parsing -------------------------------------------------------------------------


def task_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": "866168216002236456",
        "task_status": "succeed",
        "task_status_msg": "",
        "task_info": {"external_task_id": "job-0001"},
        "task_result": {
            "videos": [{"id": "v1", "url": "https://cdn.example.com/a.mp4", "duration": "5.1"}]
        },
        "created_at": 1722769557708,
        "updated_at": 1722769557708,
    }
    body.update(changes)
    return body


def parse(provider: KlingProvider, body: Any) -> TaskSnapshot:
    return provider.parse_callback(json.dumps(body).encode())


def test_parse_callback_of_bare_and_wrapped_bodies(http: httpx.AsyncClient) -> None:
    provider = adapter("http://x", http)
    wrapped = {"code": 0, "message": "SUCCEED", "request_id": "r1", "data": task_body()}

    bare = parse(provider, task_body())

    assert parse(provider, wrapped) == bare
    assert (bare.task_id, bare.status, bare.progress) == (
        "866168216002236456",
        TaskStatus.succeeded,
        100,
    )
    assert (bare.result_urls, bare.video_duration_s) == (("https://cdn.example.com/a.mp4",), 5.1)
    assert bare.raw["task_info"]["external_task_id"] == "job-0001"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("submitted", TaskStatus.pending),
        ("processing", TaskStatus.processing),
        ("succeed", TaskStatus.succeeded),
        ("failed", TaskStatus.failed),
    ],
)
def test_status_mapping(http: httpx.AsyncClient, status: str, expected: TaskStatus) -> None:
    body = task_body(task_status=status, task_result=None)

    assert parse(adapter("http://x", http), body).status is expected


def test_a_failure_reason_is_kept(http: httpx.AsyncClient) -> None:
    body = task_body(task_status="failed", task_status_msg="risk control", task_result=None)

    snapshot = parse(adapter("http://x", http), body)

    assert (snapshot.error_code, snapshot.error_message) == ("generation_failed", "risk control")
    assert (snapshot.result_urls, snapshot.video_duration_s) == ((), None)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"null",
        b"\xff\xfe",
        json.dumps(task_body(task_id=None)).encode(),
        json.dumps(task_body(task_id="")).encode(),
        json.dumps(task_body(task_status="completed")).encode(),
        json.dumps({"code": 1201, "message": "bad", "data": task_body()}).encode(),
        json.dumps({"code": 0, "data": {"nothing": True}}).encode(),
    ],
)
def test_garbage_callbacks_are_refused(http: httpx.AsyncClient, raw: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter("http://x", http).parse_callback(raw)

    assert caught.value.code == "bad_callback_payload"
