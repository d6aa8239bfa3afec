"""The demo catalogue: ``demo.stars``, random stars uniform on the sphere.

Deterministic (``setseed``) and fast: one ``INSERT ... SELECT`` from
``generate_series``, with the primary key and indexes built after the load.
"""

from __future__ import annotations

from taprunner.schema import tapschema
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import ColumnMetadata, TableMetadata

TABLE = "demo.stars"
SEED = 0.4242

STARS_METADATA = TableMetadata(
    description="Simulated stars, uniformly distributed on the sky (demo catalogue)",
    schema_description="Demonstration data for this TAP service",
    table_index=1,
    columns=(
        ColumnMetadata(
            name="id", description="Star identifier", ucd="meta.id;meta.main"
        ),
        ColumnMetadata(
            name="ra",
            description="Right ascension (ICRS)",
            unit="deg",
            ucd="pos.eq.ra;meta.main",
        ),
        ColumnMetadata(
            name="dec",
            description="Declination (ICRS)",
            unit="deg",
            ucd="pos.eq.dec;meta.main",
        ),
        ColumnMetadata(
            name="mag", description="Apparent magnitude", unit="mag", ucd="phot.mag"
        ),
        ColumnMetadata(name="name", description="Star designation", ucd="meta.id"),
    ),
)

# The stars are drawn in generate_series order in one non-parallel scan (the
# volatile random() keeps the subquery from being flattened), so setseed() makes
# the content reproducible. asin(2u - 1) makes dec uniform in sin(dec), i.e. the
# stars uniform on the sphere; magnitudes grow denser towards faint values, as
# real counts do. Ids follow HEALPix order, so that the heap is clustered on the
# sky: cone searches then touch few pages and the GiST build is faster. Without
# pg_sphere (TAP without geometry) they follow the draw, and there is no GiST.
_LOAD_SQL = """
CREATE SCHEMA IF NOT EXISTS demo;
DROP TABLE IF EXISTS demo.stars;
CREATE TABLE demo.stars (
    id   bigint NOT NULL,
    ra   double precision NOT NULL,
    dec  double precision NOT NULL,
    mag  real,
    name text
);
INSERT INTO demo.stars (id, ra, dec, mag, name)
SELECT id, ra, dec, mag, 'DEMO ' || id
FROM (
    SELECT row_number() OVER (
               ORDER BY $ORDER
           ) AS id,
           ra, dec, mag
    FROM (
        SELECT i,
               360.0 * random() AS ra,
               degrees(asin(2.0 * random() - 1.0)) AS dec,
               (6.0 + 14.0 * power(random(), 0.3))::real AS mag
        FROM generate_series(1, $ROWS) AS i
    ) AS drawn
) AS sorted
ORDER BY id;
ALTER TABLE demo.stars ADD CONSTRAINT stars_pkey PRIMARY KEY (id);
CREATE INDEX stars_mag_idx ON demo.stars (mag);
"""
_HEALPIX_ORDER = "healpix_nest(10, spoint(radians(ra), radians(dec))), i"
_POSITION_INDEX = (
    "CREATE INDEX IF NOT EXISTS stars_pos_idx ON demo.stars"
    " USING gist (spoint(radians(ra), radians(dec)))"
)


async def load_demo(
    conn: Connection, rows: int = 1_000_000, *, geometry: bool = True
) -> None:
    """Create, fill and publish ``demo.stars`` with ``rows`` stars.

    Installs TAP_SCHEMA if needed. Skips the load when the table already holds
    exactly ``rows`` rows (it is then only re-published); otherwise the table is
    rebuilt. ``geometry``: the database has pg_sphere (HEALPix order and a
    GiST index on the positions; the index is added once pg_sphere is there).
    """
    if rows < 0:
        raise ValueError("rows must not be negative")
    await tapschema.install(conn)
    if await _row_count(conn) != rows:
        async with conn.transaction():
            await conn.execute(
                "SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL work_mem = '256MB'"
            )
            await conn.execute("SELECT setseed($1)", SEED)
            order = _HEALPIX_ORDER if geometry else "i"
            sql = _LOAD_SQL.replace("$ROWS", str(int(rows))).replace("$ORDER", order)
            await conn.execute(sql)
            if geometry:
                await conn.execute(_POSITION_INDEX)
        await conn.execute("ANALYZE demo.stars")
    elif geometry:
        await conn.execute(_POSITION_INDEX)
    await tapschema.publish(conn, TABLE, STARS_METADATA)


async def _row_count(conn: Connection) -> int | None:
    if await conn.fetchval("SELECT to_regclass('demo.stars')") is None:
        return None
    count: int = await conn.fetchval("SELECT count(*) FROM demo.stars")
    return count
