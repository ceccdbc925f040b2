"""What media code needs at run time: where files live and the key that signs their links.

Built once by `build_runtime` and held by the `Runtime` (`runtime.media`), so routers,
services and workers all reach the same storage and signing key the same way.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from app.media.signing import sign_media_url
from app.media.storage import LocalStorage, Storage
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class MediaContext:
    """Storage, the link-signing secret and the public base URL links point at."""

    storage: Storage
    signing_secret: bytes
    public_base_url: str

    def signed_url(self, key: str, expires_at: datetime) -> str:
        return sign_media_url(self.public_base_url, key, self.signing_secret, expires_at)


def media_signing_secret(settings: Settings) -> bytes:
    """A key of its own for media links, derived so that one secret setting suffices."""
    return hmac.new(settings.secret_bytes, b"media-links", hashlib.sha256).digest()


def build_media_context(settings: Settings) -> MediaContext:
    return MediaContext(
        LocalStorage(settings.media_root), media_signing_secret(settings), settings.public_base_url
    )
