"""The request boundary: what every request must be before any route sees it.

A pure ASGI middleware, so it runs before authentication, the database or the body is
touched:

- a body over `max_body_bytes` → 413, refused on its `Content-Length` before a byte is
  read, or once the streamed bytes pass the limit (the rest of a streamed body is
  dropped, within bounds, so that the client hears the answer); routes in
  `streamed_paths`, i.e. uploads, enforce their own larger limit while streaming;
- a path PostgreSQL could not store (NUL…) → 404: no object can have such an id;
- a query value it could not store → 422 naming `["query", name]`;
- a JSON body that is not strict JSON (RFC 8259: no NaN or Infinity), or that holds an
  unstorable string or key → 422 naming the field.

The body is buffered (it is bounded) and handed on unchanged.
"""

from __future__ import annotations

import email.message
from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.validation import InvalidJson, Problem, json_problems, parse_json, text_problem

MAX_BODY_BYTES = 1 << 20
DRAIN_FACTOR = 4
STREAMED_PATHS = ("/v1/uploads",)


class InputGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        streamed_paths: Sequence[str] = STREAMED_PATHS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.streamed_paths = frozenset(streamed_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if text_problem(scope["path"]) is not None:
            await _not_found(scope, receive, send)
            return
        if problems := _query_problems(scope):
            await _unprocessable(problems, scope, receive, send)
            return
        if scope["path"] in self.streamed_paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: there is no one to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._too_large(scope, receive, send, await self._drain(receive, more))
                return
        if body and _is_json(headers.get("content-type")):
            try:
                problems = json_problems(parse_json(bytes(body)))
            except InvalidJson as exc:
                problems = [Problem(("body",), str(exc), "invalid_json")]
            if problems:
                await _unprocessable(problems, scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _drain(self, receive: Receive, more: bool) -> bool:
        """Read and drop the rest of a streamed body, up to `DRAIN_FACTOR` times the limit,
        so that a client still sending it gets the 413 instead of a reset connection.
        True when the body ended (the connection can then be reused)."""
        dropped = 0
        while more and dropped <= DRAIN_FACTOR * self.max_body_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)
        return not more

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, drained: bool = False
    ) -> None:
        response = problem_response(
            413,
            "Content too large",
            f"the request body is over {self.max_body_bytes} bytes",
            "content_too_large",
            # Unless drained, the rest of the body is not read: the connection is done.
            headers=None if drained else {"Connection": "close"},
            limit=self.max_body_bytes,
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect, for streamed responses

    return replay


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _is_json(content_type: str | None) -> bool:
    """The framework's own rule for parsing a body as JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _query_problems(scope: Scope) -> list[Problem]:
    query = scope.get("query_string", b"").decode("latin-1")
    problems = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        reason = text_problem(name) or text_problem(value)
        if reason is not None:
            problems.append(Problem(("query", name), reason, "invalid_characters"))
    return problems


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(404, "Not Found", "Not Found", "not_found")
    await response(scope, receive, send)


async def _unprocessable(problems: list[Problem], scope: Scope, rcv: Receive, snd: Send) -> None:
    errors = [{"loc": list(p.loc), "msg": p.msg} for p in problems]
    detail = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems)
    response = problem_response(422, "Validation failed", detail, problems[0].code, errors=errors)
    await response(scope, rcv, snd)
