"""The log chain: no locals, bounded stacks, secrets scrubbed from every field."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from app.logging import (
    MAX_EXCEPTION_CHARS,
    MAX_FRAMES,
    build_formatter,
    redact_text,
    register_secrets,
)


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("uvicorn.access", logging.ERROR, __file__, 1, message, args, exc_info)


def _raise_with_secret_local() -> None:
    api_key = "mgw_" + "L0cal" * 8  # a local a rich traceback would have printed
    raise RuntimeError(f"boom near {len(api_key)} chars")


def _caught(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _recurse(depth: int) -> None:
    _recurse(depth + 1)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /v1/upstream/p/callbacks/job_1?token=abc123def456 HTTP/1.1", "abc123def456"),
        ("/media/k/file?expires=1&sig=Zm9vYmFy-_x", "Zm9vYmFy-_x"),
        ("postgresql+asyncpg://mgw:hunter2pw@db:5432/x", "hunter2pw"),
        ("ProviderConfig(api_key='k-123456', secret_key='s-123456')", "123456"),
        ('{"secret": "whsec_QUJDREVGR0hJSktM"}', "QUJDREVGR0hJSktM"),
        ("authorization: Bearer mgw_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhayJ9.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("key mgw_abcdefghijklmnopqrstuvwxyz0123 leaked", "abcdefghijklmnopqrstuvwxyz"),
        ("password=hunter2 host=db", "hunter2"),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact_text(text)
    assert "[REDACTED]" in redact_text(text)


def test_held_secrets_are_redacted_wherever_they_appear() -> None:
    register_secrets("a-held-secret-value-42", None, "")
    assert redact_text("x a-held-secret-value-42 y") == "x [REDACTED] y"


@pytest.mark.parametrize("json_mode", [False, True], ids=["console", "json"])
def test_foreign_lines_and_their_fields_are_scrubbed(json_mode: bool) -> None:
    line = build_formatter(json=json_mode).format(
        _record('%s - "%s %s"', "127.0.0.1", "GET", "/media/a?expires=1&sig=S1gnatureXyz")
    )
    assert "S1gnatureXyz" not in line
    assert "sig=[REDACTED]" in line


def test_console_traceback_has_no_locals() -> None:
    exc = _caught(_raise_with_secret_local)
    line = build_formatter(json=False).format(_record("failed", exc=exc))
    assert "Traceback (most recent call last)" in line
    assert "_raise_with_secret_local" in line
    assert "L0cal" not in line


def test_json_traceback_is_a_structured_field_without_locals() -> None:
    exc = _caught(_raise_with_secret_local)
    line = build_formatter(json=True).format(_record("failed", exc=exc))
    body = json.loads(line)
    [stack] = body["exception"]
    assert stack["exc_type"] == "RuntimeError"
    assert stack["frames"][-1]["name"] == "_raise_with_secret_local"
    assert all("locals" not in frame for frame in stack["frames"])
    assert "L0cal" not in line
    assert "<traceback object" not in line


@pytest.mark.parametrize("json_mode", [False, True], ids=["console", "json"])
def test_a_huge_stack_renders_bounded(json_mode: bool) -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(3000)
    try:
        exc = _caught(_recurse, 0)
    finally:
        sys.setrecursionlimit(limit)
    line = build_formatter(json=json_mode).format(_record("deep", exc=exc))
    assert len(line) < MAX_EXCEPTION_CHARS + 10_000
    if json_mode:
        assert len(json.loads(line)["exception"][0]["frames"]) <= MAX_FRAMES + 1
    else:
        assert line.count('File "') <= MAX_FRAMES
