"""The local backend's own promises: no partial file survives, keys stay in the root."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.storage import (
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    new_key,
    safe_filename,
    validate_key,
)
from app.storage.local import LocalObjectStore
from tests.media.helpers import async_iter, chunks_of

CT = "application/octet-stream"
PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes


@pytest.fixture
def storage(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "media")


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_local_storage_satisfies_the_protocol(storage: LocalObjectStore) -> None:
    backend: ObjectStore = storage
    assert backend is storage


async def test_put_stream_round_trip(storage: LocalObjectStore) -> None:
    key = "upl_abc/clip.mp4"

    stored = await storage.put_stream(
        key, chunks_of(PAYLOAD, 333), max_bytes=len(PAYLOAD), content_type=CT
    )

    assert stored.size_bytes == len(PAYLOAD)
    assert storage.local_path(key).read_bytes() == PAYLOAD
    assert await storage.size(key) == len(PAYLOAD)
    assert leftovers(storage.root) == [storage.local_path(key)]  # no temp file left behind


async def test_put_stream_batches_many_small_chunks(storage: LocalObjectStore) -> None:
    data = b"x" * (3 * 1024 * 1024 + 17)

    stored = await storage.put_stream(
        "upl_big/blob", chunks_of(data, 4096), max_bytes=len(data), content_type=CT
    )

    assert stored.size_bytes == len(data)
    assert storage.local_path("upl_big/blob").read_bytes() == data


async def test_one_byte_over_the_limit_is_refused_and_leaves_nothing(
    storage: LocalObjectStore,
) -> None:
    key = "upl_abc/too_big.mp4"

    with pytest.raises(ObjectTooLarge) as caught:
        await storage.put_stream(
            key, chunks_of(PAYLOAD, 1000), max_bytes=len(PAYLOAD) - 1, content_type=CT
        )

    assert caught.value.max_bytes == len(PAYLOAD) - 1
    assert await storage.size(key) is None
    assert leftovers(storage.root) == []


async def test_the_stream_is_abandoned_as_soon_as_the_limit_is_passed(
    storage: LocalObjectStore,
) -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            pulled.append(1)
            yield b"z" * 100

    with pytest.raises(ObjectTooLarge):
        await storage.put_stream("upl_abc/endless", endless(), max_bytes=1000, content_type=CT)

    assert len(pulled) == 11  # the 11th chunk crossed 1000 bytes; nothing more was read
    assert leftovers(storage.root) == []


async def test_a_failing_source_leaves_no_partial_file(storage: LocalObjectStore) -> None:
    async def disconnecting() -> AsyncIterator[bytes]:
        yield b"a" * 5000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put_stream(
            "upl_abc/partial", disconnecting(), max_bytes=10**6, content_type=CT
        )

    assert leftovers(storage.root) == []


async def test_a_cancelled_upload_leaves_no_partial_file(storage: LocalObjectStore) -> None:
    first_chunk_sent = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"a" * (2 * 1024 * 1024)  # past one write batch, so bytes hit the disk
        first_chunk_sent.set()
        await asyncio.Event().wait()  # the client never sends the rest
        yield b""

    upload = asyncio.create_task(
        storage.put_stream("upl_c/stalled", stalled(), max_bytes=10**8, content_type=CT)
    )
    await first_chunk_sent.wait()
    assert any(p.name.endswith(".part") for p in leftovers(storage.root))

    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert leftovers(storage.root) == []


async def test_delete_removes_the_file_and_its_empty_folder(storage: LocalObjectStore) -> None:
    await storage.put_stream("upl_gone/a.png", async_iter([b"123"]), max_bytes=10, content_type=CT)

    await storage.delete("upl_gone/a.png")
    await storage.delete("upl_gone/a.png")  # idempotent

    assert await storage.size("upl_gone/a.png") is None
    assert not (storage.root / "upl_gone").exists()
    assert storage.root.exists()


async def test_iter_range_reads_exact_slices(storage: LocalObjectStore) -> None:
    await storage.put_stream(
        "upl_r/data", async_iter([PAYLOAD]), max_bytes=len(PAYLOAD), content_type=CT
    )

    parts = [c async for c in storage.iter_range("upl_r/data", 100, 5000, chunk_bytes=999)]

    assert b"".join(parts) == PAYLOAD[100:5000]
    assert max(len(p) for p in parts) == 999


async def test_iter_range_of_a_missing_key_is_not_found(storage: LocalObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        _ = [c async for c in storage.iter_range("upl_none/x", 0, 10)]


async def test_a_folder_is_not_an_object(storage: LocalObjectStore) -> None:
    await storage.put_stream("upl_dir/a", async_iter([b"1"]), max_bytes=10, content_type=CT)

    assert await storage.size("upl_dir") is None


TRAVERSALS = [
    "../outside.txt",
    "upl_x/../../outside.txt",
    "upl_x/./a",
    "/etc/passwd",
    "upl_x//a",
    "upl_x\\..\\a",
    ".hidden",
    "upl_x/.a.part",
    "",
    "upl_x/a\x00b",
    "upl_x/a\nb",
    "upl_x/" + "a" * 600,
    "/".join(["a"] * 9),
]


@pytest.mark.parametrize("key", TRAVERSALS)
async def test_unsafe_keys_are_refused_everywhere(
    storage: LocalObjectStore, tmp_path: Path, key: str
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")

    with pytest.raises(InvalidKey):
        storage.local_path(key)
    with pytest.raises(InvalidKey):
        await storage.put_stream(key, async_iter([b"pwned"]), max_bytes=100, content_type=CT)
    with pytest.raises(InvalidKey):
        await storage.size(key)
    with pytest.raises(InvalidKey):
        await storage.delete(key)

    assert outside.read_text() == "secret"


def test_new_keys_are_unique_safe_and_keep_a_tidy_name() -> None:
    key = new_key("../../My Photo (1).JPG")

    assert re.fullmatch(r"upl_[0-9a-f]{32}/My_Photo_1_.JPG", key)
    assert validate_key(key) == key
    assert new_key("a.png") != new_key("a.png")
    assert new_key(None, prefix="res").startswith("res_")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "clip.mp4"),
        ("C:\\Users\\me\\clip.mov", "clip.mov"),
        ("..", "file"),
        (".bashrc", "bashrc"),
        ("", "file"),
        (None, "file"),
        ("Ünïcodé.png", "Unicode.png"),
        ("ø.png", "png"),
        ("x" * 300 + ".jpeg", "x" * 95 + ".jpeg"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name) == expected
