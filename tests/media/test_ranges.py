from __future__ import annotations

import pytest

from app.media.errors import RangeNotSatisfiable
from app.media.ranges import ByteRange, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=10-10", ByteRange(10, 10)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=500-", ByteRange(500, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("Bytes = 0-1 ", ByteRange(0, 1)),
        ("bytes=0-99999999999999999999999", ByteRange(0, 999)),
    ],
)
def test_single_ranges(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=5-2",  # last < first: invalid, so ignored
        "bytes=-",
        "bytes=0-1,5-6",  # several ranges: served whole
        "items=0-1",
        "bytes 0-1",
        "bytes=a-b",
        "bytes=١-٢",  # non-ASCII digits
        "bytes=0-" + "9" * 41,
    ],
)
def test_ignored_headers_mean_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", SIZE), ("bytes=-0", SIZE),
                                              ("bytes=1000-2000", SIZE), ("bytes=-1", 0),
                                              ("bytes=99999999999999999999-", SIZE)])  # fmt: skip
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)

    assert caught.value.status_code == 416
    assert caught.value.headers["Content-Range"] == f"bytes */{size}"


def test_content_range_and_length() -> None:
    byte_range = ByteRange(10, 19)

    assert byte_range.length == 10
    assert byte_range.content_range(SIZE) == "bytes 10-19/1000"
