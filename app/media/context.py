"""What media code needs at run time: where objects live and the key that signs their links.

Built once by `build_runtime` and held by the `Runtime` (`runtime.media`), so routers,
services and workers all reach the same store and signing key the same way. Uploads and
archived results share the one `ObjectStore`, chosen by `MGW_STORAGE_BACKEND`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from app.media.signing import sign_media_url
from app.settings import Settings
from app.storage import ObjectStore
from app.storage.local import LocalObjectStore
from app.storage.s3 import S3ObjectStore


@dataclass(frozen=True, slots=True)
class MediaContext:
    """The object store, the link-signing secret and the public base URL links point at."""

    storage: ObjectStore
    signing_secret: bytes
    public_base_url: str

    def signed_url(self, key: str, expires_at: datetime) -> str:
        return sign_media_url(self.public_base_url, key, self.signing_secret, expires_at)


def media_signing_secret(settings: Settings) -> bytes:
    """A key of its own for media links, derived so that one secret setting suffices."""
    return hmac.new(settings.secret_bytes, b"media-links", hashlib.sha256).digest()


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        return S3ObjectStore.connect(
            bucket=settings.s3_bucket or "",  # the settings refuse s3 without a bucket
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            prefix=settings.s3_prefix,
        )
    return LocalObjectStore(settings.media_root)


def build_media_context(settings: Settings) -> MediaContext:
    return MediaContext(
        build_object_store(settings), media_signing_secret(settings), settings.public_base_url
    )
