"""Media given by URL is fetched over loopback and checked before a job is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Response

from tests.conftest import StackFactory
from tests.support.gateway import Gateway
from tests.support.media import make_mp4, make_png
from tests.support.payloads import job_body
from tests.support.servers import start_server


@pytest.fixture(scope="module")
async def media_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A plain web server holding a few files, as a client's CDN would."""
    folder = tmp_path_factory.mktemp("site")
    make_png(folder / "ok.png", 400, 600)
    make_png(folder / "tiny.png", 120, 120)
    make_mp4(folder / "ok.mp4", 340, 340, 4.0, fps=5)
    make_mp4(folder / "long.mp4", 340, 340, 12.0, fps=5)
    (folder / "page.png").write_text("<html>not an image</html>")
    app = FastAPI()

    @app.get("/{name}")
    async def serve(name: str) -> Response:
        """One file, or 404."""
        path = folder / Path(name).name
        if not path.exists():
            return Response(status_code=404)
        return Response(path.read_bytes(), media_type="application/octet-stream")

    server = await start_server(app)
    yield server.base_url
    await server.stop()


CASES = [
    ("tiny.png", "ok.mp4", "image", 422, "image_too_small"),
    ("page.png", "ok.mp4", "image", 422, "image_format_unsupported"),
    ("ok.png", "long.mp4", "image", 422, "video_too_long"),
    ("ok.png", "long.mp4", "video", 202, None),
    ("ok.png", "ok.mp4", "image", 202, None),
    ("missing.png", "ok.mp4", "image", 202, None),  # best effort: the provider will judge it
]


@pytest.mark.parametrize(("image", "video", "orientation", "status", "code"), CASES)
async def test_url_media_is_checked_against_the_model_limits(
    module_gateway: Gateway,
    media_site: str,
    image: str,
    video: str,
    orientation: str,
    status: int,
    code: str | None,
) -> None:
    key = await module_gateway.new_client()
    body = job_body(
        image_url=f"{media_site}/{image}",
        video_url=f"{media_site}/{video}",
        model_params={"character_orientation": orientation},
    )
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/jobs", json=body)
        listed = (await http.get("/v1/jobs")).json()["data"]
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
        assert listed == []
    elif video == "ok.mp4" and image == "ok.png":
        # estimated from the probed 4 s, not the 10 s the orientation allows
        assert response.json()["cost"]["estimated"] == "0.4536"  # 4 s × $0.1134


async def test_strict_mode_refuses_what_it_cannot_fetch(
    make_stack: StackFactory, media_site: str
) -> None:
    async with make_stack(role="api", media_url_probe="strict") as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            body = job_body(image_url=f"{media_site}/missing.png", video_url=f"{media_site}/ok.mp4")
            response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "media_unreachable"
