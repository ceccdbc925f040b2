"""Request identity: `Authorization: Bearer <key>` → the calling client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.principal import Principal
from app.auth.service import client_for_key
from app.db.session import DbSession
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An API key `mgw_…`")


async def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer API key", code="missing_api_key")
    client = await client_for_key(session, credentials.credentials)
    if client is None:
        raise Unauthorized("unknown, revoked or disabled API key", code="invalid_api_key")
    principal = Principal(client.id, client.is_admin, client.webhook_secret)
    request.state.principal = principal
    return principal


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this route needs the admin scope", code="admin_required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
