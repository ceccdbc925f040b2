"""Media queries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Upload


async def get_upload(session: AsyncSession, upload_id: str, client_id: str) -> Upload | None:
    """The client's own upload; another client's is as absent as a missing one."""
    stmt = select(Upload).where(Upload.id == upload_id, Upload.client_id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def expired_uploads(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[str, str]]:
    """(upload id, storage key) of uploads past their lifetime."""
    stmt = (
        select(Upload.id, Upload.storage_key)
        .where(Upload.expires_at <= now)
        .order_by(Upload.expires_at)
        .limit(limit)
    )
    return [(upload_id, key) for upload_id, key in (await session.execute(stmt)).all()]


async def delete_uploads(session: AsyncSession, upload_ids: list[str]) -> None:
    if upload_ids:
        await session.execute(delete(Upload).where(Upload.id.in_(upload_ids)))
