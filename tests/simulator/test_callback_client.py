"""The callback client survives receivers that vanish or hang mid-request.

httpcore's pool once failed every later callback with PoolTimeout for 30+ minutes after
a peer went away mid-request; the sender must rebuild its client rather than wedge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.support.simulator import running_receiver, running_simulator, sample_create_body

from .helpers import client_for, fast_config


@contextlib.asynccontextmanager
async def raw_receiver(*, hang_up: bool) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A TCP server that takes the first bytes of a request, then hangs up or just hangs.

    Yields its callback URL and an event set once a request has started arriving.
    """
    started = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(1)
        started.set()
        if hang_up:
            writer.transport.abort()
        else:
            await reader.read()  # never answers; returns once the client goes away

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/callback", started
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def create(http: httpx.AsyncClient, callback_url: str) -> str:
    response = await http.post(
        "/v1/videos/generations", json=sample_create_body(callback_url=callback_url)
    )
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


async def callback_log(http: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = (await http.get(f"/_sim/tasks/{task_id}")).json()["callback_log"]
    return log


async def test_callbacks_flow_after_receivers_die_or_hang_mid_request() -> None:
    # One connection, held by a receiver that never answers for far longer (30 s) than
    # the healthy callback's retries last: only a rebuilt client can deliver it.
    config = fast_config(
        callback_max_connections=1,
        callback_pool_timeout_s=0.2,
        callback_timeout_s=30.0,
        callback_retry_delays_s=(0.05,) * 10,
    )
    async with (
        running_simulator(config) as running,
        client_for(running) as http,
        raw_receiver(hang_up=False) as (hanging_url, hanging_started),
        raw_receiver(hang_up=True) as (vanishing_url, _),
        running_receiver() as healthy,
    ):
        await create(http, hanging_url)
        await asyncio.wait_for(hanging_started.wait(), timeout=10)
        vanished = await create(http, vanishing_url)
        delivered = await create(http, healthy.url)

        (callback,) = await healthy.wait_for(1)
        logs = await callback_log(http, vanished) + await callback_log(http, delivered)

    assert callback.body["id"] == delivered
    assert any("PoolTimeout" in (attempt["error"] or "") for attempt in logs)


async def test_an_attempt_in_flight_is_not_logged_yet() -> None:
    # A half-written attempt (no status, no error) would read as neither success nor failure.
    async with (
        running_simulator(fast_config(callback_timeout_s=30.0)) as running,
        client_for(running) as http,
        raw_receiver(hang_up=False) as (hanging_url, started),
    ):
        task_id = await create(http, hanging_url)
        await asyncio.wait_for(started.wait(), timeout=10)
        summary = (await http.get(f"/_sim/tasks/{task_id}")).json()

    assert (summary["callback_attempts"], summary["callback_log"]) == (0, [])
