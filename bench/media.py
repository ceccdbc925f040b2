"""Real input media on a loopback server, so the gateway's URL probe never leaves the host.

The gateway fetches and probes `image_url` / `video_url` on create (`media_url_probe`,
default `best_effort`); pointing it at an external host would put DNS and the internet
into the measured latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

from tests.support.media import make_mp4, make_png
from tests.support.servers import start_server

IMAGE_SIZE = (512, 768)
VIDEO_SIZE = (640, 360)
VIDEO_SECONDS = 5.0


@dataclass(frozen=True)
class Media:
    image_url: str
    video_url: str
    image_bytes: int
    video_bytes: int

    def job_body(self, prompt: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "image_url": self.image_url,
            "video_url": self.video_url,
            "quality": "720p",
            "model_params": {"character_orientation": "image"},
        }
        if prompt is not None:
            body["prompt"] = prompt
        return body


def _render(folder: Path) -> tuple[bytes, bytes]:
    image = make_png(folder / "character.png", *IMAGE_SIZE)
    video = make_mp4(folder / "motion.mp4", *VIDEO_SIZE, VIDEO_SECONDS)
    return image.read_bytes(), video.read_bytes()


@contextlib.asynccontextmanager
async def running_media() -> AsyncIterator[Media]:
    with tempfile.TemporaryDirectory(prefix="mgw-bench-media-") as folder:
        png, mp4 = await asyncio.to_thread(_render, Path(folder))
    app = FastAPI()

    @app.get("/character.png")
    async def image() -> Response:
        """The character image."""
        return Response(content=png, media_type="image/png")

    @app.get("/motion.mp4")
    async def video() -> Response:
        """The motion reference video."""
        return Response(content=mp4, media_type="video/mp4")

    server = await start_server(app, "127.0.0.1", 0)
    try:
        yield Media(
            f"{server.base_url}/character.png", f"{server.base_url}/motion.mp4", len(png), len(mp4)
        )
    finally:
        await server.stop()
