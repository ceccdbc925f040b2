"""Media errors leave through the app's one problem+json handler, in the shape they always had."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.errors import DomainError, install_error_handlers
from app.media.errors import MediaError, MediaRejected, MediaTooLarge, RangeNotSatisfiable

TOO_LONG = "the video lasts 12.00 s; orientation 'image' allows 10 s"


async def raised_through_the_app(error: MediaError) -> httpx.Response:
    """GET a route that raises `error` in an app wired like `create_app`'s error handling."""
    app = FastAPI()
    install_error_handlers(app)

    async def fail() -> None:
        raise error

    app.add_api_route("/fail", fail)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get("/fail")


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            MediaRejected("video_too_long", TOO_LONG, limit=10.0),
            422,
            {
                "type": "https://motion-gateway.dev/problems/video-too-long",
                "title": "Media rejected",
                "status": 422,
                "detail": TOO_LONG,
                "code": "video_too_long",
                "limit": 10.0,
                "errors": [{"loc": ["body", "file"], "msg": TOO_LONG}],
            },
        ),
        (
            MediaTooLarge(5000),
            413,
            {
                "type": "https://motion-gateway.dev/problems/upload-too-large",
                "title": "Upload too large",
                "status": 413,
                "detail": "the upload is larger than 5000 bytes",
                "code": "upload_too_large",
                "limit": 5000,
            },
        ),
        (
            RangeNotSatisfiable(1000),
            416,
            {
                "type": "https://motion-gateway.dev/problems/range-not-satisfiable",
                "title": "Range not satisfiable",
                "status": 416,
                "detail": "the requested range is outside the file's 1000 bytes",
                "code": "range_not_satisfiable",
            },
        ),
    ],
)
async def test_a_media_error_renders_as_the_same_problem(
    error: MediaError, status: int, body: dict[str, Any]
) -> None:
    response = await raised_through_the_app(error)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == body
    assert list(response.json()) == list(body)  # the field order is part of the shape


async def test_a_416_still_names_the_length() -> None:
    response = await raised_through_the_app(RangeNotSatisfiable(1000))

    assert response.headers["content-range"] == "bytes */1000"


def test_media_errors_are_domain_errors() -> None:
    assert issubclass(MediaError, DomainError)
    assert MediaRejected("video_too_long", TOO_LONG).code == "video_too_long"
