"""Media queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Upload


async def get_upload(session: AsyncSession, upload_id: str, client_id: str) -> Upload | None:
    """The client's own upload; another client's is as absent as a missing one."""
    stmt = select(Upload).where(Upload.id == upload_id, Upload.client_id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()
