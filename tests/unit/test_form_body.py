"""Urlencoded bodies decoded in bounded slices: the same pairs as ``parse_qsl``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiouws.errors import PayloadTooLarge
from aiouws.http import params
from aiouws.http.params import MAX_FIELDS, decode_urlencoded

#: What urlencoded bodies are made of, odd escapes and stray bytes included.
pieces = st.lists(
    st.sampled_from(
        ["a", "Z", "=", "&", "+", "%", "%4", "%41", "%zz", "%C3", "%A9", "%C3%A9"]
        + ["%F0%9F%98%80", "%00", "é", "\U0001f600", " ", "\t", "&&", "=="]
    ),
    max_size=60,
).map("".join)


def expected(text: str, charset: str = "utf-8") -> list[tuple[str, str]]:
    return parse_qsl(
        text.rstrip(), keep_blank_values=True, encoding=charset, errors="replace"
    )


@given(pieces)
def test_the_pairs_are_parse_qsls(text: str) -> None:
    assert decode_urlencoded(text.encode()) == expected(text)


@given(pieces)
def test_slices_cut_nowhere_inside_an_escape_or_a_character(text: str) -> None:
    """With 4-byte slices every escape and multi-byte character is cut somewhere."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(params, "INLINE_BYTES", 4)
        assert decode_urlencoded(text.encode()) == expected(text)


def test_a_latin1_body() -> None:
    body = urlencode({"QUERY": "SELECT 'é'", "X": "ÿ"}, encoding="latin-1")
    assert decode_urlencoded(body.encode(), "latin-1") == [
        ("QUERY", "SELECT 'é'"),
        ("X", "ÿ"),
    ]


def test_too_many_fields_are_refused_before_any_is_decoded() -> None:
    assert len(decode_urlencoded(b"a=1&" * (MAX_FIELDS - 1))) == MAX_FIELDS - 1
    with pytest.raises(PayloadTooLarge, match="more than 1,000 fields"):
        decode_urlencoded(b"a=1&" * MAX_FIELDS + b"a=1")


@given(pieces)
def test_the_small_ascii_fast_path_makes_the_pairs_of_the_sliced_decoding(
    text: str,
) -> None:
    body = text.encode("utf-8")
    if not body.isascii():
        body = body.decode("utf-8").encode("ascii", "replace")
    slow = [
        (params._unquote(name, "utf-8"), params._unquote(value, "utf-8"))
        for field_ in body.rstrip().split(b"&")
        if field_
        for name, _, value in [field_.partition(b"=")]
    ]
    assert decode_urlencoded(body) == slow
