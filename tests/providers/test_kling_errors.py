"""The official Kling adapter's translation of failures, against the simulator's Kling wire.

Every refusal is checked by HTTP status and by envelope `code`, including HTTP 200 with
a non-zero code; the create's split into retryable / permanent (job- or provider-side)
/ ambiguous is what failover and the at-most-once rule rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.providers.base import (
    AmbiguousError,
    PermanentError,
    ProviderError,
    RetryableError,
    SubmitRequest,
)
from app.providers.kling import KlingProvider
from tests.support.simulator import (
    RunningSimulator,
    admin_tasks,
    fast_kling_config,
    install_faults,
    running_simulator,
)

KLING_FAST = fast_kling_config()
REQUEST = SubmitRequest(
    job_id="job-0001",
    image_url="https://media.example.com/character.png",
    video_url="https://media.example.com/motion.mp4",
    quality="720p",
    character_orientation="image",
)


@pytest.fixture
async def kling_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(KLING_FAST) as running:
        yield running


def adapter(base_url: str, http: httpx.AsyncClient, **kwargs: Any) -> KlingProvider:
    options: dict[str, Any] = {"timeout_s": 2.0, **kwargs}
    access_key, secret_key = KLING_FAST.kling_access_key, KLING_FAST.kling_secret_key
    return KlingProvider("kling", base_url, access_key, secret_key, http, **options)


@pytest.fixture
def kling(kling_sim: RunningSimulator, http: httpx.AsyncClient) -> KlingProvider:
    return adapter(kling_sim.base_url, http)


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
    await install_faults(kling_sim, {"create": rule})

    with pytest.raises(ProviderError) as caught:
        await kling.submit(REQUEST)

    assert type(caught.value) is kind
    assert (caught.value.status_code, caught.value.code) == (expected_status, name)
    if isinstance(caught.value, RetryableError):
        assert caught.value.retry_after_s == 2.0
    assert await admin_tasks(kling_sim) == []


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
    assert [task["id"] for task in await admin_tasks(kling_sim)] == [first.task_id]


async def test_a_500_after_creating_is_ambiguous_and_the_task_exists(
    kling_sim: RunningSimulator, kling: KlingProvider
) -> None:
    await install_faults(kling_sim, {"create": {"status": 500, "create_anyway": True, "count": 1}})

    with pytest.raises(AmbiguousError) as caught:
        await kling.submit(REQUEST)

    assert caught.value.status_code == 500
    assert [task["external_task_id"] for task in await admin_tasks(kling_sim)] == [REQUEST.job_id]


async def test_create_timeout_is_ambiguous(
    kling_sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await install_faults(kling_sim, {"create": {"timeout": True, "count": 1}})

    with pytest.raises(AmbiguousError):
        await adapter(kling_sim.base_url, http, timeout_s=0.3).submit(REQUEST)

    assert len(await admin_tasks(kling_sim)) == 1


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
    await install_faults(kling_sim, {"query": rule})

    with pytest.raises(ProviderError) as caught:
        await kling.fetch(submitted.task_id)

    assert check(caught.value), repr(caught.value)
    assert (await kling.fetch(submitted.task_id)).task_id == submitted.task_id


async def test_fetch_timeout_is_retryable(
    kling_sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    provider = adapter(kling_sim.base_url, http, query_timeout_s=0.3)
    submitted = await provider.submit(REQUEST)
    await install_faults(kling_sim, {"query": {"timeout": True, "count": 1}})

    with pytest.raises(RetryableError):
        await provider.fetch(submitted.task_id)
