"""An uploaded VOTable's size, checked BEFORE it is parsed.

astropy expands every row to its FIELDs' declared sizes: one FIELD declaring
``arraysize="5000000"`` turns a 262-byte TABLEDATA upload into 40 MB per row, then
a Python list. :func:`check_upload` reads only the FIELDs and counts the rows
(lxml's ``iterparse``, elements freed as it goes, entities and the network off)
and refuses, naming the limit (``TapSettings``):

* a FIELD whose one value would take more than ``tap_value_bytes``;
* more values (rows x FIELDs) than ``tap_upload_cells``;
* values that take more than ``tap_upload_data_bytes`` at their declared sizes.

Rows of a BINARY or BINARY2 stream are not counted but bounded: the stream's
decoded bytes over the smallest row. A document lxml cannot read is left to the
parser, which reports it.

That check is for documents parsed whole (a FITS serialisation). Streamed ones
(:mod:`.uploadstream`, which never expands a declared size) are checked with
the same functions and messages: :func:`check_fields` on the FIELDs before any
row is read, :func:`check_rows` as the rows arrive (counted exactly).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from taprunner.errors import TapUsageError
from taprunner.settings import TapSettings

__all__ = [
    "UploadLimits",
    "check_fields",
    "check_rows",
    "check_upload",
    "declared_bytes",
    "too_large",
]

#: Bytes of one element of each VOTable datatype.
_ELEMENT_BYTES = {
    "boolean": 1,
    "bit": 1,
    "unsignedByte": 1,
    "char": 1,
    "unicodeChar": 2,
    "short": 2,
    "int": 4,
    "float": 4,
    "long": 8,
    "double": 8,
    "floatComplex": 8,
    "doubleComplex": 16,
}


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """How large one uploaded table may be (see the module's docstring)."""

    value_bytes: int
    cells: int
    data_bytes: int

    @classmethod
    def of(cls, tap: TapSettings) -> UploadLimits:
        return cls(tap.value_bytes, tap.upload_cells, tap.upload_data_bytes)


@dataclass(slots=True)
class _Scan:
    fields: list[tuple[str, int, int]]  # name, declared and least bytes of a value
    rows: int = 0  # TRs
    stream_bytes: int = 0  # decoded bytes of BINARY/BINARY2 streams
    binary2: bool = False  # a BINARY2 stream: a row starts with its NULL flags

    def stream_rows(self) -> int:
        """The most rows the streams can hold (each at least its least bytes)."""
        least = sum(size for _, _, size in self.fields)
        if self.binary2:
            least += (len(self.fields) + 7) // 8
        return self.stream_bytes // max(1, least)


def too_large(name: str, max_bytes: int) -> str:
    """The message refusing an upload of more than ``max_bytes`` bytes."""
    return f"upload {name!r} is larger than the limit of {max_bytes} bytes"


def check_upload(name: str, data: bytes, limits: UploadLimits) -> None:
    """Refuse upload ``name`` (VOTable ``data``) if it is too large once parsed.

    Raises
    ------
    TapUsageError
        Naming the limit exceeded and the setting that holds it.
    """
    scan = _scan(data)
    if scan is None or not scan.fields:
        return  # not a VOTable lxml can read: the parser says what is wrong
    declared = [(field, size) for field, size, _ in scan.fields]
    check_fields(name, declared, limits)
    check_rows(name, scan.rows + scan.stream_rows(), declared, limits)


def check_fields(
    name: str, declared: Sequence[tuple[str, int]], limits: UploadLimits
) -> None:
    """Refuse upload ``name`` if one value of a FIELD (``(name, declared
    bytes)``, :func:`declared_bytes`) would take more than ``tap_value_bytes``."""
    for field, size in declared:
        if size > limits.value_bytes:
            raise TapUsageError(
                f"upload {name!r}: FIELD {field!r} declares values of {size} bytes,"
                f" more than the limit of {limits.value_bytes} (tap_value_bytes)"
            )


def check_rows(
    name: str, rows: int, declared: Sequence[tuple[str, int]], limits: UploadLimits
) -> None:
    """Refuse upload ``name`` if ``rows`` rows of these FIELDs hold more values
    than ``tap_upload_cells`` or take more than ``tap_upload_data_bytes`` at
    their declared sizes (a streaming reader calls it as rows arrive)."""
    row_bytes = sum(size for _, size in declared)
    cells = rows * len(declared)
    if cells > limits.cells:
        raise TapUsageError(
            f"upload {name!r} has {cells} values ({rows} rows x {len(declared)}"
            f" FIELDs), more than the limit of {limits.cells} (tap_upload_cells)"
        )
    if rows * row_bytes > limits.data_bytes:
        raise TapUsageError(
            f"upload {name!r}: its values take {rows * row_bytes} bytes at their"
            f" declared sizes, more than the limit of {limits.data_bytes}"
            " (tap_upload_data_bytes)"
        )


def declared_bytes(datatype: str, arraysize: str | None) -> int:
    """Bytes of one value of a FIELD at its declared size (a variable last
    dimension counts its bound, or one element)."""
    return _sizes(datatype, arraysize)[0]


def _scan(data: bytes) -> _Scan | None:
    """The FIELDs and rows of the first TABLE of ``data`` (None: unreadable)."""
    scan = _Scan([])
    parser = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        tag=("{*}TABLE", "{*}FIELD", "{*}TR", "{*}STREAM"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
    )
    tables = 0
    try:
        for event, element in parser:
            tag = etree.QName(element).localname
            if tag == "TABLE":
                tables += event == "start"
                if tables > 1:
                    break  # the parser reads the first table only
            elif event == "end" and tables == 1:
                if tag == "FIELD":
                    scan.fields.append(_declared(element))
                elif tag == "TR":
                    scan.rows += 1
                else:
                    scan.stream_bytes += _decoded(element.text or "")
                    parent = element.getparent()
                    scan.binary2 |= (
                        parent is not None
                        and etree.QName(parent).localname == "BINARY2"
                    )
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]  # freed as it goes
    except etree.XMLSyntaxError:
        return None
    return scan


def _decoded(text: str) -> int:
    """Bytes of base64 ``text`` once decoded."""
    blanks = sum(text.count(c) for c in " \t\r\n")
    return (len(text) - blanks - text.count("=")) * 3 // 4


def _declared(field: etree._Element) -> tuple[str, int, int]:
    """A FIELD's name, the bytes of one of its values at its declared size (a
    variable last dimension counts its bound, or one element) and the least
    bytes one takes in a binary stream (a variable one: its length, 4)."""
    name = str(field.get("name") or field.get("ID") or "?")
    size, least = _sizes(str(field.get("datatype")), field.get("arraysize"))
    return name, size, least


def _sizes(datatype: str, arraysize: str | None) -> tuple[int, int]:
    """Declared and least bytes of one value (see :func:`_declared`)."""
    element = _ELEMENT_BYTES.get(datatype, 8)
    arraysize = str(arraysize or "1")
    count = 1
    for part in arraysize.split("x"):
        digits = part.strip().rstrip("*")
        count *= int(digits) if digits.isdigit() else 1
    least = 4 if arraysize.endswith("*") else element * count
    return element * count, least
