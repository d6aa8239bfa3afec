"""Translations are reused only for the same catalogue object."""

from __future__ import annotations

from taprunner.adql.model import StaticCatalog
from taprunner.adql.parse import parse_statement
from taprunner.adql.translate import row_bound
from taprunner.query.caches import TranslationCache

QUERY = "SELECT TOP 3 id FROM demo.stars"


def test_same_catalogue_reuses_translation() -> None:
    cache = TranslationCache(size=2)
    catalog = StaticCatalog({"demo.stars": ["id"]})
    first = cache.get(QUERY, catalog, 11)
    assert cache.get(QUERY, catalog, 11) is first
    assert cache.get(QUERY, catalog, 5) is not first  # another row cap


def test_new_catalogue_or_eviction_translates_again() -> None:
    cache = TranslationCache(size=1)
    catalog = StaticCatalog({"demo.stars": ["id"]})
    first = cache.get(QUERY, catalog, 11)
    reloaded = StaticCatalog({"demo.stars": ["id"]})
    assert cache.get(QUERY, reloaded, 11) is not first
    cache.get("SELECT id FROM demo.stars", reloaded, 11)  # evicts QUERY
    assert cache.get(QUERY, reloaded, 11) is not first


def test_a_statement_parsed_already_is_translated_for_a_new_query() -> None:
    cache = TranslationCache(size=2)
    catalog = StaticCatalog({"demo.stars": ["id"]})
    statement = parse_statement(QUERY)
    assert row_bound(statement) == row_bound(QUERY) == 3
    first = cache.get(QUERY, catalog, 11, statement)
    assert first == TranslationCache().get(QUERY, catalog, 11)
    assert cache.get(QUERY, catalog, 11) is first  # still cached by its text
