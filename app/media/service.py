"""Uploads: stream to storage under the size limit, probe, check the model's limits, record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.clock import utcnow
from app.errors import Unprocessable
from app.ids import new_id
from app.media import repository as repo
from app.media.context import MediaContext
from app.media.errors import MediaRejected
from app.media.limits import MediaLimits
from app.media.multipart import FileField
from app.media.probe import ImageInfo, aprobe_media, check_media
from app.media.storage import new_media_key
from app.models import Upload
from app.settings import Settings

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
    key = new_media_key(None, prefix=upload_id)
    max_bytes = settings.upload_max_bytes or LIMITS.upload_max_bytes
    size = await media.storage.save_stream(key, form.chunks(), max_bytes)
    try:
        info = await aprobe_media(media.storage.path_for(key))
        check_media(info, LIMITS)  # orientation is the job's: its 10 s cap is checked at create
    except MediaRejected:
        await media.storage.delete(key)
        raise
    now = utcnow()
    upload = Upload(
        id=upload_id,
        client_id=principal.client_id,
        kind=info.kind,
        content_type=info.content_type,
        size_bytes=size,
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
