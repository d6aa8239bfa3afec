"""The values of a ``--position``'s columns checked before they are indexed.

pg_sphere takes any double: ``spoint(radians(10), radians(100))`` silently
becomes (190, 80), and a NaN or infinite coordinate is no position at all, so a
cone search would match wrong rows. A declination outside -90..90, or an RA or
Dec that is NaN or infinite, refuses the load. NULL is fine (no position: not
indexed, never matched), and so is any finite RA: pg_sphere normalises it
(400 is 40, -10 is 350), the same point.
"""

from __future__ import annotations

from taprunner.load.columns import LoadError
from taprunner.schema.catalog import Connection
from taprunner.schema.names import quote

__all__ = ["check_positions"]


def _bad(ra: str, dec: str) -> str:
    """True for a row whose non-NULL ``ra`` or ``dec`` is no valid position.

    PostgreSQL orders NaN above every number, so ``dec > 90`` also catches a
    NaN or +Infinity declination and ``dec < -90`` -Infinity; an RA is bad only
    when it is not finite (NaN equals NaN in PostgreSQL).
    """
    ra, dec = quote(ra), quote(dec)
    return f"({dec} < -90 OR {dec} > 90 OR {ra} IN ('NaN', 'Infinity', '-Infinity'))"


async def check_positions(
    conn: Connection, schema: str, table: str, shown: str, position: tuple[str, str]
) -> None:
    """Refuse the load when a row of ``schema.table`` has no valid position.

    ``shown`` is the table's name in the message, ``position`` the (ra, dec)
    column names. One aggregate scan over the freshly copied table (its pages
    are still cached); the example row is fetched only when there is one.

    Raises
    ------
    LoadError
        With the count of bad rows and the first one's values.
    """
    ra, dec = position
    qualified = f"{quote(schema)}.{quote(table)}"
    bad = _bad(ra, dec)
    count: int = await conn.fetchval(
        f"SELECT count(*) FILTER (WHERE {bad}) FROM {qualified}"
    )
    if not count:
        return
    first = await conn.fetchrow(
        f"SELECT {quote(ra)}, {quote(dec)} FROM {qualified} WHERE {bad} LIMIT 1"
    )
    assert first is not None  # the same condition counted it
    raise LoadError(
        f"{shown}: {count} row{'s' if count > 1 else ''} with {dec} outside"
        f" -90..90 or {ra}/{dec} not finite (first: {ra}={first[0]},"
        f" {dec}={first[1]}); the position index would misplace them:"
        " correct them or make them NULL"
    )
