"""Query-text limits: length before anything, nesting, IN lists; deep recursion
is a user error naming what is wrong, never a RecursionError; the translation
caches hold digests and bounded bytes, never the texts."""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from aiouws.config import ConfigError
from taprunner.adql.limits import (
    QueryLimitError,
    QueryLimits,
    check_text,
    parse_limited,
)
from taprunner.adql.model import StaticCatalog
from taprunner.adql.translate import translate
from taprunner.query.caches import TranslationCache, digest
from taprunner.settings import TapSettings

CATALOG = StaticCatalog({"t": ["a", "b"]})


def nested(levels: int) -> str:
    return "SELECT " + "(" * levels + "a" + ")" * levels + " FROM t"


def in_list(values: int) -> str:
    return f"SELECT a FROM t WHERE a IN ({','.join(str(i) for i in range(values))})"


def test_the_length_is_counted_in_utf8_bytes() -> None:
    limits = QueryLimits(max_bytes=100)
    check_text("SELECT a FROM t WHERE b = '" + "x" * 70 + "'", limits)
    wide = "SELECT a FROM t WHERE b = '" + "é" * 40 + "'"  # 68 chars, 108 bytes
    with pytest.raises(QueryLimitError, match=r"108 bytes.*100 bytes.*max_query_b"):
        check_text(wide, limits)
    with pytest.raises(QueryLimitError, match="characters"):
        check_text("x" * 1000, limits)  # not even encoded to be refused


def test_the_length_is_checked_before_the_text_is_parsed() -> None:
    # An unterminated string and a NUL: parsing would complain of either.
    text = "SELECT '\x00" + "(" * 100
    with pytest.raises(QueryLimitError, match="too long"):
        parse_limited(text, QueryLimits(max_bytes=50))


def test_parentheses_nest_up_to_the_limit() -> None:
    limits = QueryLimits(max_depth=30)
    translate(nested(30), CATALOG, limits=limits)
    with pytest.raises(QueryLimitError, match=r"more than 30 levels.*max_query_dep"):
        translate(nested(31), CATALOG, limits=limits)
    with pytest.raises(QueryLimitError, match="nested too deeply"):
        translate(nested(60), CATALOG)  # the default limit


def test_parentheses_in_strings_names_and_comments_do_not_count() -> None:
    hidden = "'((((( '' ((((('" + ' "(((((((""((" ' + "-- ((((((\n/* (((((( */"
    query = f"SELECT a, {hidden} 1 AS x FROM t WHERE a IN (1, 2)"
    check_text(query, QueryLimits(max_depth=2, max_in_list=2))


def test_an_in_list_may_hold_up_to_the_limit() -> None:
    limits = QueryLimits(max_in_list=100)
    translate(in_list(100), CATALOG, limits=limits)
    with pytest.raises(QueryLimitError, match=r"more than 100 values.*max_in_list"):
        translate(in_list(101), CATALOG, limits=limits)


@pytest.mark.parametrize(
    "query",
    [
        nested(200),  # deeper than the parser's recursion, limit raised
        "SELECT a FROM t WHERE " + "NOT " * 500 + "a = 1",
        "SELECT a FROM t WHERE " + " OR ".join(f"a = {i}" for i in range(3000)),
        "SELECT " + "+".join("a" for _ in range(3000)) + " FROM t",
        "SELECT " + "CASE WHEN a = 1 THEN " * 29 + "1" + " ELSE 2 END" * 29 + " FROM t",
    ],
    ids=["parens", "not", "or-chain", "plus-chain", "case"],
)
def test_recursion_is_a_user_error(query: str) -> None:
    """Whatever recursion the parser or the translator cannot follow ends in a
    QueryLimitError (a 400 / a job error), never a RecursionError (a 500)."""
    limits = QueryLimits(max_depth=1000)
    try:
        translate(query, CATALOG, limits=limits)
    except QueryLimitError as exc:
        assert "nested too deeply" in str(exc)


def test_tap_settings_carry_and_check_the_limits() -> None:
    tap = TapSettings(max_query_bytes=10, max_query_depth=2, max_in_list=3)
    assert tap.query_limits() == QueryLimits(max_bytes=10, max_depth=2, max_in_list=3)
    with pytest.raises(ConfigError, match="tap_max_query_depth"):
        TapSettings(max_query_depth=0)


def big_query(i: int, size: int) -> str:
    return f"SELECT a FROM t WHERE a <> {i} AND b <> '{'x' * size}'"


def test_translations_are_keyed_by_digest_and_bounded_in_bytes() -> None:
    """20 queries of 1 MB through a cache of 4 MB: it keeps what fits, by
    digest; what it holds is what it counts, and it counts no more than 4 MB."""
    bound = 4 * 1024 * 1024
    limits = QueryLimits(max_bytes=2 * 1024 * 1024)
    cache = TranslationCache(size=256, max_bytes=bound)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(20):
            query = big_query(i, 900_000)
            assert "x" * 900_000 in cache.get(query, CATALOG, 11, limits=limits).sql
            del query
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert 0 < cache.retained_bytes <= bound
    assert len(cache) == 4  # 900 KB each fits four times (and is kept at all)
    assert held < bound + 1024 * 1024, held  # not 20 translations nor their texts
    keys = list(cache._entries)
    assert all(len(key) == 20 for key in keys)  # digests, never texts
    assert keys[-1] == TranslationCache.key(big_query(19, 900_000), 11, limits)


def test_a_translation_bigger_than_a_quarter_of_the_bound_is_not_kept() -> None:
    cache = TranslationCache(max_bytes=1024 * 1024)
    cache.get(big_query(1, 300_000), CATALOG, 11)
    assert len(cache) == 0 and cache.retained_bytes == 0
    small = cache.get("SELECT a FROM t", CATALOG, 11)
    assert cache.get("SELECT a FROM t", CATALOG, 11) is small
    assert 0 < cache.retained_bytes < 2048


async def test_translate_off_the_loop_reuses_by_digest() -> None:
    cache = TranslationCache()
    short = "SELECT a FROM t"
    long = big_query(7, 10_000)  # digested off the loop too
    for query in (short, long):
        first = await cache.translate(query, CATALOG, 11)
        assert await cache.translate(query, CATALOG, 11) is first
        assert cache.get(query, CATALOG, 11) is first
    with pytest.raises(QueryLimitError, match="too long"):
        await cache.translate(long, CATALOG, 11, limits=QueryLimits(max_bytes=100))


def test_digests_tell_the_parameters_apart() -> None:
    assert digest("SELECT 1") != digest("SELECT 1", "x")
    assert digest("SELECT 1", "a", "b") != digest("SELECT 1", "a\0b")
    assert len(digest("\udcff lone surrogate")) == 20  # any text a client sends


def test_unclosed_comments_are_counted_in_linear_time() -> None:
    """Found in review: each "/*" scanned the rest of the text for its end, so
    48 KB of them took 11.5 s (1 MiB: about 1.5 h of a translator thread)."""
    started = time.perf_counter()
    check_text("SELECT 1 FROM t /* " + "/* (" * 250_000, QueryLimits(max_depth=10**6))
    assert time.perf_counter() - started < 1.0  # a few ms; was hours
