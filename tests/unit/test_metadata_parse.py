"""Metadata files as parsed, before any database: table and schema files, and
every kind of bad content refused with the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from taprunner.schema.describe import to_toml
from taprunner.schema.metadata import (
    ColumnMetadata,
    ForeignKeyMetadata,
    MetadataError,
    SchemaMetadata,
    TableMetadata,
    load_metadata,
    read_metadata_file,
)

TABLE_FILE = """
description = "Stars"
nrows = 12
[schema]
description = "Survey"
schema_index = 2
[columns.pos]
datatype = "double"
arraysize = "2"
xtype = "point"
indexed = false
column_index = 4
[columns."Odd Name"]
unit = ""
principal = false
[foreign_keys.stars_fk]
description = "Field"
"""


def _read(tmp_path: Path, text: str) -> TableMetadata | SchemaMetadata:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return read_metadata_file(path)


def test_table_file(tmp_path: Path) -> None:
    metadata = _read(tmp_path, TABLE_FILE)
    assert metadata == TableMetadata(
        description="Stars",
        nrows=12,
        schema_description="Survey",
        schema_index=2,
        columns=(
            ColumnMetadata(
                name="pos",
                datatype="double",
                arraysize="2",
                xtype="point",
                indexed=False,
                column_index=4,
            ),
            ColumnMetadata(name="Odd Name", principal=False),
        ),
        foreign_keys=(ForeignKeyMetadata(name="stars_fk", description="Field"),),
        source=str(tmp_path / "m.toml"),
    )


def test_schema_file_gives_each_table_the_schema(tmp_path: Path) -> None:
    text = '[schema]\nutype = "u"\n[tables.a]\n[tables.b.columns.x]\nunit = "m"\n'
    metadata = _read(tmp_path, text)
    assert isinstance(metadata, SchemaMetadata)
    assert metadata.utype == "u" and list(metadata.tables) == ["a", "b"]
    assert metadata.table("b").schema_utype == "u"
    assert metadata.table("b").column("x").unit == "m"
    with pytest.raises(MetadataError, match=r"m.toml: tables.c: no such table"):
        metadata.table("c")
    with pytest.raises(MetadataError, match="m.toml: tables: a schema file"):
        load_metadata(tmp_path / "m.toml")


def test_older_schema_description_spelling(tmp_path: Path) -> None:
    metadata = _read(tmp_path, 'schema_description = "S"\n')
    assert isinstance(metadata, TableMetadata)
    assert metadata.schema_description == "S"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", None),
        ("x = ", "m.toml: not valid TOML: "),
        ("colour = 1", "m.toml: colour: unknown key (known here: description,"),
        ("[columns.a]\nsize = 3", "m.toml: columns.a.size: unknown key"),
        ("columns = 3", "m.toml: columns: must be a table, not an integer"),
        ("[columns]\na = 3", "m.toml: columns.a: must be a table"),
        ("nrows = -1", "m.toml: nrows: must not be negative"),
        ("nrows = true", "m.toml: nrows: must be an integer, not a boolean"),
        ("table_index = '1'", "m.toml: table_index: must be an integer, not a string"),
        ("description = [1]", "m.toml: description: must be a string, not an array"),
        (
            "[columns.a]\ndatatype = 'float64'",
            "m.toml: columns.a.datatype: 'float64' is no VOTable datatype",
        ),
        (
            "[columns.a]\narraysize = '2x'",
            "m.toml: columns.a.arraysize: '2x' is no VOTable arraysize",
        ),
        ("[columns.a]\nstd = 'yes'", "m.toml: columns.a.std: must be a boolean"),
        ('[columns."b c"]\nucd = 1', 'm.toml: columns."b c".ucd: must be a string'),
        ("[foreign_keys.k]\nunit = 'm'", "m.toml: foreign_keys.k.unit: unknown key"),
        ("[schema]\nname = 's'", "m.toml: schema.name: unknown key"),
        ("[schema]\nschema_index = 1.5", "m.toml: schema.schema_index: must be an"),
        (
            "schema_description = 'a'\n[schema]\ndescription = 'b'",
            "m.toml: schema_description: the schema's description is given twice",
        ),
        ("[tables]\nt = 1", "m.toml: tables.t: must be a table, not an integer"),
        ("[tables.t]\nschema = {}", "m.toml: tables.t.schema: unknown key"),
        ("[tables.t]\n[columns.a]", "m.toml: columns: unknown key (known here:"),
        (
            "[tables.t.columns.a]\nxtype = 2",
            "m.toml: tables.t.columns.a.xtype: must be a string, not an integer",
        ),
    ],
)
def test_bad_files_name_file_key_and_problem(
    tmp_path: Path, text: str, message: str | None
) -> None:
    if message is None:
        assert _read(tmp_path, text) == TableMetadata(source=str(tmp_path / "m.toml"))
        return
    with pytest.raises(MetadataError) as caught:
        _read(tmp_path, text)
    assert str(caught.value).startswith(str(tmp_path / message)), caught.value


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="missing.toml: cannot read: No such"):
        read_metadata_file(tmp_path / "missing.toml")


def test_to_toml_reads_back(tmp_path: Path) -> None:
    document = {
        "description": 'quotes " and \\ and\nnewlines',
        "columns": {"Odd Name": {"unit": "m"}, "plain": {}},
    }
    text = to_toml(document, "line one\n\nline three")
    assert text.startswith("# line one\n#\n# line three\n\n")
    metadata = _read(tmp_path, text)
    assert isinstance(metadata, TableMetadata)
    assert metadata.description == document["description"]
    assert [c.name for c in metadata.columns] == ["Odd Name", "plain"]
