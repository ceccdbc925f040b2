"""Errors of the media domain: a branch of `app.errors.DomainError`, rendered by its handler."""

from __future__ import annotations

from typing import Any

from app.errors import DomainError

LimitValue = int | float | str | None


class MediaError(DomainError):
    """Base of every media failure; `code` is a stable snake_case string."""

    status_code = 400
    code = "media_error"
    title = "Media error"


class MediaRejected(MediaError):
    """The file breaks one of the model's input limits (or cannot be read at all)."""

    status_code = 422
    code = "media_rejected"
    title = "Media rejected"

    def __init__(self, code: str, message: str, *, limit: LimitValue = None) -> None:
        # `limit` travels in the problem body so a client can fix its file without
        # parsing `detail`.
        extra: dict[str, Any] = {} if limit is None else {"limit": limit}
        extra["errors"] = [{"loc": ["body", "file"], "msg": message}]  # every 422 lists errors
        super().__init__(message, code=code, **extra)
        self.limit = limit


class MediaTooLarge(MediaError):
    """An upload passed the byte limit while it was being streamed in."""

    status_code = 413
    code = "upload_too_large"
    title = "Upload too large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the upload is larger than {max_bytes} bytes", limit=max_bytes)
        self.max_bytes = max_bytes


class InvalidMediaKey(MediaError):
    """A storage key that could escape the storage root or is otherwise malformed."""

    status_code = 400
    code = "media_key_invalid"
    title = "Invalid media key"


class MediaNotFound(MediaError):
    status_code = 404
    code = "media_not_found"
    title = "Media not found"


class MediaSignatureInvalid(MediaError):
    status_code = 403
    code = "media_signature_invalid"
    title = "Invalid media link"


class MediaLinkExpired(MediaError):
    status_code = 403
    code = "media_link_expired"
    title = "Media link expired"


class RangeNotSatisfiable(MediaError):
    status_code = 416
    code = "range_not_satisfiable"
    title = "Range not satisfiable"

    def __init__(self, size_bytes: int) -> None:
        super().__init__(f"the requested range is outside the file's {size_bytes} bytes")
        # RFC 9110 §15.5.17: a 416 names the current length so the client can retry.
        self.headers["Content-Range"] = f"bytes */{size_bytes}"
