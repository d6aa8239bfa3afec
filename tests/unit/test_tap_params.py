"""TAP request parameters: repeated UPLOAD values are all honoured (DALI)."""

from __future__ import annotations

import pytest

from taprunner.errors import TapUsageError
from taprunner.request import TapRequest, Upload, parse_request


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


async def test_the_fast_lane_takes_bounded_queries_without_uploads() -> None:
    from typing import Any, cast

    from aiouws.errors import UsageError
    from aiouws.models import JobParameter
    from aiouws.storage.database import Database
    from taprunner.settings import TapSettings
    from taprunner.web.app import prepare_job
    from taprunner.web.fastlane import TapInline

    db = Database("postgresql:///none")
    tap = TapSettings(inline_rows=1000)
    fast = TapInline(tap, db)

    async def params(**given: str) -> object:
        """What the TAP kind's prepare hook makes (the lane's input)."""
        return await prepare_job(
            tap,
            fast,
            [
                JobParameter(name=k, value=v)
                for k, v in {"lang": "ADQL", **given}.items()
            ],
        )

    assert not fast.accepts(await params(query="SELECT TOP 1 id FROM t"))
    fast.state = cast(Any, object())  # started
    assert fast.accepts(await params(query="SELECT TOP 1000 id FROM t"))
    assert not fast.accepts(await params(query="SELECT TOP 1001 id FROM t"))
    assert fast.accepts(await params(query="SELECT id FROM t", maxrec="10"))
    assert not fast.accepts(await params(query="SELECT id FROM t"))
    assert not fast.accepts(
        await params(
            query="SELECT TOP 1 id FROM t", upload="t,http://example.org/t.xml"
        )
    )
    # A bad parameter never reaches the lane: the hook refuses it (job ERROR).
    with pytest.raises(UsageError, match="MAXREC"):
        await params(query="SELECT TOP 1 id FROM t", maxrec="-3")
    assert not fast.accepts(None)  # nothing parsed: not the lane's
    assert TapInline(TapSettings(inline_rows=0), db).lane() is None


async def test_the_fast_lane_declines_a_query_it_cannot_bound() -> None:
    from typing import Any, cast

    from aiouws.storage.database import Database
    from taprunner.settings import TapSettings
    from taprunner.web.fastlane import TapInline

    tap = TapSettings()
    fast = TapInline(tap, Database("postgresql:///none"))
    fast.state = cast(Any, object())
    for query in ("SELECT FROM WHERE", "SELECT a FROM t UNION SELECT a FROM t"):
        request = parse_request(
            {"lang": ["ADQL"], "query": [query]},
            maxrec_default=tap.maxrec_default,
            maxrec_hard=tap.maxrec_hard,
        )
        prepared = await fast.prepare(request)
        assert prepared.bound is None and prepared.statement is None
        assert fast.accepts(prepared) is False


async def test_the_lane_keeps_the_statement_only_for_the_jobs_it_takes() -> None:
    from aiouws.storage.database import Database
    from taprunner.settings import TapSettings
    from taprunner.web.fastlane import TapInline

    tap = TapSettings(inline_rows=10)
    fast = TapInline(tap, Database("postgresql:///none"))

    def request(query: str) -> TapRequest:
        return parse_request(
            {"lang": ["ADQL"], "query": [query]},
            maxrec_default=tap.maxrec_default,
            maxrec_hard=tap.maxrec_hard,
        )

    small = await fast.prepare(request("SELECT TOP 5 id FROM t"))
    assert small.bound == 5 and small.statement is not None
    statement = small.statement
    assert small.take_statement() is statement  # the run takes it, once
    assert small.take_statement() is None and small.statement is None
    again = await fast.prepare(request("SELECT TOP 5 id FROM t"))
    assert again.bound == 5 and again.statement is None  # remembered, not parsed
    big = await fast.prepare(request("SELECT TOP 50 id FROM t"))
    assert big.bound == 50 and big.statement is None  # not the lane's: not kept
