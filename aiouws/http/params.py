"""Protocol parameters, parsed once at the edge, case-insensitively, into typed values.

IVOA parameter names are case-insensitive (``PHASE``, ``phase``, ``Phase``); their
values are not. Every malformed value raises :class:`~aiouws.errors.UsageError`.
"""

from __future__ import annotations

import asyncio
import codecs
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from aiouws.errors import PayloadTooLarge, UsageError
from aiouws.phases import Action, Phase
from aiouws.timefmt import parse_iso
from aiouws.uploads import Upload
from aiouws.workdir import safe_file_name

__all__ = [
    "MAX_FIELDS",
    "UWS_RESERVED",
    "Params",
    "decode_urlencoded",
    "parse_action",
    "parse_after",
    "parse_destruction",
    "parse_duration",
    "parse_last",
    "parse_phases",
    "parse_wait",
    "read_params",
]

#: UWS control parameters of a job creation; everything else is a job parameter
#: (so a job kind may well have parameters called ACTION or WAIT).
UWS_RESERVED = frozenset({"phase", "runid", "executionduration", "destruction"})
_CHUNK = 256 * 1024
#: Most fields of a body, urlencoded or multipart (aiohttp's own default).
MAX_FIELDS = 1000
#: Bodies (and text parts) up to this size are decoded on the event loop (a few
#: milliseconds at most); bigger ones on a thread, in slices of this size.
INLINE_BYTES = 64 * 1024
#: Form media types whose body is urlencoded (aiohttp's ``post()`` reads both).
_URLENCODED = ("", "application/x-www-form-urlencoded")


@dataclass
class Params:
    """Request parameters with lowercased names, in the order they came."""

    items: list[tuple[str, str]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        for key, value in self.items:
            if key == name:
                return value
        return None

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.items if key == name]

    def multi(self) -> dict[str, list[str]]:
        """Name → all its values, in the order they came."""
        values: dict[str, list[str]] = {}
        for key, value in self.items:
            values.setdefault(key, []).append(value)
        return values

    def job_parameters(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.items if k not in UWS_RESERVED]

    def discard_uploads(self) -> None:
        for upload in self.uploads:
            upload.path.unlink(missing_ok=True)


async def read_params(
    request: web.Request,
    *,
    max_upload_bytes: int,
    spool_dir: Path,
    max_text_bytes: int = 16 * 1024 * 1024,
) -> Params:
    """Query string plus urlencoded or multipart body, names lowercased.

    Multipart file parts are spooled to ``spool_dir`` (at most ``max_upload_bytes``
    for all files of the request together) and returned as uploads; text parts
    may hold ``max_text_bytes`` in all. NUL characters are refused everywhere.
    """
    params = Params([(k.lower(), v) for k, v in request.query.items()])
    if request.method == "POST" and request.body_exists:
        if request.content_type.startswith("multipart/"):
            try:
                await _read_multipart(
                    request,
                    params,
                    _Budget(max_upload_bytes, max_text_bytes),
                    spool_dir,
                )
            except BaseException:
                params.discard_uploads()
                raise
        elif request.content_type in _URLENCODED:
            form = await _read_urlencoded(request, max_text_bytes)
            params.items.extend((k.lower(), v) for k, v in form)
    for name, value in params.items:
        if "\x00" in name or "\x00" in value:
            params.discard_uploads()
            raise UsageError(f"parameter {name.upper()!r} contains a NUL character")
    return params


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body over {limit:,} bytes (max_request_bytes); "
        "files go in multipart/form-data parts (max_upload_bytes)"
    )


async def _read_urlencoded(
    request: web.Request, max_bytes: int
) -> list[tuple[str, str]]:
    """The name-value pairs of an urlencoded body of at most ``max_bytes``.

    Read as it comes (aiohttp's own stream, so its read timeouts apply), refused
    as soon as it grows past the limit; decoded on a thread when it is big.
    """
    if (request.content_length or 0) > max_bytes:
        raise _too_large(max_bytes)
    charset = request.charset or "utf-8"
    try:
        ascii_compatible = "&=%+".encode(charset) == b"&=%+"
    except LookupError:
        ascii_compatible = False
    if not ascii_compatible:
        raise UsageError(f"unsupported charset of a form body: {charset!r}")
    body = bytearray()
    try:
        async for chunk in request.content.iter_any():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    except HttpProcessingError as exc:  # e.g. a broken chunked or gzip body
        raise UsageError(f"cannot read the request body: {exc.message}") from exc
    if len(body) <= INLINE_BYTES:
        return decode_urlencoded(bytes(body), charset)
    return await asyncio.to_thread(decode_urlencoded, bytes(body), charset)


def decode_urlencoded(body: bytes, charset: str = "utf-8") -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, as ``parse_qsl`` with
    ``keep_blank_values`` makes them (invalid bytes replaced), but with at most
    :data:`MAX_FIELDS` fields and never one long uninterruptible step: values
    are unquoted and decoded in slices of :data:`INLINE_BYTES`, so a thread
    doing it lets the event loop run between slices."""
    body = body.rstrip()
    if body.count(b"&") >= MAX_FIELDS:
        raise PayloadTooLarge(f"more than {MAX_FIELDS:,} fields in the request body")
    if len(body) <= INLINE_BYTES and body.isascii():
        # A small ASCII body (every form a client encodes): the library's parser
        # makes the same pairs, at less than half the cost.
        return parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding=charset,
            errors="replace",
        )
    pairs = []
    for field_ in body.split(b"&"):
        if field_:
            name, _, value = field_.partition(b"=")
            pairs.append((_unquote(name, charset), _unquote(value, charset)))
    return pairs


def _unquote(raw: bytes, charset: str) -> str:
    """``+`` and ``%XX`` undone, then decoded, one slice at a time (a slice never
    ends inside an escape; the decoder carries characters across slices)."""
    decoder = codecs.getincrementaldecoder(charset)("replace")
    out = []
    start = 0
    while start < len(raw):
        end = start + INLINE_BYTES
        if end < len(raw):
            cut = raw.find(b"%", end - 2, end)
            end = cut if cut != -1 else end
        piece = raw[start:end].replace(b"+", b" ")
        out.append(decoder.decode(unquote_to_bytes(piece) if b"%" in piece else piece))
        start = end
    out.append(decoder.decode(b"", final=True))
    return "".join(out)


@dataclass
class _Budget:
    """What a multipart body may still bring: file bytes, text bytes, parts."""

    files: int
    text: int
    parts: int = MAX_FIELDS

    def take_part(self) -> None:
        self.parts -= 1
        if self.parts < 0:
            raise PayloadTooLarge("too many parts in the multipart body")


async def _read_multipart(
    request: web.Request, params: Params, budget: _Budget, spool_dir: Path
) -> None:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise UsageError(f"malformed multipart body: {exc}") from exc
    while True:
        try:
            part = await reader.next()
        except ValueError as exc:
            raise UsageError(f"malformed multipart body: {exc}") from exc
        except HttpProcessingError as exc:  # e.g. a part's header is invalid
            raise UsageError(f"malformed multipart body: {exc.message}") from exc
        if part is None:
            return
        if not isinstance(part, BodyPartReader) or not part.name:
            raise UsageError("multipart parts must be named form fields")
        name = part.name
        budget.take_part()
        try:
            if part.filename is None:
                params.items.append((name.lower(), await _text(part, budget)))
                continue
            safe_file_name(name)
            path = await _spool(part, budget, spool_dir)
        except ValueError as exc:  # truncated or malformed part
            raise UsageError(f"malformed multipart body: {exc}") from exc
        except HttpProcessingError as exc:
            raise UsageError(f"malformed multipart body: {exc.message}") from exc
        params.uploads.append(Upload(name=name, path=path))


async def _text(part: BodyPartReader, budget: _Budget) -> str:
    chunks = []
    while chunk := await part.read_chunk(_CHUNK):
        budget.text -= len(chunk)
        if budget.text < 0:
            raise PayloadTooLarge(
                "form fields of the request are over max_request_bytes"
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) <= INLINE_BYTES:
        return _part_text(part, data)
    return await asyncio.to_thread(_part_text, part, data)


def _part_text(part: BodyPartReader, data: bytes) -> str:
    """A text part's bytes, its Content-Transfer-Encoding undone, decoded."""
    if "Content-Transfer-Encoding" in part.headers:
        try:
            data = bytes(part.decode(data))
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"part {part.name!r}: {exc}") from exc
    try:
        return data.decode(part.get_charset(default="utf-8"))
    except (LookupError, UnicodeDecodeError) as exc:
        raise UsageError(f"part {part.name!r} is not valid text: {exc}") from exc


async def _spool(part: BodyPartReader, budget: _Budget, spool_dir: Path) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=spool_dir, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(_CHUNK):
                budget.files -= len(chunk)
                if budget.files < 0:
                    raise PayloadTooLarge(
                        "uploaded files exceed the limit of the request"
                    )
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def parse_action(value: str | None) -> Action:
    if value is None:
        raise UsageError("PHASE parameter missing (RUN or ABORT)")
    try:
        return Action(value.strip().upper())
    except ValueError:
        raise UsageError(f"PHASE must be RUN or ABORT, not {value!r}") from None


def parse_wait(value: str | None, cap: float) -> float | None:
    """WAIT seconds; -1 means the configured cap; None when not given."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"WAIT must be a number of seconds, not {value!r}") from None
    if seconds != seconds or seconds < -1:
        raise UsageError("WAIT must be -1 or a non-negative number of seconds")
    return cap if seconds < 0 else min(seconds, cap)


def parse_phases(values: Iterable[str]) -> frozenset[Phase]:
    phases = set()
    for value in values:
        try:
            phases.add(Phase(value.strip().upper()))
        except ValueError:
            raise UsageError(f"unknown PHASE {value!r}") from None
    return frozenset(phases)


def parse_after(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise UsageError(f"AFTER: {exc}") from None


def parse_last(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        last = int(value)
    except ValueError:
        raise UsageError(f"LAST must be a positive integer, not {value!r}") from None
    if last <= 0:
        raise UsageError("LAST must be a positive integer")
    return last


def parse_duration(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"EXECUTIONDURATION must be seconds, not {value!r}") from None
    if seconds != seconds or seconds < 0 or seconds > 2**31 - 1:
        raise UsageError("EXECUTIONDURATION must be a non-negative number of seconds")
    return math.ceil(seconds)  # 0.5 s is half a second, not "unlimited"


#: The earliest destruction time taken (an earlier one is no job's: a mistake).
_EARLIEST_DESTRUCTION = datetime(1970, 1, 1, tzinfo=UTC)


def parse_destruction(value: str | None) -> datetime | None:
    """The DESTRUCTION asked; 400 for malformed or impossible times (before
    1970). A later one is clamped to the service's maximum lifetime."""
    if value is None:
        return None
    try:
        when = parse_iso(value)
    except ValueError as exc:
        raise UsageError(f"DESTRUCTION: {exc}") from None
    if when < _EARLIEST_DESTRUCTION:
        raise UsageError(f"DESTRUCTION: {value!r} is before 1970, not a job's time")
    return when
