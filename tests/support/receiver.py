"""A real subscriber over loopback HTTP(S): records raw bodies and answers as scripted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response

from tests.support.servers import start_server


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: datetime
    monotonic: float


@dataclass
class Receiver:
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            """Record the delivery, then answer the next scripted answer."""
            body = await request.body()
            async with self._arrived:
                index = len(self.received)
                self.received.append(
                    Received(body, dict(request.headers), datetime.now(UTC), time.monotonic())
                )
                self._arrived.notify_all()
            answer = self.script[index] if index < len(self.script) else self.default
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
            return Response(status_code=answer.status, headers=answer.headers, content=b"ok")

        return app

    async def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Received]:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received


@contextlib.asynccontextmanager
async def running_subscriber(
    script: list[Answer] | None = None,
    default: Answer | None = None,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> AsyncIterator[Receiver]:
    receiver = Receiver(script=script or [], default=default or Answer())
    server = await start_server(
        receiver.app(), "127.0.0.1", 0, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
    )
    receiver.url = f"{server.base_url}/hook"
    try:
        yield receiver
    finally:
        server.server.force_exit = True
        await server.stop()
