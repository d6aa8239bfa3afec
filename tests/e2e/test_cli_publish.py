"""``aiouws tap publish --metadata``: the README's example file, as written,
publishes a table with its descriptions, units, UCDs and utypes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
from liveserver import REPO_ROOT
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


def test_readme_metadata_example_publishes(fresh_dsn: str, tmp_path: Path) -> None:
    asyncio.run(
        _sql(
            fresh_dsn,
            "CREATE SCHEMA myschema; CREATE TABLE myschema.mytable"
            " (ra double precision, pm_ra real, n integer)",
        )
    )
    metadata = tmp_path / "m.toml"
    metadata.write_text(readme_metadata())
    argv = ["tap", "publish", "myschema.mytable", "--metadata", str(metadata)]
    result = run(command(fresh_dsn, tmp_path, *argv))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "published myschema.mytable\n"

    (table,) = asyncio.run(
        _sql(
            fresh_dsn,
            "SELECT t.description, t.utype, t.table_index, s.description AS sd"
            " FROM tap_schema.tables t JOIN tap_schema.schemas s USING (schema_name)"
            " WHERE table_name = 'myschema.mytable'",
        )
    )
    assert table["description"] == "Proper motions of the brightest stars"
    assert table["utype"] == "ivo://example.org/dm/stars#table"
    assert (table["table_index"], table["sd"]) == (1, "My survey")
    columns = {
        r["column_name"]: tuple(r)[1:]
        for r in asyncio.run(
            _sql(
                fresh_dsn,
                "SELECT column_name, unit, ucd, principal, std, utype IS NOT NULL"
                " FROM tap_schema.columns WHERE table_name = 'myschema.mytable'",
            )
        )
    }
    assert columns == {
        "ra": ("deg", "pos.eq.ra;meta.main", 1, 0, True),
        "pm_ra": ("mas/yr", "pos.pm;pos.eq.ra", 0, 0, False),
        "n": (None, None, 1, 0, False),
    }


def test_bad_metadata_names_the_key(fresh_dsn: str, tmp_path: Path) -> None:
    asyncio.run(_sql(fresh_dsn, "CREATE SCHEMA s2; CREATE TABLE s2.t (x int)"))
    metadata = tmp_path / "m.toml"
    metadata.write_text('[columns.x]\nunits = "deg"\n')
    argv = ["tap", "publish", "s2.t", "--metadata", str(metadata)]
    assert_failed_cleanly(run(command(fresh_dsn, tmp_path, *argv)), 1, "units")
