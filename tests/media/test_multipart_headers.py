"""Part headers are bytes: whatever they hold, the parser answers, never raises."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.media.multipart import FileField


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


@pytest.mark.parametrize(
    "disposition",
    [
        'form-data; name="file"; filename="玹.png"'.encode(),  # UTF-8, not latin-1
        b'form-data; name="file"; filename="\xff\xfe.png"',  # not UTF-8 either
    ],
)
async def test_non_latin1_part_headers_are_read(disposition: bytes) -> None:
    body = b"--b\r\nContent-Disposition: " + disposition + b"\r\n\r\nDATA\r\n--b--\r\n"
    field = FileField(_one(body), "multipart/form-data; boundary=b", "file")
    chunks = [chunk async for chunk in field.chunks()]
    assert b"".join(chunks) == b"DATA"
    assert field.filename is not None
    assert field.filename.endswith(".png")
