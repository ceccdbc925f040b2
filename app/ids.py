"""Opaque, type-prefixed, time-sortable ids (`job_…`, `cli_…`, …).

A millisecond timestamp then 80 random bits, Crockford base32: ids sort by creation
time, which makes `id` a stable cursor for newest-first lists. This module is the only
place that knows the format: others ask `is_id` instead of spelling a pattern.
"""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_TIME_CHARS = 10
_RANDOM_CHARS = 16
_BODY = re.compile(rf"[{_ALPHABET}]{{{_TIME_CHARS + _RANDOM_CHARS}}}")


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_b32(millis, _TIME_CHARS)}{_b32(secrets.randbits(80), _RANDOM_CHARS)}"


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` is shaped like an id `new_id(prefix)` could have made."""
    head, sep, body = value.partition("_")
    return head == prefix and sep == "_" and _BODY.fullmatch(body) is not None


def id_pattern(prefix: str) -> str:
    """A JSON Schema pattern for the ids of `prefix`, for documentation."""
    return f"^{re.escape(prefix)}_{_BODY.pattern}$"


def placeholder_id(prefix: str) -> str:
    """A well-formed id that no row has (the earliest possible one)."""
    return f"{prefix}_{_ALPHABET[0] * (_TIME_CHARS + _RANDOM_CHARS)}"
