"""`GET /media/{key}`: stored media behind signed, expiring links, with HTTP Range.

No bearer token: the link's signature is the credential (see `signing`). Failures are
raised as `MediaError`s, which the app's one problem+json handler renders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.errors import problem_responses
from app.media.errors import (
    MediaLinkExpired,
    MediaNotFound,
    MediaSignatureInvalid,
)
from app.media.ranges import ByteRange, parse_range
from app.media.signing import SignatureCheck, check_media_signature
from app.media.sniff import CONTENT_TYPES, HEAD_BYTES, content_type_for
from app.runtime import RuntimeDep
from app.storage import InvalidKey, ObjectNotFound, ObjectStore

# Unix seconds fit in 12 digits until the year 33658; more is an attack or a typo.
_MAX_EXPIRES_DIGITS: Final = 12

router = APIRouter(tags=["media"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole file.",
        "content": {content_type: {} for content_type in CONTENT_TYPES.values()},
    },
    206: {
        "description": "The requested byte range (`Content-Range` names it).",
        "content": {content_type: {} for content_type in CONTENT_TYPES.values()},
    },
    **problem_responses(403, 404, 416),
}


@router.get("/media/{key:path}", response_class=Response, response_model=None, responses=_RESPONSES)
async def get_media(
    request: Request,
    key: str,
    rt: RuntimeDep,
    expires: Annotated[str | None, Query(description="Expiry, unix seconds")] = None,
    sig: Annotated[str | None, Query(description="Hex HMAC-SHA256 of the link")] = None,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    if_range: Annotated[str | None, Header(alias="if-range")] = None,
) -> Response:
    """Download an uploaded or archived media file through a signed, expiring link."""
    _authorize(key, expires, sig, rt.media.signing_secret)
    storage = rt.media.storage
    size_bytes = await _stored_size(storage, key)
    content_type = await _sniff_content_type(storage, key, size_bytes)
    # We send no validators (ETag, Last-Modified), so an If-Range can never match, and
    # RFC 9110 §13.1.5 then requires the whole file.
    byte_range = None if if_range else parse_range(range_header, size_bytes)
    status_code, headers, (start, stop) = _plan(byte_range, size_bytes)
    if request.method == "HEAD":
        return Response(status_code=status_code, headers=headers, media_type=content_type)
    return StreamingResponse(
        storage.iter_range(key, start, stop),
        status_code=status_code,
        headers=headers,
        media_type=content_type,
    )


# HEAD shares the handler; kept out of the schema so the operation ids stay unique.
router.add_api_route(
    "/media/{key:path}",
    get_media,
    methods=["HEAD"],
    response_class=Response,
    response_model=None,
    include_in_schema=False,
)


def _authorize(key: str, expires: str | None, sig: str | None, secret: bytes) -> None:
    expires_unix = _parse_expires(expires)
    if expires_unix is None or not sig:
        raise MediaSignatureInvalid("the link lacks a valid `expires` or `sig` parameter")
    result = check_media_signature(key, expires_unix, sig, secret, datetime.now(UTC))
    if result is SignatureCheck.invalid:
        raise MediaSignatureInvalid("the link's signature does not match")
    if result is SignatureCheck.expired:
        expired_at = datetime.fromtimestamp(expires_unix, UTC).isoformat()
        raise MediaLinkExpired(f"the link expired at {expired_at}; ask for a fresh one")


def _parse_expires(expires: str | None) -> int | None:
    if not expires or len(expires) > _MAX_EXPIRES_DIGITS or not expires.isascii():
        return None
    return int(expires) if expires.isdigit() else None


async def _stored_size(storage: ObjectStore, key: str) -> int:
    try:
        size_bytes = await storage.size(key)
    except InvalidKey:
        # Only reachable with a signature we made for a malformed key: a server bug,
        # answered like any other missing object.
        size_bytes = None
    if size_bytes is None:
        raise MediaNotFound("there is no media at this link (it may have been deleted)")
    return size_bytes


async def _sniff_content_type(storage: ObjectStore, key: str, size_bytes: int) -> str:
    # Sniffed, not stored: the key's name comes from the client and may lie, and the
    # upload is only identified by content after it has been saved.
    try:
        head = b"".join(
            [chunk async for chunk in storage.iter_range(key, 0, min(size_bytes, HEAD_BYTES))]
        )
    except ObjectNotFound as exc:
        raise MediaNotFound("there is no media at this link (it may have been deleted)") from exc
    return content_type_for(head)


def _plan(
    byte_range: ByteRange | None, size_bytes: int
) -> tuple[int, dict[str, str], tuple[int, int]]:
    headers = {"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}
    if byte_range is None:
        headers["Content-Length"] = str(size_bytes)
        return 200, headers, (0, size_bytes)
    headers["Content-Length"] = str(byte_range.length)
    headers["Content-Range"] = byte_range.content_range(size_bytes)
    return 206, headers, (byte_range.start, byte_range.end + 1)
