"""TAP UPLOAD: VOTables loaded into temporary tables ``TAP_UPLOAD.name`` for one query."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from taprunner.adql import Catalog
from taprunner.errors import TapUsageError
from taprunner.params import Upload

__all__ = ["load_uploads"]


@asynccontextmanager
async def load_uploads(conn: asyncpg.Connection, uploads: Sequence[Upload],
                       workdir: Path, catalog: Catalog, *,
                       max_bytes: int) -> AsyncIterator[Catalog]:
    """Load ``uploads`` for the duration of the block; yield the extended catalogue."""
    if uploads:
        raise TapUsageError("UPLOAD is not supported yet")
    yield catalog
