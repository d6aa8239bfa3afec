"""``aiouws tap load``'s column types: the VOTable -> PostgreSQL mapping is the
output side's read backwards, and CSV types are inferred as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taprunner.load.columns import (
    LoadError,
    SourceColumn,
    normalise_names,
    numpy_datatype,
    pg_type,
)
from taprunner.load.textfile import open_delimited
from taprunner.schema.tapschema import votable_type

#: PostgreSQL type -> pg_type.typname, as tapschema.votable_type takes it.
TYPNAMES = {
    "boolean": "bool",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "text": "text",
    "timestamp": "timestamp",
}
#: Loaded as a wider type (PostgreSQL has no byte, no bit).
WIDENED = {"unsignedByte": "short", "bit": "boolean"}


@pytest.mark.parametrize(
    "datatype",
    ["boolean", "bit", "unsignedByte", "short", "int", "long", "float", "double"],
)
def test_scalars_come_back_as_loaded(datatype: str) -> None:
    loaded = pg_type(SourceColumn(name="x", datatype=datatype))
    published = votable_type(TYPNAMES[loaded])
    assert published == (WIDENED.get(datatype, datatype), None, None)
    array = pg_type(SourceColumn(name="x", datatype=datatype, arraysize="*"))
    assert array == loaded + "[]"
    assert votable_type(TYPNAMES[loaded], array=True)[:2] == (published[0], "*")


def test_strings_and_timestamps() -> None:
    for datatype in ("char", "unicodeChar"):
        text = pg_type(SourceColumn(name="s", datatype=datatype, arraysize="*"))
        assert votable_type(TYPNAMES[text]) == ("unicodeChar", "*", None)
        stamp = SourceColumn(
            name="t", datatype=datatype, arraysize="*", xtype="timestamp"
        )
        assert votable_type(TYPNAMES[pg_type(stamp)]) == ("char", "*", "timestamp")
    with pytest.raises(LoadError, match="doubleComplex"):
        pg_type(SourceColumn(name="c", datatype="doubleComplex"))


def test_numpy_types() -> None:
    assert numpy_datatype("a", np.dtype(">i8")) == ("long", None)
    assert numpy_datatype("a", np.dtype("u2")) == ("int", None)
    assert numpy_datatype("a", np.dtype(("f8", (2,)))) == ("double", "*")
    assert numpy_datatype("a", np.dtype("S8")) == ("unicodeChar", "*")
    with pytest.raises(LoadError, match="complex"):
        numpy_datatype("a", np.dtype("c16"))


def test_names_are_lowercased_when_regular() -> None:
    columns = [SourceColumn(name=n, datatype="int") for n in ("RA", "Weird Col")]
    assert [c.name for c in normalise_names(columns, "f")] == ["ra", "Weird Col"]
    twice = [SourceColumn(name=n, datatype="int") for n in ("RA", "ra")]
    with pytest.raises(LoadError, match="appears twice"):
        normalise_names(twice, "f")


def test_csv_inference(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "i,f,b,s,e,late\n1,1.5,true,x,,1\n-2,nan,FALSE,2,,2\n3,1e300,,y,,2.5\n"
    )
    inferred = open_delimited(path, ",", infer_rows=2)
    assert [(c.name, pg_type(c)) for c in inferred.columns] == [
        ("i", "bigint"),
        ("f", "double precision"),
        ("b", "boolean"),
        ("s", "text"),
        ("e", "text"),
        ("late", "bigint"),  # 2.5 comes after the rows read
    ]
    assert open_delimited(path, ",", infer_rows=3).columns[5].datatype == "double"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(LoadError, match="line 3 has 1 fields"):
        open_delimited(path, ",", infer_rows=10)
