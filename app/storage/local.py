"""Objects as files under a root directory; every disk operation runs in a worker thread."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

from app.storage.base import (
    DEFAULT_READ_CHUNK_BYTES,
    Digest,
    ObjectInfo,
    ObjectNotFound,
    StoredObject,
)
from app.storage.keys import validate_key

# Uploads arrive in small ASGI chunks; batching them makes one thread hop per MiB.
_WRITE_BATCH_BYTES: Final = 1024 * 1024
PART_SUFFIX: Final = ".part"


class LocalObjectStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, key: str) -> Path:
        # Purely lexical (no I/O), which is safe because validated keys cannot contain
        # "..", absolute parts or separators other than "/".
        return self.root.joinpath(*validate_key(key).split("/"))

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str
    ) -> StoredObject:
        final = self.local_path(key)
        part = await asyncio.to_thread(_open_part_file, final)
        digest = Digest(max_bytes)
        try:
            await _write_chunks(part, chunks, digest)
            await asyncio.to_thread(_commit, part, final)
        except BaseException:
            # Shielded: the partial file goes even when the upload is being cancelled.
            await asyncio.shield(asyncio.to_thread(_discard, part))
            raise
        return StoredObject(key, digest.size, digest.hexdigest)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(_delete_file, self.local_path(key), self.root)

    async def size(self, key: str) -> int | None:
        return await asyncio.to_thread(_file_size, self.local_path(key))

    async def iter_range(
        self, key: str, start: int, stop: int, chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        path = self.local_path(key)
        try:
            fh = await asyncio.to_thread(_open_at, path, start)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        try:
            remaining = stop - start
            while remaining > 0:
                data = await asyncio.to_thread(fh.read, min(chunk_bytes, remaining))
                if not data:
                    raise OSError(f"object {key!r} shrank while it was being read")
                remaining -= len(data)
                yield data
        finally:
            # Synchronous on purpose: closing a read-only file does not block, and an
            # await here could be cancelled again when the client has gone away.
            fh.close()

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(_walk, self.root, prefix):
            yield info

    async def presigned_url(self, key: str, expires_in: timedelta) -> str | None:
        return None  # the gateway serves local objects through its signed /media links


async def _write_chunks(part: BinaryIO, chunks: AsyncIterator[bytes], digest: Digest) -> None:
    batch = bytearray()
    async for chunk in chunks:
        digest.update(chunk)
        batch += chunk
        if len(batch) >= _WRITE_BATCH_BYTES:
            await asyncio.to_thread(part.write, bytes(batch))
            batch.clear()
    if batch:
        await asyncio.to_thread(part.write, bytes(batch))


def _open_part_file(final: Path) -> BinaryIO:
    final.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps the partial file outside the key space: no key can name it.
    part = final.with_name(f".{final.name}.{secrets.token_hex(8)}{PART_SUFFIX}")
    return part.open("xb")


def _commit(part: BinaryIO, final: Path) -> None:
    part.flush()
    # Durable before it becomes visible: an upstream or a subscriber fetches it next.
    os.fsync(part.fileno())
    part.close()
    os.replace(part.name, final)


def _discard(part: BinaryIO) -> None:
    part.close()
    Path(part.name).unlink(missing_ok=True)


def _delete_file(path: Path, root: Path) -> None:
    path.unlink(missing_ok=True)
    # Remove the now-empty per-object folders, stopping at the root or a non-empty one.
    parent = path.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def _file_size(path: Path) -> int | None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _open_at(path: Path, offset: int) -> BinaryIO:
    fh = path.open("rb")
    fh.seek(offset)
    return fh


def _walk(root: Path, prefix: str) -> list[ObjectInfo]:
    """Complete objects only: partial files start with a dot, which no key segment may."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            key = path.relative_to(root).as_posix()
            if key.startswith(prefix):
                st = path.stat()
                modified = datetime.fromtimestamp(st.st_mtime, UTC)
                found.append(ObjectInfo(key, st.st_size, modified))
    return sorted(found, key=lambda info: info.key)
