"""The callback client against receivers that vanish or hang mid-request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from tests.support.simulator import running_simulator, sample_create_body

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
