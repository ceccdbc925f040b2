"""The aggregator adapter against the simulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from app.providers.base import (
    AmbiguousError,
    CancelNotSupported,
    PermanentError,
    Provider,
    RetryableError,
    SubmitRequest,
    TaskSnapshot,
    TaskStatus,
)
from app.providers.common import retry_after_s
from app.providers.evolink import EvolinkProvider, build_create_body
from tests.support.simulator import (
    RunningSimulator,
    running_receiver,
    running_simulator,
    wait_until,
)

from .helpers import FAST

REQUEST = SubmitRequest(
    job_id="job-0001",
    image_url="https://media.example.com/character.png",
    video_url="https://media.example.com/motion.mp4",
    quality="720p",
    character_orientation="image",
)


def adapter(base_url: str, http: httpx.AsyncClient, **kwargs: Any) -> EvolinkProvider:
    options: dict[str, Any] = {"timeout_s": 2.0, **kwargs}
    return EvolinkProvider("evolink", base_url, "sk-test", http, **options)


async def set_faults(sim: RunningSimulator, rules: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as admin:
        response = await admin.post(f"{sim.base_url}/_sim/faults", json=rules)
    assert response.status_code == 200, response.text


async def sim_tasks(sim: RunningSimulator) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as admin:
        tasks: list[dict[str, Any]] = (await admin.get(f"{sim.base_url}/_sim/tasks")).json()[
            "tasks"
        ]
    return tasks


async def wait_terminal(provider: EvolinkProvider, task_id: str) -> TaskSnapshot:
    async def probe() -> TaskSnapshot | None:
        snapshot = await provider.fetch(task_id)
        return snapshot if snapshot.status not in _RUNNING else None

    return await wait_until(probe)


_RUNNING = (TaskStatus.pending, TaskStatus.processing)


def test_it_is_a_provider(http: httpx.AsyncClient) -> None:
    provider: Provider = adapter("http://127.0.0.1:1", http)

    assert provider.name == "evolink"


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
        "model": "kling-v3-motion-control",
        "image_urls": [REQUEST.image_url],
        "video_urls": [REQUEST.video_url],
        "quality": "1080p",
        "prompt": "dance",
        "callback_url": "https://gw.example.com/cb",
        "model_params": {
            "character_orientation": "video",
            "keep_sound": False,
            "element_list": [{"element_id": "el-1"}],
            "watermark_info": {"enabled": False},
        },
    }
    assert set(build_create_body(REQUEST)) == {
        "model",
        "image_urls",
        "video_urls",
        "quality",
        "model_params",
    }


# --- happy paths ---------------------------------------------------------------------


async def test_submit_then_fetch_until_succeeded(
    sim: RunningSimulator, provider: EvolinkProvider
) -> None:
    submitted = await provider.submit(REQUEST)
    final = await wait_terminal(provider, submitted.task_id)

    assert submitted.status is TaskStatus.pending
    assert submitted.task_id.startswith("task-unified-")
    assert submitted.video_duration_s == 5.0
    assert submitted.estimated_time_s is not None
    assert submitted.raw["object"] == "video.generation.task"
    assert final.status is TaskStatus.succeeded
    assert final.progress == 100
    assert final.result_urls == (f"{sim.base_url}/results/{submitted.task_id}.mp4",)
    assert (await sim_tasks(sim))[0]["idempotency_key"] == REQUEST.job_id


@pytest.mark.parametrize(
    ("prompt", "code", "has_message"),
    [
        ("#sim:fail=content_policy", "content_policy", True),
        ("#sim:fail=1301", "1301", True),
        ("#sim:fail_bare", None, False),
    ],
)
async def test_failed_task_maps_its_error(
    provider: EvolinkProvider, prompt: str, code: str | None, has_message: bool
) -> None:
    submitted = await provider.submit(replace(REQUEST, prompt=prompt))
    final = await wait_terminal(provider, submitted.task_id)

    assert final.status is TaskStatus.failed
    assert final.error_code == code
    assert (final.error_message is not None) == has_message
    assert final.result_urls == ()


async def test_duration_comes_from_task_info(provider: EvolinkProvider) -> None:
    submitted = await provider.submit(replace(REQUEST, prompt="#sim:duration=7.5"))

    assert submitted.video_duration_s == 7.5


async def test_real_callback_parses(provider: EvolinkProvider) -> None:
    async with running_receiver() as receiver:
        submitted = await provider.submit(replace(REQUEST, callback_url=receiver.url))
        (callback,) = await receiver.wait_for(1)

    snapshot = provider.parse_callback(json.dumps(callback.body).encode())

    assert snapshot.task_id == submitted.task_id
    assert snapshot.status is TaskStatus.succeeded
    assert snapshot.result_urls


async def test_cancel_is_not_supported(provider: EvolinkProvider) -> None:
    with pytest.raises(CancelNotSupported):
        await provider.cancel("task-unified-1-abcdefgh")


# --- create error translation --------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_create_refusals_that_are_retryable(
    sim: RunningSimulator, provider: EvolinkProvider, status: int
) -> None:
    await set_faults(sim, {"create": {"status": status, "retry_after": 2, "count": 1}})

    with pytest.raises(RetryableError) as caught:
        await provider.submit(REQUEST)

    assert caught.value.status_code == status
    assert caught.value.retry_after_s == 2.0
    assert await sim_tasks(sim) == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "authentication_error"),
        (402, "insufficient_quota_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large_error"),
    ],
)
async def test_create_refusals_that_are_permanent(
    sim: RunningSimulator, provider: EvolinkProvider, status: int, code: str
) -> None:
    await set_faults(sim, {"create": {"status": status, "count": 1}})

    with pytest.raises(PermanentError) as caught:
        await provider.submit(REQUEST)

    assert not isinstance(caught.value, CancelNotSupported)
    assert (caught.value.status_code, caught.value.code) == (status, code)


async def test_invalid_create_is_permanent(provider: EvolinkProvider) -> None:
    bad = replace(REQUEST, element_ids=("el-1",))  # elements need orientation "video"

    with pytest.raises(PermanentError) as caught:
        await provider.submit(bad)

    assert (caught.value.status_code, caught.value.code) == (400, "invalid_parameter")


async def test_wrong_key_is_permanent(http: httpx.AsyncClient) -> None:
    config = FAST.model_copy(update={"accepted_api_keys": frozenset({"sk-other"})})
    async with running_simulator(config) as running:
        with pytest.raises(PermanentError) as caught:
            await adapter(running.base_url, http).submit(REQUEST)

    assert (caught.value.status_code, caught.value.code) == (401, "invalid_api_key")


async def test_integer_error_codes_fall_back_to_the_type(http: httpx.AsyncClient) -> None:
    config = FAST.model_copy(update={"error_code_style": "int"})
    async with running_simulator(config) as running:
        await set_faults(running, {"create": {"status": 402, "count": 1}})
        with pytest.raises(PermanentError) as caught:
            await adapter(running.base_url, http).submit(REQUEST)

    assert caught.value.code == "insufficient_quota_error"


@pytest.mark.parametrize("status", [500, 504, 409])
async def test_other_create_statuses_are_ambiguous(
    sim: RunningSimulator, provider: EvolinkProvider, status: int
) -> None:
    rule = {"status": status, "create_anyway": True, "count": 1}
    await set_faults(sim, {"create": rule})

    with pytest.raises(AmbiguousError) as caught:
        await provider.submit(REQUEST)

    assert caught.value.status_code == status
    assert len(await sim_tasks(sim)) == 1


async def test_create_timeout_is_ambiguous_and_the_task_exists(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await set_faults(sim, {"create": {"timeout": True, "count": 1}})

    with pytest.raises(AmbiguousError):
        await adapter(sim.base_url, http, timeout_s=0.3).submit(REQUEST)
    tasks = await sim_tasks(sim)

    assert len(tasks) == 1
    assert tasks[0]["idempotency_key"] == REQUEST.job_id


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_retryable(http: httpx.AsyncClient) -> None:
    provider = adapter(f"http://127.0.0.1:{closed_port()}", http)

    with pytest.raises(RetryableError) as create_error:
        await provider.submit(REQUEST)
    with pytest.raises(RetryableError):
        await provider.fetch("task-unified-1-abcdefgh")

    assert create_error.value.code == "connect_failed"


@contextlib.asynccontextmanager
async def hang_up_server() -> AsyncIterator[str]:
    """A server that reads the request, then closes the connection without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_dropped_mid_request(http: httpx.AsyncClient) -> None:
    async with hang_up_server() as base_url:
        provider = adapter(base_url, http)
        with pytest.raises(AmbiguousError):
            await provider.submit(REQUEST)
        with pytest.raises(RetryableError):
            await provider.fetch("task-unified-1-abcdefgh")


async def test_bad_base_url_is_permanent(http: httpx.AsyncClient) -> None:
    provider = adapter("gopher://127.0.0.1:1", http)

    with pytest.raises(PermanentError):
        await provider.submit(REQUEST)
    with pytest.raises(PermanentError):
        await provider.fetch("task-unified-1-abcdefgh")


# --- fetch error translation ---------------------------------------------------------


async def test_fetch_unknown_task_is_permanent(provider: EvolinkProvider) -> None:
    with pytest.raises(PermanentError) as caught:
        await provider.fetch("task-unified-1-nothere0")

    assert (caught.value.status_code, caught.value.code) == (404, "task_not_found")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_fetch_server_errors_are_retryable(
    sim: RunningSimulator, provider: EvolinkProvider, status: int
) -> None:
    submitted = await provider.submit(REQUEST)
    await set_faults(sim, {"query": {"status": status, "retry_after": 3, "count": 1}})

    with pytest.raises(RetryableError) as caught:
        await provider.fetch(submitted.task_id)

    assert (caught.value.status_code, caught.value.retry_after_s) == (status, 3.0)
    assert (await provider.fetch(submitted.task_id)).task_id == submitted.task_id


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_fetch_client_errors_are_permanent(
    sim: RunningSimulator, provider: EvolinkProvider, status: int
) -> None:
    await set_faults(sim, {"query": {"status": status, "count": 1}})

    with pytest.raises(PermanentError) as caught:
        await provider.fetch("task-unified-1-abcdefgh")

    assert caught.value.status_code == status


async def test_fetch_timeout_is_retryable(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    provider = adapter(sim.base_url, http, query_timeout_s=0.3)
    submitted = await provider.submit(REQUEST)
    await set_faults(sim, {"query": {"timeout": True, "count": 1}})

    with pytest.raises(RetryableError):
        await provider.fetch(submitted.task_id)


# --- parsing tolerance ---------------------------------------------------------------


def task_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "task-unified-1700000000-abcdefgh",
        "object": "video.generation.task",
        "created": 1700000000,
        "model": "kling-v3-motion-control",
        "status": "processing",
        "progress": 40,
        "type": "video",
        "task_info": {"can_cancel": False, "estimated_time": 120, "video_duration": 5},
        "usage": {"billing_rule": "per_second", "credits_reserved": 60, "user_group": "d"},
    }
    body.update(changes)
    return body


def parse(provider: EvolinkProvider, body: Any) -> TaskSnapshot:
    return provider.parse_callback(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", TaskStatus.pending),
        ("processing", TaskStatus.processing),
        ("completed", TaskStatus.succeeded),
        ("failed", TaskStatus.failed),
        ("cancelled", TaskStatus.cancelled),
        ("canceled", TaskStatus.cancelled),
    ],
)
def test_status_mapping(http: httpx.AsyncClient, status: str, expected: TaskStatus) -> None:
    assert parse(adapter("http://x", http), task_body(status=status)).status is expected


def test_loose_field_forms_are_tolerated(http: httpx.AsyncClient) -> None:
    body = task_body(
        status="completed",
        progress="99.5",
        results=[{"url": "https://cdn.example.com/a.mp4"}, "https://cdn.example.com/b.mp4"],
        task_info={"video_duration": "6.5", "estimated_time": 90.2},
    )

    snapshot = parse(adapter("http://x", http), body)

    assert snapshot.progress == 100
    assert snapshot.result_urls == (
        "https://cdn.example.com/a.mp4",
        "https://cdn.example.com/b.mp4",
    )
    assert (snapshot.video_duration_s, snapshot.estimated_time_s) == (6.5, 91)


def test_error_codes_of_both_forms(http: httpx.AsyncClient) -> None:
    provider = adapter("http://x", http)
    as_text = parse(provider, task_body(status="failed", error={"code": "Content Policy"}))
    as_int = parse(provider, task_body(status="failed", error={"code": 500, "message": "m"}))

    assert (as_text.error_code, as_text.error_message) == ("content_policy", None)
    assert (as_int.error_code, as_int.error_message) == ("500", "m")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"null",
        json.dumps(task_body(id=None)).encode(),
        json.dumps(task_body(id="")).encode(),
        json.dumps(task_body(status="exploded")).encode(),
        json.dumps({k: v for k, v in task_body().items() if k != "status"}).encode(),
        b"\xff\xfe",
    ],
)
def test_garbage_callbacks_are_refused(http: httpx.AsyncClient, raw: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        adapter("http://x", http).parse_callback(raw)

    assert caught.value.code == "bad_callback_payload"


def test_retry_after_accepts_seconds_and_dates() -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)

    def with_header(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after_s(with_header("7")) == 7.0
    dated = retry_after_s(with_header(in_a_minute))
    assert dated is not None
    assert 0 < dated <= 60
    assert retry_after_s(with_header("soon")) is None
    assert retry_after_s(httpx.Response(429)) is None
