"""API keys and client identities. Keys are shown once and stored only as SHA-256."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as repo
from app.auth.errors import ClientNotFound
from app.auth.schemas import ClientOut, ClientUpdate
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
    client = await repo.client_by_key_hash(session, hash_key(raw_key))
    if client is None or client.disabled:
        return None
    return client


async def update_client(session: AsyncSession, client_id: str, changes: ClientUpdate) -> Client:
    """Apply an operator's change under the client's row lock; fields not given stay.
    A budget given together with `clear_budget` ends up cleared."""
    client = await repo.lock_client(session, client_id)
    if client is None:
        raise ClientNotFound(client_id)
    if changes.name is not None:
        client.name = changes.name
    if changes.monthly_budget_usd is not None:
        client.monthly_budget_usd = changes.monthly_budget_usd
    if changes.clear_budget:
        client.monthly_budget_usd = None
    if changes.disabled is not None:
        client.disabled = changes.disabled
    await session.flush()
    return client


def client_out(client: Client) -> ClientOut:
    budget = client.monthly_budget_usd
    return ClientOut(
        id=client.id,
        name=client.name,
        is_admin=client.is_admin,
        disabled=client.disabled,
        monthly_budget_usd=budget,
    )
