"""The request-head cap, on both HTTP parsers uvicorn can use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.serving import HTTP_PROTOCOL, MAX_HEADER_BYTES, LimitedH11Protocol, server_config


@contextlib.asynccontextmanager
async def serving(protocol: type[Any]) -> AsyncIterator[int]:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app, http=protocol, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def exchange(port: int, head: bytes, filler: int = 0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        with contextlib.suppress(ConnectionError):
            for _ in range(filler // 4096):
                writer.write(b"a" * 4096)
                await writer.drain()
            writer.write(b"\r\n\r\n")
            await writer.drain()
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("protocol", [HTTP_PROTOCOL, LimitedH11Protocol])
async def test_a_head_over_the_limit_is_431_problem_json(protocol: type[Any]) -> None:
    async with serving(protocol) as port:
        raw = await exchange(
            port, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ", 2 * MAX_HEADER_BYTES
        )
        fine = await exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), raw[:200]
    assert b"content-type: application/problem+json" in head
    assert json.loads(body)["code"] == "request_header_fields_too_large"
    assert fine.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("protocol", [HTTP_PROTOCOL, LimitedH11Protocol])
async def test_a_long_url_counts_too(protocol: type[Any]) -> None:
    async with serving(protocol) as port:
        raw = await exchange(port, b"GET /ping?q=", 2 * MAX_HEADER_BYTES)
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:200]
