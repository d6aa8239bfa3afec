"""Protocol parameters, parsed once at the edge, case-insensitively, into typed values.

IVOA parameter names are case-insensitive (``PHASE``, ``phase``, ``Phase``); their
values are not. Every malformed value raises :class:`~aiouws.errors.UsageError`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import BodyPartReader, web

from aiouws.errors import PayloadTooLarge, UsageError
from aiouws.phases import Action, Phase
from aiouws.timefmt import parse_iso
from aiouws.uploads import Upload
from aiouws.workdir import safe_file_name

__all__ = [
    "UWS_RESERVED",
    "Params",
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
        else:
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge as exc:
                raise PayloadTooLarge("request body too large") from exc
            except (ValueError, LookupError) as exc:
                raise UsageError(f"cannot read the request body: {exc}") from exc
            params.items.extend(
                (k.lower(), v) for k, v in form.items() if isinstance(v, str)
            )
    for name, value in params.items:
        if "\x00" in name or "\x00" in value:
            params.discard_uploads()
            raise UsageError(f"parameter {name.upper()!r} contains a NUL character")
    return params


@dataclass
class _Budget:
    """What a multipart body may still bring: file bytes, text bytes, parts."""

    files: int
    text: int
    parts: int = 1000

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
        params.uploads.append(Upload(name=name, path=path))


async def _text(part: BodyPartReader, budget: _Budget) -> str:
    chunks = []
    while chunk := await part.read_chunk(_CHUNK):
        budget.text -= len(chunk)
        if budget.text < 0:
            raise PayloadTooLarge("form fields of the request are too large")
        chunks.append(chunk)
    data = await _decoded(part, b"".join(chunks))
    try:
        return data.decode(part.get_charset(default="utf-8"))
    except (LookupError, UnicodeDecodeError) as exc:
        raise UsageError(f"part {part.name!r} is not valid text: {exc}") from exc


async def _decoded(part: BodyPartReader, data: bytes) -> bytes:
    """Undo a part's Content-Transfer-Encoding, if it declares one."""
    if "Content-Transfer-Encoding" not in part.headers:
        return data
    try:
        return part.decode(data)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"part {part.name!r}: {exc}") from exc


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
