"""Probe media given by URL before any money is spent.

`best_effort` (the default): when the file can be fetched, it must pass the model's limits
(422 otherwise); when it cannot (no route, 404, refused by the URL policy, too slow) the
job goes ahead and the provider judges it. `strict`: a file that cannot be fetched is a
422 too. `off`: URLs are not fetched at all.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import httpx

from app.errors import Unprocessable
from app.media.errors import MediaRejected
from app.media.limits import MediaLimits
from app.media.probe import (
    ImageInfo,
    MediaInfo,
    VideoInfo,
    aprobe_image,
    aprobe_video,
    check_image,
    check_video,
)
from app.net import UrlRejected

log = logging.getLogger(__name__)

ProbeMode = Literal["off", "best_effort", "strict"]
WRITE_BATCH_BYTES = 1 << 20
CONNECT_BUDGET_S = 2.0


class MediaUnreachable(Unprocessable):
    code = "media_unreachable"


async def _download(
    client: httpx.AsyncClient, url: str, dest: Path, max_bytes: int, kind: str, timeout_s: float
) -> None:
    # A short budget to resolve and connect: a host that cannot be reached quickly is left
    # to the provider rather than holding up the create.
    timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_BUDGET_S, timeout_s))
    async with client.stream("GET", url, timeout=timeout) as response:
        if response.status_code != 200:
            raise MediaUnreachable(f"{kind} URL answered HTTP {response.status_code}")
        declared = int(response.headers.get("content-length") or 0)
        if declared > max_bytes:
            raise MediaRejected(
                f"{kind}_too_large", f"the {kind} is {declared} bytes", limit=max_bytes
            )
        size, batch = 0, bytearray()
        fh = await asyncio.to_thread(dest.open, "wb")
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise MediaRejected(
                        f"{kind}_too_large",
                        f"the {kind} is over {max_bytes} bytes",
                        limit=max_bytes,
                    )
                batch += chunk
                if len(batch) >= WRITE_BATCH_BYTES:
                    await asyncio.to_thread(fh.write, bytes(batch))
                    batch.clear()
            await asyncio.to_thread(fh.write, bytes(batch))
        finally:
            await asyncio.to_thread(fh.close)


async def probe_url(
    client: httpx.AsyncClient,
    url: str,
    kind: Literal["image", "video"],
    orientation: str,
    limits: MediaLimits,
    mode: ProbeMode,
    timeout_s: float,
) -> MediaInfo | None:
    """The probed file's info, None when it was not (or could not be) probed.
    `timeout_s` bounds the whole fetch and probe, not each read."""
    if mode == "off":
        return None
    max_bytes = limits.image_max_bytes if kind == "image" else limits.video_max_bytes
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="mgw-probe-"))
    try:
        async with asyncio.timeout(timeout_s):
            await _download(client, url, folder / kind, max_bytes, kind, timeout_s)
            info: ImageInfo | VideoInfo = await (
                aprobe_image(folder / kind) if kind == "image" else aprobe_video(folder / kind)
            )
    except (httpx.HTTPError, httpx.InvalidURL, UrlRejected, MediaUnreachable, TimeoutError) as exc:
        # How the fetch failed (refused, resolved to, TLS, timed out) stays in the log: told
        # to the client it would make the gateway a scanner of what it can reach.
        log.info("%s URL %r not probed (%r)", kind, url, exc)
        if mode == "strict":
            raise MediaUnreachable(
                f"could not fetch the {kind} to check it", loc=["body", f"{kind}_url"]
            ) from exc
        return None
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    if isinstance(info, ImageInfo):
        check_image(info, limits)
    else:
        check_video(info, limits, orientation)
    return info
