"""An object store failing while a stored file streams out is the service's own
ResultsUnavailable (503; a job page's preview says so), not whatever the
client library raised (a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiouws.errors import ResultsUnavailable
from aiouws.results.s3 import _chunks


async def _failing() -> AsyncIterator[bytes]:
    yield b"first"
    raise OSError("connection reset by the object store")


async def test_a_store_failing_midway_is_results_unavailable() -> None:
    got: list[bytes] = []
    with pytest.raises(ResultsUnavailable):
        async for chunk in _chunks(_failing()):
            got.append(chunk)
    assert got == [b"first"]
