"""`GET /media/{key}` over real HTTP (httpx over the ASGI app), against real files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import httpx
import pytest
from fastapi import FastAPI

from app.media.context import MediaContext
from app.media.signing import media_signature
from app.storage.local import LocalObjectStore
from tests.media.helpers import SIGNING_SECRET, async_iter
from tests.support.media import make_mp4, make_png

# 200 KiB of a non-repeating-per-chunk pattern, so an off-by-one in a range shows.
BLOB = bytes((i * 7 + i // 256) % 256 for i in range(200 * 1024))
BLOB_KEY = "upl_blob/data.bin"


def in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def put(storage: LocalObjectStore, key: str, data: bytes) -> None:
    await storage.put_stream(key, async_iter([data]), max_bytes=len(data), content_type="video/mp4")


@pytest.fixture
async def blob_url(storage: LocalObjectStore, media_context: MediaContext) -> str:
    await put(storage, BLOB_KEY, BLOB)
    return media_context.signed_url(BLOB_KEY, in_an_hour())


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert (body["status"], body["code"]) == (status, code)


async def test_whole_file_with_accept_ranges(client: httpx.AsyncClient, blob_url: str) -> None:
    response = await client.get(blob_url)

    assert response.status_code == 200
    assert response.content == BLOB
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(BLOB))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [
        ("bytes=10-19", 10, 20),
        ("bytes=65530-131080", 65530, 131081),  # crosses the 64 KiB read chunks
        ("bytes=0-0", 0, 1),
        (f"bytes={len(BLOB) - 1}-{len(BLOB) + 500}", len(BLOB) - 1, len(BLOB)),
    ],
)
async def test_closed_ranges_are_exact(
    client: httpx.AsyncClient, blob_url: str, range_header: str, start: int, stop: int
) -> None:
    response = await client.get(blob_url, headers={"Range": range_header})

    assert response.status_code == 206
    assert response.content == BLOB[start:stop]
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(BLOB)}"
    assert response.headers["content-length"] == str(stop - start)


async def test_open_range(client: httpx.AsyncClient, blob_url: str) -> None:
    response = await client.get(blob_url, headers={"Range": "bytes=150000-"})

    assert response.status_code == 206
    assert response.content == BLOB[150000:]
    assert response.headers["content-range"] == f"bytes 150000-{len(BLOB) - 1}/{len(BLOB)}"


async def test_suffix_range(client: httpx.AsyncClient, blob_url: str) -> None:
    response = await client.get(blob_url, headers={"Range": "bytes=-500"})

    assert response.status_code == 206
    assert response.content == BLOB[-500:]
    assert response.headers["content-range"] == (
        f"bytes {len(BLOB) - 500}-{len(BLOB) - 1}/{len(BLOB)}"
    )


@pytest.mark.parametrize("range_header", [f"bytes={len(BLOB)}-", "bytes=-0"])
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, blob_url: str, range_header: str
) -> None:
    response = await client.get(blob_url, headers={"Range": range_header})

    assert_problem(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(BLOB)}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-1,5-6"},
        {"Range": "bytes=9-3"},
        {"Range": "pages=1-2"},
        {"Range": "bytes=0-9", "If-Range": '"some-etag"'},
    ],
)
async def test_ranges_we_do_not_serve_fall_back_to_the_whole_file(
    client: httpx.AsyncClient, blob_url: str, headers: dict[str, str]
) -> None:
    response = await client.get(blob_url, headers=headers)

    assert response.status_code == 200
    assert response.content == BLOB


async def test_head_sends_headers_only(client: httpx.AsyncClient, blob_url: str) -> None:
    whole = await client.head(blob_url)
    part = await client.head(blob_url, headers={"Range": "bytes=0-99"})

    assert (whole.status_code, whole.content) == (200, b"")
    assert whole.headers["content-length"] == str(len(BLOB))
    assert (part.status_code, part.headers["content-length"]) == (206, "100")


async def test_a_served_mp4_decodes_and_ranges_reassemble(
    client: httpx.AsyncClient,
    storage: LocalObjectStore,
    media_context: MediaContext,
    tmp_path: Path,
) -> None:
    source = make_mp4(tmp_path / "source.mp4", 340, 340, 3.0, with_audio=True)
    original = source.read_bytes()
    await put(storage, "upl_vid/clip.mp4", original)
    url = media_context.signed_url("upl_vid/clip.mp4", in_an_hour())

    response = await client.get(url)
    third = len(original) // 3
    pieces = [
        (await client.get(url, headers={"Range": spec})).content
        for spec in (
            f"bytes=0-{third - 1}",
            f"bytes={third}-{2 * third - 1}",
            f"bytes={2 * third}-",
        )
    ]

    assert response.headers["content-type"] == "video/mp4"
    assert response.content == original == b"".join(pieces)
    served = tmp_path / "served.mp4"
    served.write_bytes(response.content)
    with av.open(str(served)) as box:
        frames = sum(1 for _ in box.decode(video=0))
    assert frames == 30


async def test_content_type_comes_from_the_content_not_the_key(
    client: httpx.AsyncClient,
    storage: LocalObjectStore,
    media_context: MediaContext,
    tmp_path: Path,
) -> None:
    png = make_png(tmp_path / "x.png", 300, 300).read_bytes()
    await put(storage, "upl_lie/clip.mp4", png)

    response = await client.get(media_context.signed_url("upl_lie/clip.mp4", in_an_hour()))

    assert response.headers["content-type"] == "image/png"


async def test_no_bearer_token_is_needed_but_a_signature_is(
    client: httpx.AsyncClient, storage: LocalObjectStore
) -> None:
    await put(storage, BLOB_KEY, BLOB)

    assert_problem(await client.get(f"/media/{BLOB_KEY}"), 403, "media_signature_invalid")


@pytest.mark.parametrize(
    "query",
    [
        "expires={expires}&sig=" + "0" * 64,
        "expires={expires}&sig={sig}X",
        "expires={expires}",
        "sig={sig}",
        "expires=soon&sig={sig}",
        "expires=-5&sig={sig}",
        "expires=١٢٣&sig={sig}",
        "expires={expires}1&sig={sig}",
    ],
)
async def test_bad_signatures_are_403(
    client: httpx.AsyncClient, storage: LocalObjectStore, query: str
) -> None:
    await put(storage, BLOB_KEY, BLOB)
    expires = int(in_an_hour().timestamp())
    sig = media_signature(BLOB_KEY, expires, SIGNING_SECRET)

    response = await client.get(f"/media/{BLOB_KEY}?" + query.format(expires=expires, sig=sig))

    assert_problem(response, 403, "media_signature_invalid")


async def test_a_signature_for_another_key_is_403(
    client: httpx.AsyncClient, storage: LocalObjectStore, media_context: MediaContext
) -> None:
    await put(storage, BLOB_KEY, BLOB)
    other = media_context.signed_url("upl_other/file.bin", in_an_hour())

    response = await client.get(other.replace("upl_other/file.bin", BLOB_KEY))

    assert_problem(response, 403, "media_signature_invalid")


async def test_an_expired_link_is_403_expired(
    client: httpx.AsyncClient, storage: LocalObjectStore, media_context: MediaContext
) -> None:
    await put(storage, BLOB_KEY, BLOB)
    url = media_context.signed_url(BLOB_KEY, datetime.now(UTC) - timedelta(seconds=5))

    assert_problem(await client.get(url), 403, "media_link_expired")


async def test_a_deleted_file_is_404(
    client: httpx.AsyncClient, storage: LocalObjectStore, blob_url: str
) -> None:
    await storage.delete(BLOB_KEY)

    assert_problem(await client.get(blob_url), 404, "media_not_found")


async def test_traversal_is_refused_even_with_a_valid_signature(
    client: httpx.AsyncClient, storage: LocalObjectStore, tmp_path: Path
) -> None:
    # As if the server had signed a malformed key: the file outside the root stays out.
    (tmp_path / "secret.txt").write_text("top secret")
    storage.root.mkdir(parents=True, exist_ok=True)
    key = "../secret.txt"
    expires = int(in_an_hour().timestamp())
    sig = media_signature(key, expires, SIGNING_SECRET)

    response = await client.get(f"/media/%2E%2E/secret.txt?expires={expires}&sig={sig}")

    assert_problem(response, 404, "media_not_found")
    assert b"top secret" not in response.content


def test_openapi_declares_the_route_and_its_errors(media_app: FastAPI) -> None:
    schema = media_app.openapi()

    operation = schema["paths"]["/media/{key}"]["get"]
    assert {"200", "206", "403", "404", "416"} <= operation["responses"].keys()
    assert "head" not in schema["paths"]["/media/{key}"]
