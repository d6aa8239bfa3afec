"""``aiouws tap publish --metadata`` and ``aiouws tap describe``: the README's
example file, as written, publishes a table with everything it says; bad files
exit with status 2 naming the file and key; describe's output publishes the same
TAP_SCHEMA rows; pyvo reads the declared types and the row count."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
import pyvo
from liveserver import REPO_ROOT, start_server
from test_cli_startup import assert_failed_cleanly, command, run


def readme_metadata() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Publishing your own tables", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


async def _sql(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        if ";" in sql:  # statements without results
            await conn.execute(sql)
            return []
        return await conn.fetch(sql)
    finally:
        await conn.close()


MYTABLE_SQL = """
CREATE SCHEMA myschema;
CREATE TABLE myschema.fields (field_id integer PRIMARY KEY);
CREATE TABLE myschema.mytable (
    ra double precision, pm_ra real, pos double precision[], n integer,
    field_id integer,
    CONSTRAINT mytable_field_fk FOREIGN KEY (field_id)
        REFERENCES myschema.fields (field_id)
);
INSERT INTO myschema.fields VALUES (1);
INSERT INTO myschema.mytable VALUES
    (10.5, 1.5, '{10.5,-20.25}', 7, 1), (200, -2, '{200,45}', NULL, NULL);
"""


def _publish_readme_example(dsn: str, tmp_path: Path) -> Path:
    asyncio.run(_sql(dsn, MYTABLE_SQL))
    metadata = tmp_path / "mytable.toml"
    metadata.write_text(readme_metadata())
    argv = ["tap", "publish", "myschema.mytable", "--metadata", str(metadata)]
    result = run(command(dsn, tmp_path, *argv))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "published myschema.mytable\n"
    return metadata


async def _tap_schema(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of TAP_SCHEMA but its own tables', sorted."""
    found = {}
    for table in ("schemas", "tables", "columns", "keys", "key_columns"):
        rows = await _sql(dsn, f"SELECT * FROM tap_schema.{table}")
        found[table] = sorted(
            (tuple(r) for r in rows if "tap_schema" not in str(tuple(r))), key=repr
        )
    return found


def test_readme_metadata_example_publishes(fresh_dsn: str, tmp_path: Path) -> None:
    _publish_readme_example(fresh_dsn, tmp_path)
    (table,) = asyncio.run(
        _sql(
            fresh_dsn,
            "SELECT t.description, t.utype, t.table_index, t.nrows,"
            " s.description AS sd, s.utype AS su, s.schema_index AS si"
            " FROM tap_schema.tables t JOIN tap_schema.schemas s USING (schema_name)"
            " WHERE table_name = 'myschema.mytable'",
        )
    )
    assert table["description"] == "Proper motions of the brightest stars"
    assert table["utype"] == "ivo://example.org/dm/stars#table"
    assert (table["table_index"], table["nrows"]) == (1, 2)
    assert tuple(table)[4:] == ("My survey", "ivo://example.org/dm/survey", 1)
    columns = {
        r["column_name"]: tuple(r)[1:]
        for r in asyncio.run(
            _sql(
                fresh_dsn,
                "SELECT column_name, unit, ucd, principal, std, utype IS NOT NULL,"
                " datatype, arraysize, xtype, indexed, column_index"
                " FROM tap_schema.columns WHERE table_name = 'myschema.mytable'",
            )
        )
    }
    assert columns == {
        "ra": ("deg", "pos.eq.ra;meta.main", 1, 0, True, "double", None, None, 0, 1),
        "pm_ra": ("mas/yr", "pos.pm;pos.eq.ra", 0, 0, False, "float", None, None, 0, 9),
        "pos": (None, None, 1, 0, False, "double", "2", "point", 0, 3),
        "n": (None, None, 1, 0, False, "long", None, None, 1, 4),
        "field_id": (None, None, 1, 0, False, "int", None, None, 0, 5),
    }


@pytest.mark.parametrize(
    "toml, key, problem",
    [
        ("description = ", "", "not valid TOML"),
        ('[columns.x]\nunits = "deg"\n', "columns.x.units", "unknown key"),
        ("[columns.x]\nprincipal = 1\n", "columns.x.principal", "must be a boolean"),
        ('[columns.nope]\nunit = "m"\n', "columns.nope", "has no such column"),
        ('[columns.x]\ndatatype = "float64"\n', "columns.x.datatype", "no VOTable"),
        ('[columns.x]\narraysize = "2"\n', "columns.x.arraysize", "cannot be"),
        ("table_index = 1.5\n", "table_index", "must be an integer, not a number"),
        ("[tables.u]\n", "tables.t", "no such table in this file"),
        (
            '[tables.t.columns.nope]\nunit = "m"\n',
            "tables.t.columns.nope",
            "s2.t has no such column",
        ),
        ('[schema]\nname = "s2"\n', "schema.name", "unknown key"),
    ],
)
def test_bad_metadata_files_exit_2_naming_file_and_key(
    fresh_dsn: str, tmp_path: Path, toml: str, key: str, problem: str
) -> None:
    asyncio.run(_sql(fresh_dsn, "CREATE SCHEMA s2; CREATE TABLE s2.t (x int)"))
    metadata = tmp_path / "m.toml"
    metadata.write_text(toml)
    argv = ["tap", "publish", "s2.t", "--metadata", str(metadata)]
    result = run(command(fresh_dsn, tmp_path, *argv))
    assert_failed_cleanly(result, 2, f"aiouws: {metadata}: {key}", problem)
    published = "SELECT count(*) FROM tap_schema.tables WHERE table_name = 's2.t'"
    assert asyncio.run(_sql(fresh_dsn, published))[0][0] == 0


def test_a_table_file_cannot_publish_a_schema(fresh_dsn: str, tmp_path: Path) -> None:
    metadata = tmp_path / "m.toml"
    metadata.write_text('description = "x"\n')
    argv = ["tap", "publish", "s2", "--metadata", str(metadata)]
    result = run(command(fresh_dsn, tmp_path, *argv))
    assert_failed_cleanly(result, 2, f"{metadata}: a table file")


def test_describe_output_publishes_the_same_rows(
    fresh_dsn: str, tmp_path: Path
) -> None:
    _publish_readme_example(fresh_dsn, tmp_path)
    before = asyncio.run(_tap_schema(fresh_dsn))
    for target in ("myschema.mytable", "myschema"):
        described = run(command(fresh_dsn, tmp_path, "tap", "describe", target))
        assert described.returncode == 0, described.stderr
        assert described.stdout.startswith("# Metadata of the ")
        assert 'xtype = "point"' in described.stdout
        path = tmp_path / "described.toml"
        path.write_text(described.stdout)
        asyncio.run(
            _sql(
                fresh_dsn,
                "DELETE FROM tap_schema.schemas WHERE schema_name = 'myschema';",
            )
        )
        argv = ["tap", "publish", target, "--metadata", str(path)]
        result = run(command(fresh_dsn, tmp_path, *argv))
        assert result.returncode == 0, result.stderr
        assert asyncio.run(_tap_schema(fresh_dsn)) == before, target


def test_pyvo_reads_declared_types_and_row_counts(
    fresh_dsn: str, tmp_path: Path
) -> None:
    _publish_readme_example(fresh_dsn, tmp_path)
    server = start_server(fresh_dsn, tmp_path / "server", demo_rows=0)
    try:
        tap = pyvo.dal.TAPService(server.tap_url)
        table = tap.tables["myschema.mytable"]
        assert table.nrows == 2
        columns = {c.name: c for c in table.columns}
        pos = columns["pos"].datatype
        # pyvo 1.10 parses extendedType, but its getter lacks the return
        # (vodataservice.DataType.extendedtype): read the parsed value.
        xtype = pos._extendedtype
        assert (pos.content, pos.arraysize, xtype) == ("double", "2", "point")
        assert columns["n"].datatype.content == "long"
        assert [c.name for c in table.columns][:2] == ["ra", "pos"]
        result = tap.run_sync("SELECT pos, n FROM myschema.mytable ORDER BY ra")
        fields = {f.name: f for f in result.fielddescs}
        assert (fields["pos"].datatype, fields["pos"].arraysize) == ("double", "2")
        assert fields["pos"].xtype == "point" and fields["n"].datatype == "long"
        assert [list(p) for p in result["pos"]] == [[10.5, -20.25], [200.0, 45.0]]
    finally:
        server.stop()
