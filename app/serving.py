"""How the gateway is served: uvicorn, with a cap on the request head.

Neither HTTP parser uvicorn uses bounds a request's headers by default where it matters:
httptools buffers a header of any size, and h11 allows 16 KiB per event only when told.
A request whose request line and headers pass `MAX_HEADER_BYTES` is answered 431
problem+json and its connection closed, before the application sees anything.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.errors import PROBLEM_JSON, problem

MAX_HEADER_BYTES = 64 * 1024

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


class LimitedH11Protocol(H11Protocol):
    """h11 raises a protocol error past `h11_max_incomplete_event_size`; answer it 431."""

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) <= MAX_HEADER_BYTES:
            super().send_400_response(msg)
            return
        log.warning("request head over %d bytes: 431", MAX_HEADER_BYTES)
        self.transport.write(head_too_large(self.server_state.default_headers))
        self.transport.close()


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

        def _refuse(self) -> None:
            self._refused = True
            log.warning("request head over %d bytes: 431", MAX_HEADER_BYTES)
            answering = self.cycle is not None and not self.cycle.response_complete
            if not answering:  # mid-way through a pipelined response there is no room for one
                self.transport.write(head_too_large(self.server_state.default_headers))
            self.transport.close()

    HTTP_PROTOCOL = LimitedHttpToolsProtocol


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's Config with the head limit, for `motion-gateway serve` and the tests."""
    return uvicorn.Config(
        app, http=HTTP_PROTOCOL, h11_max_incomplete_event_size=MAX_HEADER_BYTES, **options
    )
