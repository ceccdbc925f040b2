"""Request identity: `Authorization: Bearer <key>` → the calling client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.principal import Principal
from app.auth.service import client_for_key
from app.db.engine import transaction
from app.errors import Forbidden, Unauthorized
from app.runtime import RuntimeDep

_bearer = HTTPBearer(auto_error=False, description="An API key `mgw_…`")


async def current_principal(
    request: Request,
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The key's client, looked up in a short transaction of its own: the handler's session
    is not touched, so a handler that does network I/O first (a media probe, a streamed
    upload) holds no connection while it does."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer API key", code="missing_api_key")
    async with transaction(rt.session_factory) as session:
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
