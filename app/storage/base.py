"""The interface every backend implements, and what it reports."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

DEFAULT_READ_CHUNK_BYTES: Final = 64 * 1024


class ObjectNotFound(LookupError):
    """No object under that key."""


class ObjectTooLarge(ValueError):
    """The stream passed `max_bytes`; nothing was stored."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    modified_at: datetime


@dataclass
class Digest:
    """Counts and hashes a stream as it passes, refusing it past `max_bytes`."""

    max_bytes: int
    size: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ObjectTooLarge(self.max_bytes)
        self._hash.update(chunk)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class ObjectStore(Protocol):
    """Write-once objects under validated keys (see `app.storage.keys`)."""

    name: str

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str
    ) -> StoredObject:
        """Store `chunks` under `key`; visible only once complete. `ObjectTooLarge` past
        `max_bytes`, leaving nothing behind. Storing the same key again replaces it."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if there is no such object."""
        ...

    def iter_range(
        self, key: str, start: int, stop: int, chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        """Bytes `start` (inclusive) to `stop` (exclusive), in chunks; `ObjectNotFound`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`."""
        ...

    async def presigned_url(self, key: str, expires_in: timedelta) -> str | None:
        """A direct, time-limited GET link, or None where the gateway serves it itself."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A path on this machine's disk where the backend has one (the probes read files)."""
        ...
