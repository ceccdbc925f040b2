"""Probe media given by URL before any money is spent.

A definite answer is a 422 in every mode but `off`: a URL the policy refuses or that
cannot be parsed, a 4xx from the media host, a file that breaks the model's limits. The
provider would refuse those too, after we paid for the attempt. Only a transient failure
(a timeout, a refused or reset connection, a 5xx, 408 or 429) is judged by the mode:
`best_effort` (the default) lets the job go ahead and the provider judge the file;
`strict` answers 422. `off`: URLs are not fetched at all.
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


class MediaRefused(Unprocessable):
    """The media host answered, and its answer was no: definite, in every mode."""

    code = "media_url_refused"


# A 4xx that says "try again later", not "there is no such file for you".
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def _definite(status_code: int) -> bool:
    return 400 <= status_code < 500 and status_code not in TRANSIENT_STATUSES


async def _download(
    client: httpx.AsyncClient, url: str, dest: Path, max_bytes: int, kind: str, timeout_s: float
) -> None:
    # A short budget to resolve and connect: a host that cannot be reached quickly is left
    # to the provider rather than holding up the create.
    timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_BUDGET_S, timeout_s))
    async with client.stream("GET", url, timeout=timeout) as response:
        if _definite(response.status_code):
            raise MediaRefused(
                f"the {kind} URL answered HTTP {response.status_code}",
                loc=["body", f"{kind}_url"],
                http_status=response.status_code,
            )
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
    except (UrlRejected, httpx.InvalidURL) as exc:
        if isinstance(exc, UrlRejected) and exc.code == "url_unresolvable":
            # A name that does not resolve now may tomorrow (DNS is slow or down): transient.
            _not_probed(kind, url, exc, mode)
            return None
        # Definite: no provider could fetch it either. Which rule refused it (what a name
        # resolved to) stays in the log, or the gateway would be a scanner's oracle.
        log.info("%s URL %r refused before fetching (%r)", kind, url, exc)
        raise MediaRefused(
            f"the {kind} URL is not one the gateway or a provider may fetch",
            loc=["body", f"{kind}_url"],
        ) from exc
    except (httpx.HTTPError, MediaUnreachable, TimeoutError) as exc:
        _not_probed(kind, url, exc, mode)
        return None
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    if isinstance(info, ImageInfo):
        check_image(info, limits)
    else:
        check_video(info, limits, orientation)
    return info


def _not_probed(kind: str, url: str, exc: Exception, mode: ProbeMode) -> None:
    """A transient failure: `strict` refuses the job, `best_effort` lets the provider judge.
    How the fetch failed (refused, TLS, timed out) stays in the log, as above."""
    log.info("%s URL %r not probed (%r)", kind, url, exc)
    if mode == "strict":
        raise MediaUnreachable(
            f"could not fetch the {kind} to check it", loc=["body", f"{kind}_url"]
        ) from exc
