"""A lean HTTP/1.1 keep-alive client for the throughput figure (load generator).

The benchmark's clients run on the same two cores as the service. aiohttp's client
costs about 2 ms of CPU per tiny job (four requests), which would be taken from
the service under test, and which the service never pays in production, where
clients run elsewhere. This client does only what the throughput loop needs (GET
and form POST on one connection, Content-Length and chunked bodies) and costs
about 0.7 ms per job. The latency and pyvo figures keep using real clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

__all__ = ["RawConnection", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class RawConnection:
    """One keep-alive connection to ``host:port`` (reopened when the server closes)."""

    host: str
    port: int
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    @classmethod
    def to(cls, url: str) -> RawConnection:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need host and port in {url!r}")
        return cls(parts.hostname, parts.port)

    async def get(self, target: str) -> Reply:
        return await self._request("GET", target, b"", None)

    async def post_form(self, target: str, form: dict[str, str]) -> Reply:
        body = urlencode(form).encode()
        return await self._request(
            "POST", target, body, "application/x-www-form-urlencoded"
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
            self._reader = self._writer = None

    async def _request(
        self, method: str, target: str, body: bytes, content_type: str | None
    ) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port
            )
        assert self._reader is not None
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode("latin-1") + b"\r\n" + body)
        status, headers = _head(await self._reader.readuntil(b"\r\n\r\n"))
        data = await self._body(self._reader, headers)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Reply(status, headers, data)

    @staticmethod
    async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")  # after the last chunk (no trailers)
            return b"".join(parts)
        return await reader.read()


def _head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers
