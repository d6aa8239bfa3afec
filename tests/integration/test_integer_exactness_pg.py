"""ROUND, TRUNCATE and MOD keep integers exact only where the value is known to
be an integer (Fragment.integer): never for a set operation's column that is an
integer in one branch only."""

from __future__ import annotations

import asyncpg
import pytest
from testkit import DbSetup

from taprunner.adql.translate import translate
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.metadata import TableMetadata

SETUP = """
CREATE SCHEMA tst;
CREATE TABLE tst.obj (id integer PRIMARY KEY, mag real);
INSERT INTO tst.obj VALUES (1, 25.0), (2, 2.675);
CREATE TABLE tst.big (id integer, s smallint);
INSERT INTO tst.big VALUES (1, 25);
"""


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True,
        sql=SETUP,
        published={
            "tst.obj": TableMetadata(columns=()),
            "tst.big": TableMetadata(columns=()),
        },
    )


async def test_round_of_a_union_of_integers_and_reals_keeps_its_decimals(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """A set operation's column is an integer only if every branch's is: an
    integer column in the first branch does not make ROUND cut the others'."""
    for second in ("mag FROM tst.obj", "id * 1.3375 FROM tst.obj"):
        adql = (
            "SELECT ROUND(v, 1), TRUNCATE(v, 1), MOD(v, 2) FROM"
            f" (SELECT s AS v FROM tst.big WHERE id = 1 UNION ALL SELECT {second}"
            " WHERE id = 2) AS u ORDER BY 1"
        )
        rows = [tuple(r) for r in await conn.fetch(translate(adql, catalog).sql)]
        assert rows == [(2.7, 2.6, pytest.approx(0.675, abs=1e-6)), (25, 25, 1)]
