"""All SQL about clients and their API keys. Nothing here commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiKey, Client


async def client_by_key_hash(session: AsyncSession, key_hash: str) -> Client | None:
    """The client owning an unrevoked key with this hash, disabled or not."""
    stmt = (
        select(Client)
        .join(ApiKey, ApiKey.client_id == Client.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_client(session: AsyncSession, client_id: str) -> Client | None:
    """Row lock for a settings change, so two operators' edits apply one after the other."""
    return await session.get(Client, client_id, with_for_update=True)
