"""CopyTranscoder against the TABLEDATA encoder on any text: rows written the
way PostgreSQL's text COPY writes them become the encoder's TR elements."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from taprunner.formats.cells import tabledata
from taprunner.formats.fields import FieldSpec
from taprunner.formats.tdcopy import CopyTranscoder, copy_columns, value_lengths

FIELDS = [
    FieldSpec("id", "long"),
    FieldSpec("s", "unicodeChar", "*"),
    FieldSpec("b", "boolean"),
    FieldSpec("t", "char", "*"),
]
#: PostgreSQL's text COPY escapes (CopyAttributeOutText).
_COPY = str.maketrans(
    {
        "\\": "\\\\",
        "\t": "\\t",
        "\n": "\\n",
        "\r": "\\r",
        "\b": "\\b",
        "\f": "\\f",
        "\v": "\\v",
    }
)
#: Any text PostgreSQL can hold (no NUL, no lone surrogates).
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
ROW = st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), TEXT),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), TEXT),
)


def _copy_text(rows: list[tuple[object, ...]]) -> bytes:
    lines = []
    for row in rows:
        cells = []
        for value in row:
            if value is None:
                cells.append("\\N")
            elif isinstance(value, bool):
                cells.append("T" if value else "F")  # spelt so by copy_select
            else:
                cells.append(str(value).translate(_COPY))
        lines.append("\t".join(cells) + "\n")
    return "".join(lines).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, max_size=8))
def test_transcoded_rows_are_the_encoders(rows: list[tuple[object, ...]]) -> None:
    assert CopyTranscoder(FIELDS).rows(_copy_text(rows)) == tabledata(FIELDS, rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), min_size=1, max_size=6))
def test_value_lengths_count_utf8_bytes(values: list[str | None]) -> None:
    cells = _copy_text([(v,) for v in values]).split(b"\n")[:-1]
    expected = [0 if v is None else len(v.encode()) for v in values]
    assert value_lengths(cells) == expected


def test_infinities_only_in_float_columns() -> None:
    fields = [FieldSpec("x", "double"), FieldSpec("s", "unicodeChar", "*")]
    lines = b"Infinity\tInfinity\n-Infinity\t-Infinity\nNaN\tx\n"
    assert CopyTranscoder(fields).rows(lines) == (
        b"<TR><TD>+Inf</TD><TD>Infinity</TD></TR>\n"
        b"<TR><TD>-Inf</TD><TD>-Infinity</TD></TR>\n"
        b"<TR><TD>NaN</TD><TD>x</TD></TR>\n"
    )
    numbers = [FieldSpec("x", "double"), FieldSpec("y", "float")]
    assert CopyTranscoder(numbers).rows(b"Infinity\t-Infinity\n\\N\tInfinity\n") == (
        b"<TR><TD>+Inf</TD><TD>-Inf</TD></TR>\n<TR><TD/><TD>+Inf</TD></TR>\n"
    )


def test_which_columns_take_the_copy_text_path() -> None:
    # Times, arrays of numbers and booleans, DALI geometries; not arrays of
    # texts, numerics, nor a spelt column whose name is not its own.
    ts = FieldSpec("t", "char", "*", xtype="timestamp")
    point = FieldSpec("p", "double", "2", xtype="point")
    polygon = FieldSpec("g", "double", "*", xtype="polygon")
    flags = FieldSpec("b", "boolean", "*")
    taken = [
        ([ts], ["timestamp"]),
        ([ts], ["timestamptz"]),
        ([ts], ["date"]),
        ([point, polygon], ["float8[]", "float8[]"]),
        ([flags], ["bool[]"]),
        ([FieldSpec("i", "short", "*")], ["int2[]"]),
    ]
    for fields, types in taken:
        assert copy_columns(fields, types, [f.name for f in fields]), types
    kept = [
        ([FieldSpec("s", "unicodeChar", "*")], ["text[]"]),
        ([FieldSpec("n", "double")], ["numeric"]),
        ([FieldSpec("i", "int", "*")], ["int2[]"]),  # declared wider
        ([FieldSpec("i", "long")], ["int8[]"]),  # a scalar FIELD of an array
    ]
    for fields, types in kept:
        assert not copy_columns(fields, types, [f.name for f in fields]), types
    assert not copy_columns([ts, ts], ["date", "date"], ["t", "t"])
