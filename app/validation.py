"""What any input must be before the gateway stores or dials it. Pure functions, no I/O.

PostgreSQL cannot store a NUL character (text or jsonb) nor a lone UTF-16 surrogate (not
UTF-8), and jsonb has no NaN or Infinity, which Python's json module accepts. httpx, the
client that dials every URL, parses URLs more strictly than "starts with https://". These
rules are checked once, where input enters (`app.guard` for every path, query and JSON
body; the schemas for URLs and cursors), so that no such value ever reaches a query or a
dial and turns into a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic_core import PydanticCustomError

from app.ids import id_pattern, is_id

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
MAX_PROBLEMS = 10

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One rejected value: where it was, why, and the stable `code` of the rule."""

    loc: Loc
    msg: str
    code: str


def text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store `value`, None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain a NUL character"
    return "must not contain an unpaired UTF-16 surrogate"


def storable_text(value: str) -> str:
    """`value` without what PostgreSQL cannot store: for informational text (a file name)
    that is better kept mangled than refused."""
    return _UNSTORABLE.sub("\ufffd", value)


class _NonFinite:
    """What the strict decoder leaves where a non-finite number was."""

    def __init__(self, token: str) -> None:
        self.token = token


def _parse_float(token: str) -> float | _NonFinite:
    number = float(token)
    return number if math.isfinite(number) else _NonFinite(token)  # 1e999 overflows to inf


class InvalidJson(ValueError):
    pass


def parse_json(raw: bytes) -> Any:
    """Decode like the framework does (json.loads), marking non-finite numbers instead of
    making floats of them. Raises InvalidJson with a message a client can act on."""
    try:
        return json.loads(raw, parse_constant=_NonFinite, parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJson("the body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # undecodable bytes, an integer with too many digits
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None


def json_problems(value: Any, loc: Loc = ("body",)) -> list[Problem]:
    """Every string (keys included) storable, every number finite; at most MAX_PROBLEMS.
    Iterative, so a deeply nested body cannot exhaust the stack."""
    problems: list[Problem] = []
    stack: list[tuple[Loc, Any]] = [(loc, value)]
    while stack and len(problems) < MAX_PROBLEMS:
        where, item = stack.pop()
        if isinstance(item, str):
            if (reason := text_problem(item)) is not None:
                problems.append(Problem(where, f"a string {reason}", "invalid_characters"))
        elif isinstance(item, _NonFinite | float) and not _finite(item):
            problems.append(Problem(where, "numbers must be finite", "non_finite_number"))
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if (reason := text_problem(key)) is not None:
                    problems.append(Problem(where, f"a key {reason}", "invalid_characters"))
                    continue
                stack.append(((*where, key), child))
        elif isinstance(item, list):
            stack.extend(((*where, i), child) for i, child in reversed(list(enumerate(item))))
    return problems


def _finite(item: _NonFinite | float) -> bool:
    return not isinstance(item, _NonFinite) and math.isfinite(item)


class UnsafeUrlCharacters(ValueError):
    pass


def parse_dialable(value: str) -> httpx.URL:
    """Parse `value` exactly as the dialling client will, or raise ValueError saying why.

    Whitespace, controls and backslashes are refused outright: they are where URL parsers
    (ours, the upstream's, a browser's) disagree with each other."""
    if any(ch <= " " or ch in "\\\x7f" for ch in value):
        raise UnsafeUrlCharacters("must not contain whitespace, control or backslash characters")
    try:
        url = httpx.URL(value)
        url.host  # noqa: B018 - decoded lazily: "xn--" raises here, and would when dialled
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA errors are ValueErrors, not InvalidURL
        raise ValueError(f"is not a valid URL ({exc})") from None
    return url


def http_url_problem(value: str) -> str | None:
    """Why `value` is not an http(s) URL the gateway could dial, None when it is."""
    try:
        url = parse_dialable(value)
    except ValueError as exc:
        return str(exc)
    if url.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    if not url.host:
        return "has no host"
    if url.port is not None and not 1 <= url.port <= 65535:
        return f"has a port out of range ({url.port})"
    return None


def cursor_query(prefix: str) -> dict[str, Any]:
    """`Query(**cursor_query(p))`: what the schema says a cursor looks like (documented,
    not enforced by the pattern: `cursor_check` enforces it with its own code)."""
    return {
        "max_length": 64,
        "description": f"`next_cursor` of the previous page: a `{prefix}_…` id",
        "json_schema_extra": {"pattern": id_pattern(prefix)},
    }


def cursor_check(prefix: str) -> Callable[[str | None], str | None]:
    """A validator for `?cursor=` on a list of `prefix_…` objects: only an id can be one.

    Use it as `Annotated[str | None, Query(max_length=64), AfterValidator(cursor_check(p))]`:
    a cursor that cannot be an id answers 422 `invalid_cursor` naming `["query", "cursor"]`.
    """

    def check(value: str | None) -> str | None:
        if value is not None and not is_id(value, prefix):
            raise PydanticCustomError("mgw_invalid_cursor", "cursor is not one this API issued")
        return value

    return check
