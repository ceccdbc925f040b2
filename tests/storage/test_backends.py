"""One module, both backends: a local directory and a real S3 server on loopback (moto).

Every test runs against each backend through the `ObjectStore` interface only, so the
two cannot drift apart in what they promise.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.storage import InvalidKey, ObjectNotFound, ObjectStore, ObjectTooLarge, new_key
from app.storage.local import LocalObjectStore
from app.storage.s3 import S3ObjectStore
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3ObjectStore.connect(
        bucket=server.create_bucket(),
        endpoint_url=server.endpoint_url,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        prefix="gateway",
    )


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(store: ObjectStore, key: str, start: int, stop: int) -> bytes:
    return b"".join([chunk async for chunk in store.iter_range(key, start, stop)])


async def test_a_stored_object_reads_back_byte_for_byte(store: ObjectStore) -> None:
    data = os.urandom(12 * MIB + 12345)  # several multipart parts on S3
    key = new_key("result.mp4", prefix="arc")

    stored = await store.put_stream(
        key, _chunks(data), max_bytes=20 * MIB, content_type="video/mp4"
    )

    assert (stored.size_bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await store.size(key) == len(data)
    assert await _read(store, key, 0, len(data)) == data


async def test_ranges_read_exactly_the_bytes_asked_for(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    key = new_key("clip.mp4")
    await store.put_stream(key, _chunks(data), max_bytes=MIB, content_type="video/mp4")

    assert await _read(store, key, 0, 1) == data[:1]
    assert await _read(store, key, 1000, 200_001) == data[1000:200_001]
    assert await _read(store, key, len(data) - 10, len(data)) == data[-10:]


async def test_a_stream_past_its_limit_leaves_nothing_behind(store: ObjectStore) -> None:
    key = new_key("big.mp4")

    with pytest.raises(ObjectTooLarge):
        await store.put_stream(
            key, _chunks(os.urandom(6 * MIB)), max_bytes=5 * MIB, content_type="video/mp4"
        )

    assert await store.size(key) is None
    assert [info async for info in store.list("")] == []


async def test_storing_a_key_again_replaces_it_so_a_retry_leaves_one_object(
    store: ObjectStore,
) -> None:
    key = "arc_job_0000000000/result.mp4"
    await store.put_stream(key, _chunks(b"first"), max_bytes=MIB, content_type="video/mp4")
    await store.put_stream(key, _chunks(b"second"), max_bytes=MIB, content_type="video/mp4")

    listed = [info async for info in store.list("arc_")]
    assert [(info.key, info.size_bytes) for info in listed] == [(key, 6)]
    assert await _read(store, key, 0, 6) == b"second"


async def test_list_matches_key_prefixes_and_delete_removes(store: ObjectStore) -> None:
    upload, archive = new_key("a.png", prefix="upl"), new_key("result.mp4", prefix="arc")
    for key in (upload, archive):
        await store.put_stream(key, _chunks(b"x" * 10), max_bytes=MIB, content_type="image/png")

    assert [info.key async for info in store.list("upl_")] == [upload]
    assert [info.key async for info in store.list("arc_")] == [archive]

    await store.delete(upload)
    await store.delete(upload)  # already gone: not an error

    assert await store.size(upload) is None
    assert [info.key async for info in store.list("")] == [archive]


async def test_reading_a_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await _read(store, new_key("missing.mp4"), 0, 10)


async def test_keys_that_could_escape_are_refused(store: ObjectStore) -> None:
    for bad in ("../etc/passwd", "/abs", "a/../b", ".hidden", "a//b", ""):
        with pytest.raises(InvalidKey):
            await store.size(bad)


async def test_a_presigned_link_serves_the_object_with_ranges_or_none_for_local(
    store: ObjectStore,
) -> None:
    data = os.urandom(5000)
    key = new_key("result.mp4", prefix="arc")
    await store.put_stream(key, _chunks(data), max_bytes=MIB, content_type="video/mp4")

    url = await store.presigned_url(key, timedelta(minutes=5))

    if store.name == "local":
        assert url is None  # served by the gateway's own signed /media links
        return
    assert url is not None
    async with httpx.AsyncClient() as http:
        whole = await http.get(url)
        part = await http.get(url, headers={"Range": "bytes=100-199"})
    assert (whole.status_code, whole.content) == (200, data)
    assert (part.status_code, part.content) == (206, data[100:200])
