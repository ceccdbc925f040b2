"""No long-lived client can wedge: a peer that vanishes or hangs mid-request leaves every
later request to a healthy peer flowing through the same client, even when the hanging
ones hold every connection slot (the pool is then rebuilt, and the request retried)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from app.net import UrlPolicy, make_safe_client, make_upstream_client
from app.net.transport import RecoveringTransport
from tests.support.receiver import Receiver, running_subscriber

LOOPBACK = UrlPolicy.for_environment("test")
FEW = httpx.Limits(max_connections=2, max_keepalive_connections=2)


@contextlib.asynccontextmanager
async def raw_peer(mode: str) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A raw TCP peer that accepts, reads the request head, then closes ("close") or keeps
    the socket open and never answers ("hang")."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
        if mode == "close":
            writer.transport.abort()  # gone mid-request: no answer, a reset
        else:
            held.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", held
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


def clients() -> list[httpx.AsyncClient]:
    return [
        make_safe_client(LOOPBACK, timeout_s=30.0, user_agent="t", limits=FEW, pool_timeout_s=0.2),
        make_upstream_client(
            timeout_s=30.0, connect_s=1.0, user_agent="t", limits=FEW, pool_timeout_s=0.2
        ),
    ]


@pytest.fixture
async def healthy() -> AsyncIterator[Receiver]:
    async with running_subscriber() as sub:
        yield sub


@pytest.mark.parametrize("which", ["webhook/media (safe)", "upstream"])
async def test_a_vanished_and_a_hanging_peer_do_not_wedge_the_client(
    healthy: Receiver, which: str
) -> None:
    client = clients()[0 if which.startswith("webhook") else 1]
    async with client, raw_peer("close") as (gone, _), raw_peer("hang") as (hung, held):
        with pytest.raises(httpx.TransportError):
            await client.post(gone, content=b"{}")
        assert (await client.post(healthy.url, content=b"{}")).status_code == 200

        # Every slot held by requests that will never be answered: the pool is stuck.
        stuck = [asyncio.ensure_future(client.post(hung, content=b"{}")) for _ in range(2)]
        async with asyncio.timeout(10):
            while len(held) < 2:  # both slots taken, both requests with the peer
                await asyncio.sleep(0.01)
        answers = [await client.post(healthy.url, content=b"{}") for _ in range(3)]
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        after = await client.post(healthy.url, content=b"{}")

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert after.status_code == 200
    transport = client._transport  # which recovery happened is the point
    assert isinstance(transport, RecoveringTransport)
    assert transport.resets >= 1
