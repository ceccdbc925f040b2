"""A loopback stand-in for an upstream's result host: serves one body at every
`/results/{id}.mp4`, optionally slowly, and counts what it sent. Point the simulator's
`public_base_url` at it and every task's result link lands here."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

from app.simulator.media import render_result_mp4
from tests.support.servers import start_server

CHUNK_BYTES = 256 * 1024


def padded_mp4(duration_s: float, total_bytes: int) -> Callable[[Path], None]:
    """A writer of a real, probe-able MP4 grown to `total_bytes` by a top-level `free` box
    (which every parser skips), written to disk without holding it in memory."""

    def write(path: Path) -> None:
        video = render_result_mp4(duration_s)
        pad = total_bytes - len(video)
        if pad < 16:
            raise ValueError("total_bytes must exceed the clip by at least 16 bytes")
        with path.open("wb") as fh:
            fh.write(video)
            fh.write(struct.pack(">I", 1) + b"free" + struct.pack(">Q", pad))
            zeros = bytes(CHUNK_BYTES)
            remaining = pad - 16
            while remaining > 0:
                fh.write(zeros[: min(CHUNK_BYTES, remaining)])
                remaining -= CHUNK_BYTES

    return write


@dataclass
class ResultHost:
    path: Path
    delay_per_chunk_s: float = 0.0
    base_url: str = ""
    sent_bytes: int = 0
    requests: int = 0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)
    progress_mark: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/results/{name}")
        async def result(name: str) -> Response:
            self.requests += 1
            size = self.path.stat().st_size
            return StreamingResponse(
                self._body(),
                media_type="video/mp4",
                headers={"Content-Length": str(size)},
            )

        return app

    async def _body(self) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, CHUNK_BYTES):
                if self.delay_per_chunk_s:
                    await asyncio.sleep(self.delay_per_chunk_s)
                yield chunk
                self.sent_bytes += len(chunk)
                if self.progress_mark and self.sent_bytes >= self.progress_mark:
                    self.progressed.set()
        finally:
            fh.close()


@contextlib.asynccontextmanager
async def running_result_host(
    path: Path, *, delay_per_chunk_s: float = 0.0
) -> AsyncIterator[ResultHost]:
    host = ResultHost(path, delay_per_chunk_s)
    server = await start_server(host.app(), "127.0.0.1", 0)
    host.base_url = server.base_url
    try:
        yield host
    finally:
        server.server.force_exit = True
        await server.stop()
