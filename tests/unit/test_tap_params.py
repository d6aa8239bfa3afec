"""TAP request parameters: repeated UPLOAD values are all honoured (DALI)."""

from __future__ import annotations

import pytest

from taprunner.errors import TapUsageError
from taprunner.params import Upload, parse_request


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
