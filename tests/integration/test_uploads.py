"""Uploads over real multipart HTTP, probed with Pillow/PyAV, served by signed links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import StackFactory
from tests.support.gateway import Gateway
from tests.support.media import make_mp4, make_png
from tests.support.payloads import job_body


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    files = {
        "image": folder / "character.png",
        "small_image": folder / "tiny.png",
        "video": folder / "motion.mp4",
        "long_video": folder / "long.mp4",
    }
    make_png(files["image"], 400, 600)
    make_png(files["small_image"], 200, 200)
    make_mp4(files["video"], 340, 340, 4.0, fps=5)
    make_mp4(files["long_video"], 340, 340, 12.0, fps=5)
    return files


async def upload(http: httpx.AsyncClient, path: Path, name: str | None = None) -> httpx.Response:
    with path.open("rb") as fh:
        return await http.post("/v1/uploads", files={"file": (name or path.name, fh.read())})


@pytest.fixture
async def uploader(module_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    key = await module_gateway.new_client("uploader")
    async with module_gateway.http(key) as http:
        yield http


async def test_image_and_video_uploads_are_probed_and_served(
    uploader: httpx.AsyncClient, media_files: dict[str, Path]
) -> None:
    image = await upload(uploader, media_files["image"], name="not-really.mp4")
    video = await upload(uploader, media_files["video"])
    assert image.status_code == video.status_code == 201, (image.text, video.text)
    img, vid = image.json(), video.json()
    assert img["id"].startswith("upl_")
    assert (img["kind"], img["content_type"], img["width"], img["height"]) == (
        "image",
        "image/png",
        400,
        600,
    )
    assert img["size_bytes"] == media_files["image"].stat().st_size
    assert vid["kind"] == "video"
    assert vid["duration_s"] == pytest.approx(4.0, abs=0.3)
    async with httpx.AsyncClient() as anonymous:  # the upstream fetches without our key
        whole = await anonymous.get(img["url"])
        part = await anonymous.get(img["url"], headers={"Range": "bytes=0-7"})
        forged = await anonymous.get(img["url"].replace("sig=", "sig=0"))
    assert whole.content == media_files["image"].read_bytes()
    assert part.status_code == 206
    assert part.content == b"\x89PNG\r\n\x1a\n"
    assert forged.status_code == 403


async def test_an_image_below_the_limits_is_422_and_not_kept(
    uploader: httpx.AsyncClient, media_files: dict[str, Path], module_gateway: Gateway
) -> None:
    media_root = module_gateway.runtime.settings.media_root
    before = sorted(media_root.rglob("*")) if media_root.exists() else []
    response = await upload(uploader, media_files["small_image"])
    after = sorted(media_root.rglob("*")) if media_root.exists() else []
    assert response.status_code == 422
    assert response.json()["code"] == "image_too_small"
    assert response.json()["errors"]
    assert [p for p in after if p.is_file()] == [p for p in before if p.is_file()]


async def test_non_media_and_non_multipart_are_refused(uploader: httpx.AsyncClient) -> None:
    text = await uploader.post("/v1/uploads", files={"file": ("a.png", b"hello, not an image")})
    not_form = await uploader.post("/v1/uploads", json={"file": "x"})
    no_field = await uploader.post("/v1/uploads", files={"other": ("a.png", b"x")})
    assert text.status_code == 422
    assert text.json()["code"] == "media_format_unsupported"
    assert not_form.status_code == 422
    assert not_form.json()["code"] == "invalid_multipart"
    assert no_field.status_code == 422


async def test_size_limit_is_enforced_while_streaming(make_stack: StackFactory) -> None:
    async with make_stack(role="api", upload_max_bytes=100_000) as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            response = await http.post("/v1/uploads", files={"file": ("big.png", b"\0" * 300_000)})
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"


async def _job(http: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await http.post("/v1/jobs", json=job_body(image_url=None, video_url=None, **fields))


async def test_jobs_take_upload_ids_and_check_the_video_for_the_orientation(
    uploader: httpx.AsyncClient, media_files: dict[str, Path], module_gateway: Gateway
) -> None:
    image = (await upload(uploader, media_files["image"])).json()
    long_video = (await upload(uploader, media_files["long_video"])).json()
    too_long = await _job(uploader, image_upload_id=image["id"], video_upload_id=long_video["id"])
    ok = await _job(
        uploader,
        image_upload_id=image["id"],
        video_upload_id=long_video["id"],
        model_params={"character_orientation": "video"},
    )
    swapped = await _job(uploader, image_upload_id=long_video["id"], video_upload_id=image["id"])
    other_key = await module_gateway.new_client("someone else")
    async with module_gateway.http(other_key) as other:
        foreign = await _job(other, image_upload_id=image["id"], video_upload_id=long_video["id"])
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "video_too_long"
    assert too_long.json()["limit"] == 10
    assert ok.status_code == 202, ok.text
    job = ok.json()
    assert "/media/" in job["image_url"]
    assert "sig=" in job["video_url"]
    assert job["cost"]["estimated"] == "1.3608"  # the probed 12 s × $0.1134
    assert swapped.status_code == 422
    assert swapped.json()["code"] == "upload_not_image"
    assert foreign.status_code == 422
    assert foreign.json()["code"] == "upload_not_found"
