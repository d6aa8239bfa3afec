"""TAP request parameters: repeated UPLOAD values are all honoured (DALI)."""

from __future__ import annotations

import pytest

from taprunner.errors import TapUsageError
from taprunner.request import Upload, parse_request


def _request(uploads: list[str]) -> tuple[Upload, ...]:
    params = {"lang": ["ADQL"], "query": ["SELECT 1"], "upload": uploads}
    return parse_request(params, maxrec_default=10, maxrec_hard=100).uploads


def test_repeated_upload_values_are_merged() -> None:
    assert _request(["a,param:a;b,http://x/b", "c,param:c"]) == (
        Upload("a", "param:a"),
        Upload("b", "http://x/b"),
        Upload("c", "param:c"),
    )


def test_a_name_repeated_across_upload_values_is_refused() -> None:
    with pytest.raises(TapUsageError, match="twice"):
        _request(["a,param:a", "A,param:b"])


def test_empty_upload_values_are_ignored() -> None:
    assert _request(["", "a,param:a"]) == (Upload("a", "param:a"),)


def test_row_bound_is_the_top_of_a_plain_select() -> None:
    from taprunner.adql.translate import row_bound

    assert row_bound("SELECT TOP 10 id FROM demo.stars") == 10
    assert row_bound("select top 0 * from t where x > 1") == 0
    assert row_bound("SELECT id FROM demo.stars") is None
    assert row_bound("SELECT TOP 5 a FROM t UNION SELECT b FROM u") is None
    assert row_bound("SELEC nonsense") is None


def test_the_fast_lane_takes_bounded_queries_without_uploads() -> None:
    from typing import Any, cast

    from aiouws.errors import UsageError
    from aiouws.models import JobParameter
    from aiouws.storage.database import Database
    from taprunner.settings import TapSettings
    from taprunner.web.app import prepare_request
    from taprunner.web.fastlane import TapInline

    db = Database("postgresql:///none")
    tap = TapSettings(inline_rows=1000)

    def params(**given: str) -> object:
        """The TapRequest the TAP kind's prepare hook makes (the lane's input)."""
        return prepare_request(
            tap,
            [
                JobParameter(name=k, value=v)
                for k, v in {"lang": "ADQL", **given}.items()
            ],
        )

    fast = TapInline(tap, db)
    assert not fast.accepts(params(query="SELECT TOP 1 id FROM t"))  # not started
    fast.state = cast(Any, object())
    assert fast.accepts(params(query="SELECT TOP 1000 id FROM t"))
    assert not fast.accepts(params(query="SELECT TOP 1001 id FROM t"))
    assert fast.accepts(params(query="SELECT id FROM t", maxrec="10"))
    assert not fast.accepts(params(query="SELECT id FROM t"))
    assert not fast.accepts(
        params(query="SELECT TOP 1 id FROM t", upload="t,http://example.org/t.xml")
    )
    # A bad parameter never reaches the lane: the hook refuses it (job ERROR).
    with pytest.raises(UsageError, match="MAXREC"):
        params(query="SELECT TOP 1 id FROM t", maxrec="-3")
    assert not fast.accepts(None)  # nothing parsed: not the lane's
    assert TapInline(TapSettings(inline_rows=0), db).lane() is None


def test_the_fast_lane_declines_a_query_it_cannot_bound() -> None:
    from typing import Any, cast

    from aiouws.storage.database import Database
    from taprunner.settings import TapSettings
    from taprunner.web.fastlane import TapInline

    tap = TapSettings()
    fast = TapInline(tap, Database("postgresql:///none"))
    fast.state = cast(Any, object())
    nested = "SELECT " + "(" * 3000 + "1" + ")" * 3000 + " AS x FROM t"
    request = parse_request(
        {"lang": ["ADQL"], "query": [nested]},
        maxrec_default=tap.maxrec_default,
        maxrec_hard=tap.maxrec_hard,
    )
    assert fast.accepts(request) is False


def test_the_lane_keeps_the_statement_it_parsed_for_the_jobs_it_takes() -> None:
    from taprunner.web.fastlane import _Bounds

    bounds = _Bounds(size=2, pending=1)
    bound, statement = bounds.bound("SELECT TOP 5 id FROM t")
    assert bound == 5 and statement is not None
    assert bounds.bound("SELECT TOP 5 id FROM t") == (5, None)  # remembered
    assert bounds.bound("SELECT FROM WHERE") == (None, None)  # invalid ADQL
    assert bounds.take("SELECT TOP 5 id FROM t") is None  # not kept: not taken
    bounds.keep("SELECT TOP 5 id FROM t", statement)
    assert bounds.take("SELECT TOP 5 id FROM t") is statement
    assert bounds.take("SELECT TOP 5 id FROM t") is None  # once
    _, first = bounds.bound("SELECT TOP 1 a FROM t")
    _, second = bounds.bound("SELECT TOP 2 a FROM t")
    assert first is not None and second is not None
    bounds.keep("SELECT TOP 1 a FROM t", first)
    bounds.keep("SELECT TOP 2 a FROM t", second)  # at most one pending
    assert bounds.take("SELECT TOP 1 a FROM t") is None
    assert bounds.take("SELECT TOP 2 a FROM t") is second
