"""Fixtures for the media tests: a real LocalObjectStore and the real router over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from app.errors import install_error_handlers
from app.media.context import MediaContext
from app.media.router import router
from app.runtime import get_runtime
from app.storage.local import LocalObjectStore
from tests.media.helpers import BASE_URL, SIGNING_SECRET


@pytest.fixture
def storage(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "media")


@pytest.fixture
def media_context(storage: LocalObjectStore) -> MediaContext:
    return MediaContext(storage=storage, signing_secret=SIGNING_SECRET, public_base_url=BASE_URL)


@pytest.fixture
def media_app(media_context: MediaContext) -> FastAPI:
    """The media router behind the app's own error handlers; the router reads only
    `runtime.media`, so the rest of a Runtime (a database, clients) is left out."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.dependency_overrides[get_runtime] = lambda: SimpleNamespace(media=media_context)
    return app


@pytest.fixture
async def client(media_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=media_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
