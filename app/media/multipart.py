"""Stream one file field out of a multipart body without buffering it whole.

Starlette's form parser spools the entire body before the handler runs, which would
let a client push gigabytes before any size check; this yields the file's bytes as they
arrive, so the storage layer can stop at the limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import Unprocessable
from app.validation import storable_text


class BadMultipart(Unprocessable):
    code = "invalid_multipart"


@dataclass
class _State:
    field_name: str
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)
    in_file: bool = False
    seen_file: bool = False
    filename: str | None = None
    pending: list[bytes] = field(default_factory=list)


def boundary_of(content_type: str | None) -> bytes:
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadMultipart("send multipart/form-data with a `file` field", loc=["body", "file"])
    return boundary


def _callbacks(state: _State) -> dict[str, object]:
    def on_part_begin() -> None:
        state.headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        # latin-1 both ways: any bytes decode, and parse_options_header encodes them back
        # losslessly (a UTF-8 filename included); decoding as UTF-8 failed on either side.
        field, value = state.header_field.decode("latin-1"), state.header_value.decode("latin-1")
        state.headers[field.lower()] = value
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        _, params = parse_options_header(state.headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode(errors="replace")
        state.in_file = name == state.field_name and not state.seen_file
        if state.in_file:
            state.seen_file = True
            raw = params.get(b"filename")
            state.filename = storable_text(raw.decode(errors="replace")) if raw else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.in_file:
            state.pending.append(bytes(data[start:end]))

    def on_part_end() -> None:
        state.in_file = False

    return {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }


class FileField:
    """`async for chunk in FileField(...)`; `.filename` once the part's headers are read."""

    def __init__(self, body: AsyncIterator[bytes], content_type: str | None, name: str = "file"):
        self._body = body
        self._state = _State(field_name=name)
        self._parser = MultipartParser(boundary_of(content_type), _callbacks(self._state))  # type: ignore[arg-type]

    @property
    def filename(self) -> str | None:
        return self._state.filename

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for raw in self._body:
                self._parser.write(raw)
                while self._state.pending:
                    yield self._state.pending.pop(0)
            self._parser.finalize()
        except MultipartParseError as exc:
            raise BadMultipart(f"malformed multipart body: {exc}", loc=["body"]) from exc
        while self._state.pending:
            yield self._state.pending.pop(0)
        if not self._state.seen_file:
            raise BadMultipart("no `file` field in the form", loc=["body", "file"])
