"""Queries differing only in numbers reuse a template (taprunner/query/shapes.py):
whatever the order queries come in, each translation equals the translator's own,
errors included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taprunner.adql.limits import DEFAULT_LIMITS
from taprunner.adql.model import AdqlError, StaticCatalog
from taprunner.adql.translate import translate
from taprunner.query.caches import TranslationCache
from taprunner.query.shapes import shape_of

CATALOG = StaticCatalog({"demo.stars": ["id", "ra", "dec", "mag", "name"]})
CAP = 101
CONE = (
    "SELECT id, ra, dec, mag, name FROM demo.stars WHERE CONTAINS(POINT('ICRS', ra,"
    " dec), CIRCLE('ICRS', {}, {}, {})) = {}"
)


async def _same(cache: TranslationCache, adql: str, cap: int = CAP) -> str | None:
    """The cache's translation equals translate()'s (or both fail alike)."""
    try:
        expected = translate(adql, CATALOG, limit=cap)
    except AdqlError as exc:
        with pytest.raises(AdqlError) as raised:
            await cache.translate(adql, CATALOG, cap, limits=DEFAULT_LIMITS)
        assert str(raised.value) == str(exc)
        return None
    got = await cache.translate(adql, CATALOG, cap, limits=DEFAULT_LIMITS)
    assert got == expected, adql
    return got.sql


async def test_cones_come_from_the_template() -> None:
    cache = TranslationCache()
    for ra, dec in ((10.5, 20.25), (11.5, -21.75), (12.5, 22.125), (13.5, 23.0)):
        await _same(cache, CONE.format(ra, dec, 0.0166667, 1))
    assert len(cache.shapes) >= 1
    # Learnt now: a new cone of a learnt shape is filled in, not translated.
    shape = shape_of(CONE.format(14.5, 24.5, 0.0166667, 1))
    assert shape is not None
    found = cache.shapes.lookup(shape, CATALOG, f"{CAP}\0{DEFAULT_LIMITS!r}")
    assert found == translate(CONE.format(14.5, 24.5, 0.0166667, 1), CATALOG, limit=CAP)
    assert "radians(14.5)" in found.sql and "radians(24.5)" in found.sql


@pytest.mark.parametrize(
    "texts",
    [
        # The integer of the predicate decides the SQL (indexable or not).
        [CONE.format(1.5, 2.5, 0.5, 1), CONE.format(1.5, 2.5, 0.5, 1)]
        + [CONE.format(3.5, 4.5, 0.5, n) for n in (0, 1, 2, 0, 1)],
        # TOP and the row cap; ORDER BY a position; OFFSET.
        [f"SELECT TOP {n} id FROM demo.stars WHERE mag < 5.5" for n in (5, 5, 500, 7)]
        + [f"SELECT id, ra FROM demo.stars ORDER BY {n}" for n in (1, 1, 2, 3)]
        + [f"SELECT id FROM demo.stars WHERE mag < {m} OFFSET 3" for m in (1.5, 2.5)],
        # Numbers in strings, quoted names and comments are not numbers.
        [
            "SELECT id, '1.5' AS \"2.5\" FROM demo.stars WHERE mag > 3.5 -- 4.5\n",
            "SELECT id, '1.5' AS \"2.5\" FROM demo.stars WHERE mag > 3.5 -- 4.5\n",
            "SELECT id, '7.5' AS \"2.5\" FROM demo.stars WHERE mag > 8.5 -- 9.5\n",
            "SELECT id, '1.5' AS \"2.5\" FROM demo.stars WHERE mag > 6.5 -- 4.5\n",
        ],
        # Lexical forms: each its own; hex and glued numbers stay in the shape.
        [
            f"SELECT id FROM demo.stars WHERE mag BETWEEN {a} AND {b}"
            for a, b in (
                ("1.5", "2.5"),
                ("1.5", "2.5"),
                (".5", "2.5"),
                (".5", "3.5"),
                ("1e1", "2.5e-1"),
                ("1e1", "3.5E+1"),
                ("1.", "2.5"),
                ("007.5", "2.50"),
                ("0x1F", "2.5"),
                ("0x1F", "3.5"),
            )
        ],
        # Arithmetic, signs, functions, a select list of numbers.
        [
            f"SELECT {a} * ra + {b}, POWER(mag, {a}) FROM demo.stars WHERE dec > -{b}"
            for a, b in (("1.5", "2.5"), ("1.5", "2.5"), ("3.5", "4.5"), ("2.0", ".5"))
        ],
        # DISTANCE < r gets the indexable containments for r of 0-90 degrees
        # only: a template learnt from a radius above 90 (whose probes' radii
        # are above it too) must not serve a small radius without them.
        [
            "SELECT id FROM demo.stars WHERE DISTANCE(POINT('ICRS', ra, dec),"
            f" POINT('ICRS', 1.5, 2.5)) < {r}"
            for r in ("100.5", "100.5", "200.5", "0.5", "1e5", "1e5", "1e-5")
        ],
        # A CIRCLE radius (0 to 90) and a BOX size (below 180) are checked: a
        # template learnt from a good one must not serve a bad one unchecked.
        [CONE.format(1.5, 2.5, r, 1) for r in ("0.5", "0.5", "100.5", "1.5", "90.5")]
        + [
            "SELECT id FROM demo.stars WHERE CONTAINS(POINT('ICRS', ra, dec),"
            f" BOX('ICRS', 1.5, 2.5, {w}, 0.5)) = 1"
            for w in ("0.5", "0.5", "180.5", "1.5", "200.5", "2.5")
        ],
        # Bad queries fail as they would have.
        [CONE.format(1.5, 2.5, "", 1)] * 3
        + ["SELECT TOP 1.5 id FROM demo.stars"] * 3
        + [f"SELECT id FROM demo.stars ORDER BY {n}" for n in (1, 1, 9)],
    ],
)
async def test_translations_equal_the_translators(texts: list[str]) -> None:
    cache = TranslationCache()
    for text in texts * 2:
        await _same(cache, text)


async def test_a_new_catalogue_or_cap_is_not_served_an_old_template() -> None:
    cache = TranslationCache()
    for ra in ("1.5", "2.5", "3.5"):
        await _same(cache, CONE.format(ra, "2.5", "0.5", 1))
    other = StaticCatalog({"demo.stars": ["id", "ra", "dec", "mag", "name"]})
    text = CONE.format("4.5", "2.5", "0.5", 1)
    got = await cache.translate(text, other, CAP, limits=DEFAULT_LIMITS)
    assert got == translate(text, other, limit=CAP)
    assert "LIMIT 7" in (await _same(cache, text, cap=7) or "")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 360, allow_nan=False),
            st.floats(-90, 90, allow_nan=False),
            st.sampled_from(["{:.6f}", "{!r}", "{:.3e}", "{:.0f}", "{:g}"]),
            st.sampled_from([0, 1]),
        ),
        min_size=1,
        max_size=8,
    )
)
async def test_any_cones_in_any_order(
    cones: list[tuple[float, float, str, int]],
) -> None:
    cache = TranslationCache()
    for ra, dec, form, flag in cones * 2:
        await _same(
            cache, CONE.format(form.format(ra), form.format(dec), "0.0167", flag)
        )


async def test_catalogues_in_turn_keep_a_template_each() -> None:
    # Each session role (proprietary tables) has a catalogue object of its own:
    # clients of two roles sending cones in turn must not evict each other's
    # template (each eviction costs a query two probe translations more).
    cache = TranslationCache()
    other = StaticCatalog({"demo.stars": ["id", "ra", "dec", "mag", "name"]})
    for i in range(6):
        text = CONE.format(f"{i}.5", "2.5", "0.5", 1)
        for catalog in (CATALOG, other):
            got = await cache.translate(text, catalog, CAP, limits=DEFAULT_LIMITS)
            assert got == translate(text, catalog, limit=CAP)
    shape = shape_of(CONE.format("9.5", "2.5", "0.5", 1))
    assert shape is not None
    extra = f"{CAP}\0{DEFAULT_LIMITS!r}"
    assert cache.shapes.lookup(shape, CATALOG, extra) is not None
    assert cache.shapes.lookup(shape, other, extra) is not None
