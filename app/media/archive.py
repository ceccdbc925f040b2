"""Copy a result video from the upstream's link into storage: streamed, capped, hashed.

The bytes go from the HTTP response to `ObjectStore.put_stream` chunk by chunk, never
whole in memory. The first bytes must be an MP4's `ftyp` box before anything is stored.
The archived file is then probed for its real duration: in place where the store keeps a
file on this disk, else from a temporary copy written on the way through (the probes
need a seekable file; an MP4's index may sit at its end).

Failures are `CopyFailed` with a stable `reason` and whether a later try may succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import urljoin

import httpx

from app.media.errors import MediaRejected
from app.media.probe import aprobe_video
from app.net import UrlRejected
from app.storage import ObjectStore, ObjectTooLarge, StoredObject

log = logging.getLogger(__name__)

MP4_HEAD_BYTES: Final = 12
MAX_REDIRECTS: Final = 3
SPOOL_BATCH_BYTES: Final = 1024 * 1024
# The upstream says the link is gone (expired, or a presigned link past its time).
GONE_STATUSES: Final = frozenset({403, 404, 410})
RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


class CopyFailed(Exception):
    """`reason` is stable snake_case (stored as the job's `archive_error`)."""

    def __init__(self, reason: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class Copied:
    stored: StoredObject
    duration_s: float | None  # None when the archived file could not be probed


def looks_like_mp4(head: bytes) -> bool:
    """An ISO base media file starts with a box whose type is `ftyp`."""
    return len(head) >= 8 and head[4:8] == b"ftyp"


async def copy_result(
    client: httpx.AsyncClient,
    storage: ObjectStore,
    url: str,
    key: str,
    *,
    max_bytes: int,
    read_timeout_s: float,
) -> Copied:
    """Stream `url` into `storage` under `key` (replacing any earlier copy there)."""
    timeout = httpx.Timeout(read_timeout_s, connect=min(10.0, read_timeout_s))
    try:
        async with _get(client, url, timeout) as response:
            _check_response(response, max_bytes)
            chunks = response.aiter_bytes()
            head = await _read_head(chunks)
            if not looks_like_mp4(head):
                raise CopyFailed(
                    "result_not_mp4",
                    "the result does not start with an MP4 ftyp box",
                    retryable=False,
                )
            body = _prepend(head, chunks)
            local = storage.local_path(key)
            if local is not None:
                stored = await _put(storage, key, body, max_bytes)
                return Copied(stored, await _probe_duration(local))
            async with _spool() as spool_path:
                stored = await _put(storage, key, _tee(body, spool_path), max_bytes)
                return Copied(stored, await _probe_duration(spool_path))
    except UrlRejected as exc:
        raise CopyFailed("result_url_refused", exc.reason, retryable=False) from exc
    except httpx.InvalidURL as exc:
        raise CopyFailed("result_url_invalid", str(exc), retryable=False) from exc
    except httpx.HTTPError as exc:
        raise CopyFailed("result_fetch_error", repr(exc), retryable=True) from exc


@contextlib.asynccontextmanager
async def _get(
    client: httpx.AsyncClient, url: str, http_timeout: httpx.Timeout
) -> AsyncIterator[httpx.Response]:
    """GET with up to `MAX_REDIRECTS` redirects, each hop vetted by the client's policy."""
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, timeout=http_timeout)
        response = await client.send(request, stream=True)
        location = response.headers.get("location")
        if response.status_code in REDIRECT_STATUSES and location:
            await response.aclose()
            url = urljoin(url, location)
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    raise CopyFailed("result_too_many_redirects", f"more than {MAX_REDIRECTS}", retryable=False)


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    status = response.status_code
    if status in GONE_STATUSES:
        raise CopyFailed("result_link_expired", f"the link answered HTTP {status}", retryable=False)
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise CopyFailed(f"result_http_{status}", "the link answered an error", retryable=True)
    if status != 200:
        raise CopyFailed(f"result_http_{status}", "the link answered no file", retryable=False)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise CopyFailed("result_too_large", f"{declared} bytes declared", retryable=False)


async def _read_head(chunks: AsyncIterator[bytes]) -> bytes:
    head = b""
    while len(head) < MP4_HEAD_BYTES:
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            break
    return head


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


async def _put(
    storage: ObjectStore, key: str, chunks: AsyncIterator[bytes], max_bytes: int
) -> StoredObject:
    try:
        return await storage.put_stream(key, chunks, max_bytes=max_bytes, content_type="video/mp4")
    except ObjectTooLarge as exc:
        raise CopyFailed("result_too_large", str(exc), retryable=False) from exc


@contextlib.asynccontextmanager
async def _spool() -> AsyncIterator[Path]:
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="mgw-archive-"))
    try:
        yield folder / "result.mp4"
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))


async def _tee(chunks: AsyncIterator[bytes], path: Path) -> AsyncIterator[bytes]:
    """Pass `chunks` on, writing a copy to `path` in batches (off the event loop)."""
    fh: BinaryIO = await asyncio.to_thread(path.open, "wb")
    batch = bytearray()
    try:
        async for chunk in chunks:
            batch += chunk
            if len(batch) >= SPOOL_BATCH_BYTES:
                await asyncio.to_thread(fh.write, bytes(batch))
                batch.clear()
            yield chunk
        await asyncio.to_thread(fh.write, bytes(batch))
    finally:
        fh.close()


async def _probe_duration(path: Path) -> float | None:
    try:
        return (await aprobe_video(path)).duration_s
    except (MediaRejected, OSError) as exc:
        log.warning("archived result could not be probed: %s", exc)
        return None
