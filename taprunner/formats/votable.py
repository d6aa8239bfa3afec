"""Streaming VOTable writer: FIELDs, BINARY2/BINARY/TABLEDATA bodies, DALI errors.

The encoder produces bytes piece by piece (``header``, ``encode`` per batch, ``footer``)
and does no I/O, so memory stays flat however many rows go through it. Binary rows are
packed column-wise with numpy by :mod:`taprunner.formats.binpack`, not row by row in
Python; TABLEDATA cells come from :mod:`taprunner.formats.cells`.

Text columns are ``unicodeChar`` (UTF-16BE): astropy 8 decodes binary ``char`` as
ASCII only, so VOTable 1.5's UTF-8 ``char`` does not round-trip through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pybase64

from taprunner.formats.arrow import ArrowBatch, pack_batch
from taprunner.formats.binpack import BinaryPacker
from taprunner.formats.cells import tabledata, xml_attr, xml_text
from taprunner.formats.copypack import pack_copy
from taprunner.formats.fields import INT_NULL, FieldSpec, Row
from taprunner.formats.pgbinary import CopyBatch

__all__ = [
    "VOTableEncoder",
    "error_document",
]

Serialization = Literal["binary2", "binary", "tabledata"]
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


# --------------------------------------------------------------------------- document
def _attrs(pairs: Sequence[tuple[str, str | None]]) -> str:
    return "".join(f' {k}="{xml_attr(v)}"' for k, v in pairs if v is not None)


def _info(name: str, value: str, text: str | None) -> str:
    head = f"<INFO{_attrs([('name', name), ('value', value)])}"
    return f"{head}/>\n" if text is None else f"{head}>{xml_text(text)}</INFO>\n"


class VOTableEncoder:
    """Produces the bytes of one VOTable document, piece by piece (no I/O)."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        *,
        serialization: Serialization = "binary2",
        version: Literal["1.4", "1.5"] = "1.4",
        infos: Sequence[tuple[str, str, str | None]] = (),
        description: str | None = None,
    ) -> None:
        self.fields = list(fields)
        self.serialization = serialization
        self.version = version
        self.infos = list(infos)
        self.description = description
        self._packer = (
            None
            if serialization == "tabledata"
            else BinaryPacker(self.fields, binary2=serialization == "binary2")
        )
        self._carry = b""

    @property
    def packer(self) -> BinaryPacker | None:
        """The binary row packer (None for TABLEDATA)."""
        return self._packer

    def header(self) -> bytes:
        """Everything up to the opening ``<STREAM>`` or ``<TABLEDATA>``."""
        parts = [
            _XML_DECL,
            f'<VOTABLE version="{self.version}" xmlns="{VOTABLE_NS}">\n',
            '<RESOURCE type="results">\n',
        ]
        if self.description is not None:
            parts.append(f"<DESCRIPTION>{xml_text(self.description)}</DESCRIPTION>\n")
        parts.append(_info("QUERY_STATUS", "OK", None))
        parts.extend(_info(name, value, text) for name, value, text in self.infos)
        parts.append("<TABLE>\n")
        parts.extend(self._field_xml(field) for field in self.fields)
        if self.serialization == "tabledata":
            parts.append("<DATA><TABLEDATA>\n")
        else:
            parts.append(
                f'<DATA><{self.serialization.upper()}><STREAM encoding="base64">\n'
            )
        return "".join(parts).encode("utf-8")

    def _field_xml(self, field: FieldSpec) -> str:
        attrs = _attrs(
            [
                ("name", field.name),
                ("ID", field.ID),
                ("datatype", field.datatype),
                ("arraysize", field.arraysize),
                ("unit", field.unit),
                ("ucd", field.ucd),
                ("utype", field.utype),
                ("xtype", field.xtype),
            ]
        )
        body = ""
        if field.description is not None:
            body += f"<DESCRIPTION>{xml_text(field.description)}</DESCRIPTION>"
        if (
            self.serialization == "binary"
            and field.datatype in INT_NULL
            and field.datatype != "unsignedByte"
        ):
            body += f'<VALUES null="{INT_NULL[field.datatype]}"/>'
        return f"<FIELD{attrs}>{body}</FIELD>\n" if body else f"<FIELD{attrs}/>\n"

    def encode(self, rows: Sequence[Row]) -> bytes:
        """Encode a batch of rows (field order, ``None`` for NULL)."""
        if self._packer is None:
            return tabledata(self.fields, rows)
        return self._base64(self._packer.pack(rows).data)

    def encode_raw(self, row_bytes: bytes | memoryview) -> bytes:
        """Base64 text of already-encoded binary rows, carrying 0-2 bytes over."""
        if self._packer is None:
            raise ValueError("encode_raw needs a BINARY or BINARY2 serialization")
        return self._base64(memoryview(row_bytes))

    def encode_arrow(self, batch: ArrowBatch, count: int) -> bytes:
        """Base64 text of the first ``count`` rows of an Arrow batch, packed with
        numpy (:func:`taprunner.formats.arrow.pack_batch`).

        Raises UnsupportedArrow for a column it cannot pack."""
        if self._packer is None:
            raise ValueError("encode_arrow needs a BINARY or BINARY2 serialization")
        return self._base64(memoryview(pack_batch(self._packer, batch, count).data))

    def encode_copy(self, batch: CopyBatch) -> bytes:
        """Base64 text of a decoded binary COPY batch
        (:func:`taprunner.formats.copypack.pack_copy`)."""
        if self._packer is None:
            raise ValueError("encode_copy needs a BINARY or BINARY2 serialization")
        return self._base64(memoryview(pack_copy(self._packer, batch).data))

    def _base64(self, row_bytes: memoryview) -> bytes:
        data = row_bytes.cast("B")
        if self._carry:
            data = memoryview(b"".join((self._carry, data)))
        cut = len(data) - len(data) % 3
        self._carry = bytes(data[cut:])
        if cut == 0:
            return b""
        return _lines(data[:cut])

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes:
        """Close the data, the TABLE and the document.

        After the TABLE comes a trailing QUERY_STATUS: ERROR with ``error`` as its
        text when the query failed after rows were sent (DALI 1.1 section 4.4.1;
        clients take the last status), else OVERFLOW if ``overflow`` or ``cut``
        (a byte limit cut the result short; ``cut`` says how, as its text).
        """
        if self._packer is None:
            parts = ["</TABLEDATA></DATA>\n"]
        else:
            tail = _lines(self._carry) if self._carry else b""
            self._carry = b""
            kind = self.serialization.upper()
            parts = [tail.decode("ascii"), f"</STREAM></{kind}></DATA>\n"]
        parts.append("</TABLE>\n")
        if error is not None:
            parts.append(_info("QUERY_STATUS", "ERROR", error))
        elif overflow or cut is not None:
            parts.append(_info("QUERY_STATUS", "OVERFLOW", cut))
        parts.append("</RESOURCE>\n</VOTABLE>\n")
        return "".join(parts).encode("utf-8")


def _lines(data: bytes | memoryview) -> bytes:
    """``data`` in base64 as one line (what ``binascii.b2a_base64`` writes;
    pybase64's SIMD encoder takes a small fraction of its CPU)."""
    return pybase64.b64encode(data) + b"\n"


def error_document(message: str, *, version: str = "1.4") -> bytes:
    """DALI error VOTable: QUERY_STATUS=ERROR with ``message`` as the INFO text."""
    return (
        f'{_XML_DECL}<VOTABLE version="{xml_attr(version)}" xmlns="{VOTABLE_NS}">\n'
        '<RESOURCE type="results">\n'
        f"{_info('QUERY_STATUS', 'ERROR', message)}"
        "</RESOURCE>\n</VOTABLE>\n"
    ).encode()
