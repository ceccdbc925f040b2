"""What the lifespan builds and every boundary (request, worker step) reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import SessionFactory
from app.inbound.selfcheck import CallbackMode
from app.media.context import MediaContext
from app.net import UrlPolicy
from app.providers.registry import ProviderRegistry
from app.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    session_factory: SessionFactory
    registry: ProviderRegistry
    url_policy: UrlPolicy
    upstream_client: httpx.AsyncClient
    webhook_client: httpx.AsyncClient
    media_client: httpx.AsyncClient
    media: MediaContext
    callback: CallbackMode = field(default_factory=CallbackMode)

    @property
    def callbacks_enabled(self) -> bool:
        return self.callback.mode == "webhook"


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
