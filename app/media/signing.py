"""Signed, expiring links to stored media (`GET /media/{key}?expires=…&sig=…`).

The links go to parties without an API key (the upstream, subscribers), so the URL
itself is the credential: an HMAC-SHA256 over the key and the expiry time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote, urlencode

from app.media.errors import InvalidMediaKey
from app.storage.keys import InvalidKey, validate_key

# The signed message separates its fields with "\n", which no valid key contains:
# plain concatenation would let key "a/b1" + expires 700 pass as key "a/b" + 1700.
# The version prefix keeps these signatures from matching any other HMAC made with the
# same secret.
_MESSAGE_PREFIX = "motion-gateway/media/v1"


class SignatureCheck(enum.Enum):
    valid = "valid"
    invalid = "invalid"
    expired = "expired"


def media_signature(key: str, expires: int, secret: bytes) -> str:
    """Hex HMAC-SHA256 of the key and the expiry (unix seconds)."""
    if not secret:
        raise ValueError("the media signing secret must not be empty")
    message = f"{_MESSAGE_PREFIX}\n{key}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_media_url(base_url: str, key: str, secret: bytes, expires_at: datetime) -> str:
    """`{base_url}/media/{key}?expires=<unix>&sig=<hex>`; `expires_at` must be tz-aware."""
    expires = _unix_s(expires_at)
    try:
        validate_key(key)
    except InvalidKey as exc:
        raise InvalidMediaKey(str(exc)) from exc
    signature = media_signature(key, expires, secret)
    query = urlencode({"expires": expires, "sig": signature})
    return f"{base_url.rstrip('/')}/media/{quote(key, safe='/')}?{query}"


def check_media_signature(
    key: str, expires: int, sig: str, secret: bytes, now: datetime
) -> SignatureCheck:
    """Valid, invalid or expired. A bad signature is reported as such even when the
    claimed expiry has passed, so a forged link learns nothing about timing."""
    now_unix = _unix_s(now)
    expected = media_signature(key, expires, secret).encode()
    # Compared as bytes: compare_digest refuses non-ASCII str, and `sig` is untrusted.
    if not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
        return SignatureCheck.invalid
    if now_unix >= expires:
        return SignatureCheck.expired
    return SignatureCheck.valid


def verify_media_signature(key: str, expires: int, sig: str, secret: bytes, now: datetime) -> bool:
    """True only for an authentic link that has not expired yet."""
    return check_media_signature(key, expires, sig, secret, now) is SignatureCheck.valid


def _unix_s(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return int(moment.timestamp())
