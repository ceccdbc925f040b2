"""Plain helpers shared by the media tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import pytest

from app.media.errors import MediaRejected

SIGNING_SECRET = b"test-media-signing-secret"
BASE_URL = "http://gateway.test"


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def async_iter(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def rejection(probe_or_check: Callable[[], object]) -> MediaRejected:
    """Run the callable and return the `MediaRejected` (a 422) it must raise."""
    with pytest.raises(MediaRejected) as caught:
        probe_or_check()
    assert caught.value.status_code == 422
    return caught.value
