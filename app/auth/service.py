"""API keys and client identities. Keys are shown once and stored only as SHA-256."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ids import new_id
from app.models import ApiKey, Client

KEY_PREFIX = "mgw_"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class IssuedKey:
    client_id: str
    api_key: str
    webhook_secret: str


async def create_client_with_key(
    session: AsyncSession, *, name: str, admin: bool = False, budget_usd: Decimal | None = None
) -> IssuedKey:
    client = Client(
        id=new_id("cli"),
        name=name,
        is_admin=admin,
        disabled=False,
        webhook_secret=new_webhook_secret(),
        monthly_budget_usd=budget_usd,
    )
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(client)
    await session.flush()
    session.add(
        ApiKey(
            id=new_id("key"), client_id=client.id, key_hash=hash_key(raw_key), prefix=raw_key[:10]
        )
    )
    await session.flush()
    return IssuedKey(client.id, raw_key, client.webhook_secret)


async def client_for_key(session: AsyncSession, raw_key: str) -> Client | None:
    """The enabled client owning an unrevoked key; the lookup is by hash, not by compare."""
    stmt = (
        select(Client)
        .join(ApiKey, ApiKey.client_id == Client.id)
        .where(ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None))
    )
    client = (await session.execute(stmt)).scalar_one_or_none()
    if client is None or client.disabled:
        return None
    return client
