"""Compressed input expanded as it is read, before astropy sees it.

Uploads and ``tap load`` may be gzip, bzip2 or xz compressed. astropy's
``get_readable_fileobj`` (which ``votable.parse`` and its XML iterator open
files with) would expand them too, but it copies a bzip2 document whole into
memory and into a temporary file it never removes (astropy 8.0.2): every such
upload left a file in the runner's temporary directory. Here the standard
library's decompressors read the file as a stream (memory one block), and
astropy is given either the path of a document that starts like none of the
formats it sniffs (it then reads the file itself, taking no branch) or a read
function (which it uses as it is).

One layer is expanded, as astropy does; a document that only starts like a
compressed one is read as it is. LZW (``.Z``) is not expanded (astropy needs
an optional package for it, which is not installed): read as it is, such a
document is not XML.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["Expanded", "open_expanded", "starts_compressed", "xml_source"]

#: First bytes of the formats astropy's get_readable_fileobj sniffs (a
#: superset of its tests: gzip, bzip2, xz, LZW).
_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x1f\x9d")

_Stream = gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile
_OPENERS: tuple[tuple[bytes, Callable[[IO[bytes]], _Stream]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(raw, mode="rb")),
    (b"\xfd7zXZ\x00", lambda raw: lzma.LZMAFile(raw, mode="rb")),
)


def starts_compressed(head: bytes) -> bool:
    """Whether ``head`` (a document's first bytes, six are enough) starts like
    one of the compressed formats astropy sniffs."""
    return head.startswith(_MAGICS)


class Expanded:
    """An open input: ``stream`` reads its (expanded) bytes."""

    def __init__(self, stream: io.BufferedIOBase, compressed: bool) -> None:
        self.stream = stream
        #: True when ``stream`` expands the file (False: the file's own bytes).
        self.compressed = compressed


@contextmanager
def open_expanded(path: Path) -> Iterator[Expanded]:
    """``path`` opened for reading, expanded as read if compressed."""
    with open(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        for magic, opener in _OPENERS:
            if head.startswith(magic):
                stream = opener(raw)
                try:
                    stream.peek(1)
                except (OSError, EOFError, lzma.LZMAError):
                    stream.close()  # only starts like one: read as it is
                    raw.seek(0)
                    break
                with stream:
                    yield Expanded(stream, compressed=True)
                return
        yield Expanded(raw, compressed=False)


@contextmanager
def xml_source(path: Path) -> Iterator[str | Callable[[int], bytes]]:
    """What to give astropy's ``votable.parse`` or ``get_xml_iterator`` for
    ``path``: its name when astropy would read it as it is, else a read
    function of its expanded bytes (astropy does not sniff those again)."""
    with open(path, "rb") as raw:
        head = raw.read(6)
    if not starts_compressed(head):
        yield str(path)
        return
    with open_expanded(path) as expanded:
        yield expanded.stream.read
