"""gzip or deflate of a streamed sync result, at zlib's fastest level.

aiohttp's response compression uses zlib's default level (6): for a
1,000,000-row CSV (66 MB) that is about five times the CPU of level 1, which
compresses it only a few percent less (47 % of its size against 44 %), and it
made a compressed sync result take ten times as long as an uncompressed one
on two cores. A streamed result is large text, sent once: the fastest level
is the better trade. Chunks above :data:`THREAD_BYTES` are compressed in a
worker thread (zlib lets go of the GIL), so that the event loop keeps serving
and the compression overlaps the query on another core.
"""

from __future__ import annotations

import asyncio
import zlib

__all__ = ["StreamCompressor"]

LEVEL = 1
THREAD_BYTES = 64 * 1024
#: Content codings in order of preference, with their zlib ``wbits``: gzip's
#: header, or the zlib wrapper that HTTP's ``deflate`` means (RFC 9110 8.4.1.2).
_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class StreamCompressor:
    """One response's compressor, for the coding the client accepts."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.compressobj(LEVEL, zlib.DEFLATED, _CODINGS[coding])

    @classmethod
    def accepted(cls, accept_encoding: str) -> StreamCompressor | None:
        """The compressor for an ``Accept-Encoding`` header, or None (identity).

        A coding refused with ``q=0`` (RFC 9110 12.5.3) is not used; of the
        others the one with the highest ``q`` (gzip on a tie)."""
        weights: dict[str, float] = {}
        for item in accept_encoding.lower().split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            weight = 1.0
            for param in params:
                name, _, value = param.partition("=")
                if name.strip() == "q":
                    try:
                        weight = float(value)
                    except ValueError:
                        weight = 0.0
            if coding in _CODINGS:
                weights[coding] = weight
        best = max(_CODINGS, key=lambda coding: weights.get(coding, 0.0))
        return cls(best) if weights.get(best, 0.0) > 0 else None

    async def compress(self, data: bytes) -> bytes:
        """Compressed bytes of ``data`` (possibly none yet)."""
        if len(data) > THREAD_BYTES:
            return await asyncio.to_thread(self._zlib.compress, data)
        return self._zlib.compress(data)

    def flush(self) -> bytes:
        """The end of the compressed stream."""
        return self._zlib.flush()
