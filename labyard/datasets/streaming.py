"""Request bodies streamed to disk: memory stays flat whatever the upload's size.

`append_body` writes a raw body (a tus PATCH); `MultipartSink` feeds a multipart/form-data
body through python-multipart's streaming parser, each file part going straight into a
server-named work file. Both stop with TooLarge as soon as a limit is passed: the bytes,
the number of files, the number and size of text fields, and each part's headers (count
and size, python-multipart's limits). A body that does not parse is MalformedRequest (400).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from labyard.errors import InvalidInput, MalformedRequest, TooLarge

FLUSH_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_TEXT_FIELDS = 16  # the upload routes take a few named fields (path, extract)
MAX_PART_HEADERS = 8
MAX_HEADER_BYTES = 4096 + 128  # one header line of a part


async def append_body(request: Request, out: BinaryIO, *, limit: int, message: str) -> int:
    """Append the request body to `out` (at most `limit` bytes, else TooLarge); answer how
    many bytes were written. A client that disconnects keeps what arrived (ClientDisconnect
    propagates after the flush)."""
    written = 0
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            if written + len(buffer) + len(chunk) > limit:
                raise TooLarge(message)
            buffer += chunk
            if len(buffer) >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(out.write, bytes(buffer))
                written += len(buffer)
                buffer.clear()
    finally:
        if buffer:
            await anyio.to_thread.run_sync(out.write, bytes(buffer))
            written += len(buffer)
        await anyio.to_thread.run_sync(out.flush)
    return written


@dataclass
class FilePart:
    """One received file part: the client's file name and the work file holding it."""

    filename: str
    path: Path
    size: int = 0


@dataclass
class MultipartSink:
    """Parser callbacks that stream file parts to work files and keep small text fields."""

    new_file: Callable[[], Path]
    limit: int
    message: str
    max_files: int
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header_name: bytes = b""
    _header_value: bytes = b""
    _name: str = ""
    _value: bytearray = field(default_factory=bytearray)
    _out: BinaryIO | None = None
    _total: int = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_val,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self._value = {}, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            if len(self.files) >= self.max_files:
                raise TooLarge(f"One upload may carry at most {self.max_files} files.")
            part = FilePart(filename.decode("utf-8", "replace"), self.new_file())
            self.files.append(part)
            self._out = part.path.open("wb")
        elif len(self.fields) >= MAX_TEXT_FIELDS:
            raise TooLarge(f"One upload may carry at most {MAX_TEXT_FIELDS} text fields.")

    def _data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._out is not None:
            self._total += size
            if self._total > self.limit:
                raise TooLarge(self.message)
            self._out.write(data[start:end])
            self.files[-1].size += size
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise TooLarge(f"Form field {self._name[:100]!r} is longer than 64 KiB.")

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        else:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def parse_multipart(request: Request, sink: MultipartSink) -> None:
    """Stream a multipart/form-data body into `sink`; work files are the caller's to remove."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("Send the file as multipart/form-data.")
    try:
        parser = MultipartParser(
            boundary,
            sink.callbacks(),  # type: ignore[arg-type]
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_HEADER_BYTES,
        )
    except ValueError:
        raise MalformedRequest("The multipart boundary is not valid.") from None
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) >= FLUSH_BYTES:
                await _feed(parser, bytes(buffer))
                buffer.clear()
        if buffer:
            await _feed(parser, bytes(buffer))
        if parser.state != MultipartState.END:
            raise MalformedRequest("The multipart body ended before its closing boundary.")
    finally:
        sink.close()


async def _feed(parser: MultipartParser, data: bytes) -> None:
    """Parse `data` off the event loop; a body that does not parse is MalformedRequest."""
    try:
        await anyio.to_thread.run_sync(parser.write, data)
    except MultipartParseError as exc:
        raise MalformedRequest(f"The multipart body is malformed: {exc}") from None
