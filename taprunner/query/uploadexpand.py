"""A compressed upload expanded once, into a file next to it, within the byte limit.

A gzip, bzip2 or xz upload is held to the upload byte limit once expanded. That
took a pass of its own, which expanded the whole document only to count its
bytes, before the readers (:mod:`.uploadstream`, through
:func:`taprunner.load.expand.open_expanded`) expanded it again: twice the
runner's CPU, and bzip2 expands at some 30-50 MB/s. Now that one pass writes
what it expands into a file beside the upload (the job's directory, the sync
spool, or the temporary directory of a fetched URL), and the readers read that
plain file: one expansion, and their short passes (the FIELDs, the STREAM's
offset) read plain bytes too.

The pass reads the whole stream as before, so what it refused is still
refused, with the same messages: more than the limit once expanded (refused
within one chunk past it, and no more than the limit written), a truncated or
garbled stream, a bad CRC at its end. Memory holds one chunk. The file takes up
to the limit on that disk while the upload loads, and is removed when it has
(a full disk is said as such, as for any file of a job). One layer is expanded,
as before: a document whose expansion starts like a compressed one was read as
it was, which is no XML; it is refused, saying why.

Why not count the bytes as the readers expand them instead (no file)? The
readers stop at the end of the first TABLE: what follows, and gzip's CRC (its
only check, at the very end), would go unread unless every reader drained its
stream, and the limit and the upload's name would have to reach the readers
:mod:`taprunner.load` shares with ``tap load``.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from taprunner.errors import TapUsageError
from taprunner.query.uploadlimits import too_large

__all__ = ["expanded_upload"]

#: Bytes expanded and written at a time.
CHUNK = 1024 * 1024
#: The expanded file's name starts so: never a stored job file's name (those
#: start with a letter or digit), nor a client's.
_PREFIX = ".expanded-"


@asynccontextmanager
async def expanded_upload(name: str, path: Path, max_bytes: int) -> AsyncIterator[Path]:
    """The file to read upload ``name`` from: ``path`` itself unless it is
    compressed, else its expansion, in a file beside it removed on exit.

    Raises
    ------
    TapUsageError
        More than ``max_bytes`` once expanded, a damaged compressed stream, or
        one compressed twice.
    """
    if not await asyncio.to_thread(_looks_compressed, path):
        yield path
        return
    # Created here, not in the thread: removed however the task ends (a
    # thread still writing when it is cancelled writes to an unlinked file).
    handle, spool = tempfile.mkstemp(prefix=_PREFIX, dir=path.parent)
    os.close(handle)
    target = Path(spool)
    try:
        compressed = await asyncio.to_thread(_expand, name, path, target, max_bytes)
        yield target if compressed else path
    finally:
        target.unlink(missing_ok=True)


def _looks_compressed(path: Path) -> bool:
    from taprunner.load.expand import starts_compressed

    with open(path, "rb") as raw:
        return starts_compressed(raw.read(6))


def _expand(name: str, path: Path, target: Path, max_bytes: int) -> bool:
    """``path`` expanded into ``target`` (an empty file); False, nothing
    written, if it only starts like a compressed document (read as it is)."""
    from taprunner.load.expand import open_expanded, starts_compressed

    size = 0
    # "r+b": a target removed meanwhile (the task cancelled) is not made again
    with open(target, "r+b") as out, ExitStack() as stack:
        try:
            expanded = stack.enter_context(open_expanded(path))
        except Exception as exc:  # noqa: BLE001  (the client's bytes)
            raise _invalid(name, str(exc)) from exc
        if not expanded.compressed:
            return False
        while chunk := _read(name, expanded.stream):
            if size == 0 and starts_compressed(chunk):
                raise _invalid(
                    name,
                    "it is compressed twice (one layer of gzip, bzip2 or xz"
                    " is expanded)",
                )
            size += len(chunk)
            if size > max_bytes:
                raise TapUsageError(too_large(name, max_bytes))
            out.write(chunk)  # a full disk raises here: not the client's fault
    return True


def _read(name: str, stream: io.BufferedIOBase) -> bytes:
    """The next chunk (a whole one until the end: the streams are buffered)."""
    try:
        return stream.read(CHUNK)
    except Exception as exc:  # noqa: BLE001  (the client's bytes)
        raise _invalid(name, str(exc)) from exc


def _invalid(name: str, reason: str) -> TapUsageError:
    return TapUsageError(f"upload {name!r} is not a valid VOTable: {reason}")
