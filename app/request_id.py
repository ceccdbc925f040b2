"""`X-Request-ID`: taken from the caller (or made), echoed, bound to every log line.

A pure ASGI middleware: no request object, no body buffering, one header added to the
response start. It is also where an unhandled error is answered, while the request id
is still bound, so the one log line of the failure carries it and the server never
logs the same error a second time.
"""

from __future__ import annotations

import logging
import re

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import unhandled_error_response
from app.ids import new_id

HEADER = b"x-request-id"
_ACCEPTABLE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger(__name__)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode("ascii") if _ACCEPTABLE.fullmatch(value) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode("ascii")
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                headers.append((HEADER, raw_id))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                response = unhandled_error_response(exc)
                if started:
                    return  # logged; the server closes the unfinished response
                await response(scope, receive, send_with_id)
