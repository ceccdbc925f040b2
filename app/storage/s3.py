"""Objects in an S3-compatible store, through `obstore` (the Rust `object_store` crate).

Why obstore over aiobotocore: it streams both ways natively (an async iterator in becomes
a multipart upload, a GET comes back as an async stream of buffers), it presigns without
a second library, it is one self-contained wheel with no pinned botocore to fight
dependency resolution, and its backing crate is what Apache Arrow and Delta use, under
active maintenance. aiobotocore would add botocore's and aiohttp's release coupling for
the same four calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Final

import obstore
from obstore.store import S3Store

from app.storage.base import (
    DEFAULT_READ_CHUNK_BYTES,
    Digest,
    ObjectInfo,
    ObjectNotFound,
    StoredObject,
)
from app.storage.keys import validate_key

# S3's smallest multipart part; obstore buffers up to this before sending a part.
PART_BYTES: Final = 5 * 1024 * 1024


class S3ObjectStore:
    name = "s3"

    def __init__(self, store: S3Store, prefix: str = "") -> None:
        self._store = store
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def connect(
        cls,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        prefix: str = "",
    ) -> S3ObjectStore:
        allow_http = bool(endpoint_url and endpoint_url.startswith("http://"))
        store = S3Store(
            bucket,
            endpoint=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            virtual_hosted_style_request=False,
            client_options={"allow_http": allow_http, "timeout": "60s", "connect_timeout": "5s"},
        )
        return cls(store, prefix)

    def _path(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def local_path(self, key: str) -> Path | None:
        return None

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str
    ) -> StoredObject:
        digest = Digest(max_bytes)

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                digest.update(chunk)  # raising here aborts the multipart upload
                yield chunk

        await obstore.put_async(
            self._store,
            self._path(key),
            counted(),
            chunk_size=PART_BYTES,
            attributes={"Content-Type": content_type},
        )
        return StoredObject(key, digest.size, digest.hexdigest)

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, self._path(key))
        except FileNotFoundError:
            return None
        return int(meta["size"])

    async def iter_range(
        self, key: str, start: int, stop: int, chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        if stop <= start:
            return
        try:
            result = await obstore.get_async(
                self._store, self._path(key), options={"range": (start, stop)}
            )
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        async for buffer in result.stream(min_chunk_size=chunk_bytes):
            yield bytes(buffer)

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, self._path(key))
        except FileNotFoundError:
            return

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        # object_store matches prefixes by whole path segments ("upl" would not match
        # "upl_3f…/x"), so list under our own root and match the key's text here.
        root = self._prefix.rstrip("/") or None
        async for batch in obstore.list(self._store, prefix=root, chunk_size=500):
            for meta in batch:
                key = str(meta["path"])[len(self._prefix) :]
                if key.startswith(prefix):
                    yield ObjectInfo(key, int(meta["size"]), meta["last_modified"])

    async def presigned_url(self, key: str, expires_in: timedelta) -> str | None:
        return await obstore.sign_async(self._store, "GET", self._path(key), expires_in)
