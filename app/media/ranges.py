"""HTTP `Range: bytes=…` for a single range (RFC 9110 §14).

A header we do not understand, or one asking for several ranges, is ignored and the
whole file is served with 200, which the RFC allows; only a well-formed range that lies
entirely outside the file is answered with 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from app.media.errors import RangeNotSatisfiable

# Bounded so int() stays cheap on hostile input; 40 digits still lets a client say "up
# to some huge number", which is clipped to the file's end like any other last-pos.
_RANGE_SPEC_RE: Final = re.compile(r"([0-9]{0,40})-([0-9]{0,40})")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int  # first byte, inclusive
    end: int  # last byte, inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size_bytes: int) -> str:
        return f"bytes {self.start}-{self.end}/{size_bytes}"


def parse_range(header: str | None, size_bytes: int) -> ByteRange | None:
    """The range to serve, None for the whole file; `RangeNotSatisfiable` for a 416."""
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE_SPEC_RE.fullmatch(spec.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        return _suffix_range(last, size_bytes)
    return _bounded_range(int(first), int(last) if last else None, size_bytes)


def _suffix_range(last: str, size_bytes: int) -> ByteRange | None:
    if not last:
        return None  # "bytes=-" names no range at all
    suffix_length = int(last)
    # §14.1.2: a zero-length suffix is unsatisfiable; a longer one than the file
    # means the whole file.
    if suffix_length == 0 or size_bytes == 0:
        raise RangeNotSatisfiable(size_bytes)
    return ByteRange(max(0, size_bytes - suffix_length), size_bytes - 1)


def _bounded_range(start: int, end: int | None, size_bytes: int) -> ByteRange | None:
    if end is not None and end < start:
        return None  # invalid, so ignored (§14.1.1), not unsatisfiable
    if start >= size_bytes:
        raise RangeNotSatisfiable(size_bytes)
    last_byte = size_bytes - 1
    return ByteRange(start, last_byte if end is None else min(end, last_byte))
