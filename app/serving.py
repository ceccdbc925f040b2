"""How the gateway is served: uvicorn, with a cap on the request head.

Neither HTTP parser uvicorn uses bounds a request's headers by default where it matters:
httptools buffers a header of any size, and h11 allows 16 KiB per event only when told.
A request whose request line and headers pass `MAX_HEADER_BYTES` is answered 431
problem+json and its connection closed, before the application sees anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.errors import PROBLEM_JSON, problem

MAX_HEADER_BYTES = 64 * 1024
LINGER_S = 2.0
"""After the 431, how long the rest of the request is read and dropped. Closing at once
with unread bytes would make the kernel reset the connection, and a client still
sending would lose the answer."""

log = logging.getLogger(__name__)


def head_too_large(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole 431 answer, as bytes on the wire."""
    body = json.dumps(
        problem(
            431,
            "Request header fields too large",
            f"the request line and headers are over {MAX_HEADER_BYTES} bytes",
            "request_header_fields_too_large",
            limit=MAX_HEADER_BYTES,
        )
    ).encode()
    lines = [b"HTTP/1.1 431 Request Header Fields Too Large"]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: " + PROBLEM_JSON.encode(),
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def answer_and_linger(transport: asyncio.Transport, answer: bytes | None) -> None:
    """Send `answer`, half-close, drop what still arrives for LINGER_S, then close."""
    if answer is not None:
        transport.write(answer)
    if not transport.can_write_eof():  # TLS
        transport.close()
        return
    transport.write_eof()
    asyncio.get_running_loop().call_later(LINGER_S, transport.close)


class LimitedH11Protocol(H11Protocol):
    """h11 raises a protocol error past `h11_max_incomplete_event_size`; answer it 431."""

    _refused = False

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) <= MAX_HEADER_BYTES:
            super().send_400_response(msg)
            return
        self._refused = True
        log.warning("request head over %d bytes: 431", MAX_HEADER_BYTES)
        answer_and_linger(self.transport, head_too_large(self.server_state.default_headers))

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()
        else:
            super().eof_received()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    HTTP_PROTOCOL: type[Any] = LimitedH11Protocol
else:

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        """Counts the bytes fed to the parser while a request's head is incomplete."""

        _in_head = False
        _head_bytes = 0
        _refused = False

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if not self._in_head:
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse()

        def eof_received(self) -> None:
            if self._refused:
                self.transport.close()
            else:
                super().eof_received()

        def _refuse(self) -> None:
            self._refused = True
            log.warning("request head over %d bytes: 431", MAX_HEADER_BYTES)
            answering = self.cycle is not None and not self.cycle.response_complete
            # Mid-way through a pipelined response there is no room for another one.
            answer = None if answering else head_too_large(self.server_state.default_headers)
            answer_and_linger(self.transport, answer)

    HTTP_PROTOCOL = LimitedHttpToolsProtocol


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's Config with the head limit, for `motion-gateway serve` and the tests."""
    options.setdefault("http", HTTP_PROTOCOL)
    return uvicorn.Config(app, h11_max_incomplete_event_size=MAX_HEADER_BYTES, **options)
