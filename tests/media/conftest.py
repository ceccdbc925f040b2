"""Fixtures for the media tests: a real LocalStorage and the real router over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.media.errors import MediaError
from app.media.router import MediaContext, media_error_handler, router
from app.media.storage import LocalStorage
from tests.media.helpers import BASE_URL, SIGNING_SECRET


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def media_context(storage: LocalStorage) -> MediaContext:
    return MediaContext(storage=storage, signing_secret=SIGNING_SECRET, public_base_url=BASE_URL)


@pytest.fixture
def media_app(media_context: MediaContext) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.add_exception_handler(MediaError, media_error_handler)
    app.state.media = media_context
    return app


@pytest.fixture
async def client(media_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=media_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
