"""The official Kling adapter against the simulator's Kling wire over real loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from app.providers.base import (
    AmbiguousError,
    CancelNotSupported,
    PermanentError,
    Provider,
    ProviderError,
    RetryableError,
    SubmitRequest,
    TaskSnapshot,
    TaskStatus,
)
from app.providers.kling import KlingProvider, build_create_body
from app.simulator.config import SimulatorConfig
from app.simulator.testing import RunningSimulator, running_receiver, running_simulator, wait_until

KLING_FAST = SimulatorConfig(
    wire="kling",
    pending_time_s=0.02,
    processing_time_s=0.1,
    allow_insecure_callbacks=True,
    fault_hang_s=5.0,
)
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


async def set_faults(sim: RunningSimulator, rules: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as admin:
        response = await admin.post(f"{sim.base_url}/_sim/faults", json=rules)
    assert response.status_code == 200, response.text


async def sim_tasks(sim: RunningSimulator) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as admin:
        body = (await admin.get(f"{sim.base_url}/_sim/tasks")).json()
    tasks: list[dict[str, Any]] = body["tasks"]
    return tasks


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
    (task,) = await sim_tasks(kling_sim)
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


async def test_aclose_leaves_the_shared_client_open(
    kling: KlingProvider, http: httpx.AsyncClient
) -> None:
    await kling.aclose()

    assert not http.is_closed
    assert (await kling.submit(REQUEST)).status is TaskStatus.pending


# --- create error translation --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind", "expected_status", "name"),
    [
        (429, 1302, RetryableError, 429, "rate_limited"),
        (429, 1303, RetryableError, 429, "concurrency_limited"),
        (503, 5001, RetryableError, 503, "service_unavailable"),
        (200, 1302, RetryableError, 429, "rate_limited"),
        (429, 1100, PermanentError, 402, "account_exception"),
        (429, 1101, PermanentError, 402, "account_in_arrears"),
        (429, 1102, PermanentError, 402, "balance_exhausted"),
        (200, 1102, PermanentError, 402, "balance_exhausted"),
        (429, 1304, PermanentError, 403, "ip_not_allowed"),
        (401, 1004, PermanentError, 401, "token_expired"),
        (403, 1103, PermanentError, 403, "no_access"),
        (400, 1200, PermanentError, 400, "invalid_request"),
        (400, 1201, PermanentError, 400, "invalid_parameter"),
        (400, 1300, PermanentError, 400, "platform_policy"),
        (400, 1301, PermanentError, 400, "content_policy"),
        (500, 5000, AmbiguousError, 500, "internal_error"),
        (504, 5002, AmbiguousError, 504, "backlog_timeout"),
        (200, 5000, AmbiguousError, 500, "internal_error"),
    ],
)
async def test_create_refusals(
    kling_sim: RunningSimulator,
    kling: KlingProvider,
    status: int,
    code: int,
    kind: type[ProviderError],
    expected_status: int,
    name: str,
) -> None:
    rule = {"status": status, "code": code, "retry_after": 2, "count": 1}
    await set_faults(kling_sim, {"create": rule})

    with pytest.raises(ProviderError) as caught:
        await kling.submit(REQUEST)

    assert type(caught.value) is kind
    assert (caught.value.status_code, caught.value.code) == (expected_status, name)
    if isinstance(caught.value, RetryableError):
        assert caught.value.retry_after_s == 2.0
    assert await sim_tasks(kling_sim) == []


async def test_a_refused_parameter_is_job_side(kling: KlingProvider) -> None:
    bad = replace(REQUEST, element_ids=("el-1",))  # elements need orientation "video"

    with pytest.raises(PermanentError) as caught:
        await kling.submit(bad)

    assert (caught.value.status_code, caught.value.code) == (400, "invalid_parameter")


async def test_a_duplicate_external_task_id_is_ambiguous(
    kling_sim: RunningSimulator, kling: KlingProvider
) -> None:
    first = await kling.submit(REQUEST)

    with pytest.raises(AmbiguousError) as caught:
        await kling.submit(REQUEST)

    assert caught.value.code == "duplicate_external_task_id"
    assert [task["id"] for task in await sim_tasks(kling_sim)] == [first.task_id]


async def test_a_500_after_creating_is_ambiguous_and_the_task_exists(
    kling_sim: RunningSimulator, kling: KlingProvider
) -> None:
    await set_faults(kling_sim, {"create": {"status": 500, "create_anyway": True, "count": 1}})

    with pytest.raises(AmbiguousError) as caught:
        await kling.submit(REQUEST)

    assert caught.value.status_code == 500
    assert [task["external_task_id"] for task in await sim_tasks(kling_sim)] == [REQUEST.job_id]


async def test_create_timeout_is_ambiguous(
    kling_sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await set_faults(kling_sim, {"create": {"timeout": True, "count": 1}})

    with pytest.raises(AmbiguousError):
        await adapter(kling_sim.base_url, http, timeout_s=0.3).submit(REQUEST)

    assert len(await sim_tasks(kling_sim)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


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


async def test_transport_failures(http: httpx.AsyncClient) -> None:
    refused = adapter(f"http://127.0.0.1:{closed_port()}", http)
    bad_url = adapter("gopher://127.0.0.1:1", http)

    with pytest.raises(RetryableError) as not_connected:
        await refused.submit(REQUEST)
    with pytest.raises(RetryableError):
        await refused.fetch("123")
    with pytest.raises(PermanentError):
        await bad_url.submit(REQUEST)
    async with hang_up_server() as base_url:
        with pytest.raises(AmbiguousError):
            await adapter(base_url, http).submit(REQUEST)
        with pytest.raises(RetryableError):
            await adapter(base_url, http).fetch("123")

    assert not_connected.value.code == "connect_failed"


def answering(status: int, content: bytes) -> httpx.AsyncClient:
    """A client whose every request gets this answer (the upstream misbehaving)."""
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(status, content=content))
    )


@pytest.mark.parametrize(
    ("status", "content", "kind"),
    [
        (200, b"<html>ok</html>", AmbiguousError),
        (200, b'{"code": 0, "data": {"task_status": "submitted"}}', AmbiguousError),
        (502, b"<html>bad gateway</html>", RetryableError),
        (500, b"", AmbiguousError),
        (404, b"", PermanentError),
    ],
)
async def test_odd_create_answers(status: int, content: bytes, kind: type[ProviderError]) -> None:
    async with answering(status, content) as http:
        with pytest.raises(ProviderError) as caught:
            await adapter("http://kling.example", http).submit(REQUEST)

    assert type(caught.value) is kind


# --- fetch error translation ---------------------------------------------------------


async def test_fetch_unknown_task_is_not_found(kling: KlingProvider) -> None:
    with pytest.raises(PermanentError) as caught:
        await kling.fetch("999999999999999999")

    assert (caught.value.status_code, caught.value.code) == (404, "task_not_found")


@pytest.mark.parametrize(
    ("status", "code", "check"),
    [
        (404, 1203, lambda e: type(e) is PermanentError and e.code == "task_not_found"),
        (429, 1302, lambda e: isinstance(e, RetryableError) and e.retry_after_s == 2.0),
        (429, 1102, lambda e: isinstance(e, RetryableError)),
        (500, 5000, lambda e: isinstance(e, RetryableError)),
        (503, 5001, lambda e: isinstance(e, RetryableError)),
        (504, 5002, lambda e: isinstance(e, RetryableError)),
        (200, 5000, lambda e: isinstance(e, RetryableError) and e.status_code == 500),
        (401, 1004, lambda e: type(e) is PermanentError and e.status_code == 401),
        (400, 1201, lambda e: type(e) is PermanentError and e.status_code == 400),
    ],
)
async def test_fetch_refusals(
    kling_sim: RunningSimulator,
    kling: KlingProvider,
    status: int,
    code: int,
    check: Callable[[ProviderError], bool],
) -> None:
    submitted = await kling.submit(REQUEST)
    rule = {"status": status, "code": code, "retry_after": 2, "count": 1}
    await set_faults(kling_sim, {"query": rule})

    with pytest.raises(ProviderError) as caught:
        await kling.fetch(submitted.task_id)

    assert check(caught.value), repr(caught.value)
    assert (await kling.fetch(submitted.task_id)).task_id == submitted.task_id


async def test_fetch_timeout_is_retryable(
    kling_sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    provider = adapter(kling_sim.base_url, http, query_timeout_s=0.3)
    submitted = await provider.submit(REQUEST)
    await set_faults(kling_sim, {"query": {"timeout": True, "count": 1}})

    with pytest.raises(RetryableError):
        await provider.fetch(submitted.task_id)


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
