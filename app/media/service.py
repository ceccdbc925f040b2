"""Uploads: stream to storage under the size limit, probe, check the model's limits, record."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.clock import utcnow
from app.errors import Unprocessable
from app.ids import new_id
from app.media import repository as repo
from app.media.context import MediaContext
from app.media.errors import MediaRejected, MediaTooLarge
from app.media.limits import MediaLimits
from app.media.multipart import FileField
from app.media.probe import ImageInfo, MediaInfo, aprobe_media, check_media
from app.models import Upload
from app.settings import Settings
from app.storage import ObjectStore, ObjectTooLarge, StoredObject, new_key

SPOOL_BATCH_BYTES: Final = 1024 * 1024

LIMITS = MediaLimits()


class UploadNotUsable(Unprocessable):
    code = "upload_not_found"


@dataclass(frozen=True)
class ResolvedMedia:
    url: str
    duration_s: float | None


async def create_upload(
    session: AsyncSession,
    settings: Settings,
    media: MediaContext,
    principal: Principal,
    request: Request,
) -> Upload:
    form = FileField(request.stream(), request.headers.get("content-type"))
    upload_id = new_id("upl")
    key = new_key(None, prefix=upload_id)
    max_bytes = settings.upload_max_bytes or LIMITS.upload_max_bytes
    stored, info = await _store_and_probe(media.storage, key, form.chunks(), max_bytes)
    now = utcnow()
    upload = Upload(
        id=upload_id,
        client_id=principal.client_id,
        kind=info.kind,
        content_type=info.content_type,
        size_bytes=stored.size_bytes,
        width=info.width,
        height=info.height,
        duration_s=None if isinstance(info, ImageInfo) else info.duration_s,
        storage_key=key,
        filename=form.filename,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.upload_ttl_s),
    )
    session.add(upload)
    await session.flush()
    return upload


async def _store_and_probe(
    storage: ObjectStore, key: str, chunks: AsyncIterator[bytes], max_bytes: int
) -> tuple[StoredObject, MediaInfo]:
    """Where the store keeps files on this disk, write in place and probe the file; else
    spool to a temporary file (the probes need one), probe it, and only then put it."""
    local = storage.local_path(key)
    if local is not None:
        stored = await _put(storage, key, chunks, max_bytes, "application/octet-stream")
        try:
            info = await aprobe_media(local)
            check_media(info, LIMITS)  # orientation is the job's: its 10 s cap is checked at create
        except MediaRejected:
            await storage.delete(key)
            raise
        return stored, info
    async with spooled(chunks, max_bytes) as path:
        info = await aprobe_media(path)
        check_media(info, LIMITS)
        stored = await _put(storage, key, file_chunks(path), max_bytes, info.content_type)
    return stored, info


async def _put(
    storage: ObjectStore,
    key: str,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
    content_type: str,
) -> StoredObject:
    try:
        return await storage.put_stream(key, chunks, max_bytes=max_bytes, content_type=content_type)
    except ObjectTooLarge as exc:
        raise MediaTooLarge(exc.max_bytes) from exc


@contextlib.asynccontextmanager
async def spooled(chunks: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[Path]:
    """`chunks` written to a temporary file under the size limit; removed afterwards."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="mgw-spool-"))
    try:
        path = folder / "file"
        fh = await asyncio.to_thread(path.open, "wb")
        try:
            await write_chunks(fh, chunks, max_bytes)
        finally:
            await asyncio.to_thread(fh.close)
        yield path
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))


async def write_chunks(fh: BinaryIO, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
    size, batch = 0, bytearray()
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLarge(max_bytes)
        batch += chunk
        if len(batch) >= SPOOL_BATCH_BYTES:
            await asyncio.to_thread(fh.write, bytes(batch))
            batch.clear()
    if batch:
        await asyncio.to_thread(fh.write, bytes(batch))
    return size


async def file_chunks(path: Path, chunk_bytes: int = SPOOL_BATCH_BYTES) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while data := await asyncio.to_thread(fh.read, chunk_bytes):
            yield data
    finally:
        fh.close()


async def resolve_upload(
    session: AsyncSession,
    media: MediaContext,
    client_id: str,
    upload_id: str,
    kind: str,
    orientation: str,
    now: datetime,
) -> ResolvedMedia:
    """The signed URL the provider fetches; the video's length is checked for this job."""
    upload = await repo.get_upload(session, upload_id, client_id)
    loc: list[str | int] = ["body", f"{kind}_upload_id"]
    if upload is None or upload.expires_at <= now:
        raise UploadNotUsable(f"no usable upload {upload_id}", loc=loc)
    if upload.kind != kind:
        raise UploadNotUsable(
            f"upload {upload_id} is a {upload.kind}, not a {kind}",
            loc=loc,
            code=f"upload_not_{kind}",
        )
    if kind == "video" and upload.duration_s is not None:
        cap = LIMITS.video_max_duration_s(orientation)
        if upload.duration_s > cap:
            raise MediaRejected(
                "video_too_long",
                f"the video lasts {upload.duration_s:.2f} s; "
                f"orientation '{orientation}' allows {cap:g} s",
                limit=cap,
            )
    return ResolvedMedia(media.signed_url(upload.storage_key, upload.expires_at), upload.duration_s)
