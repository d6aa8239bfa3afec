"""Owner resolution: a pluggable hook that turns a request into an owner or None.

Built in: ``none`` (everybody anonymous), ``header`` (a trusted reverse proxy sets
the user name in a header) and ``basic`` (HTTP basic authentication against a
file of ``user:pbkdf2_sha256$iterations$salt$hash`` lines).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web

from aiouws.config import ConfigError, Settings
from aiouws.errors import Unauthorized, UsageError, UWSError

__all__ = ["OwnerResolver", "hash_password", "load_passwords", "make_resolver"]

OwnerResolver = Callable[[web.Request], Awaitable[str | None]]
_OWNER = re.compile(r"^[\w.@+-]{1,128}$")
_ITERATIONS = 200_000
#: A request's owner, or why it has none, once resolved (see :func:`_once`).
_RESOLVED: web.RequestKey[tuple[str | None, UWSError | None]] = web.RequestKey(
    "aiouws_resolved", tuple
)


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    """A ``pbkdf2_sha256$iterations$salt$hash`` line for the password file."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def _verify(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), salt.encode(), int(iterations)
    )
    return hmac.compare_digest(digest.hex(), expected)


def load_passwords(path: Path) -> dict[str, str]:
    """Read ``user:hash`` lines (``#`` comments allowed)."""
    table: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not _OWNER.match(user):
            raise ConfigError(f"{path}:{number}: expected user:hash")
        table[user] = stored
    return table


async def _anonymous(_request: web.Request) -> str | None:
    return None


def _header_resolver(header: str) -> OwnerResolver:
    async def resolve(request: web.Request) -> str | None:
        value = request.headers.get(header, "").strip()
        if not value:
            return None
        if not _OWNER.match(value):
            raise UsageError(f"invalid user name in {header}")
        return value

    return resolve


def _basic_resolver(passwords: Mapping[str, str]) -> OwnerResolver:
    cache: dict[str, str] = {}  # Authorization header -> user, avoids re-hashing

    async def resolve(request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        if header in cache:
            return cache[header]
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("only HTTP basic authentication is supported")
        try:
            user, _, password = (
                base64.b64decode(token, validate=True).decode().partition(":")
            )
        except ValueError:  # binascii.Error, UnicodeDecodeError, not ASCII
            raise Unauthorized("malformed basic credentials") from None
        stored = passwords.get(user)
        if stored is None or not _verify(password, stored):
            raise Unauthorized("wrong user name or password")
        if len(cache) < 10_000:
            cache[header] = user
        return user

    return resolve


def make_resolver(settings: Settings) -> OwnerResolver:
    """The resolver that ``settings.auth`` names, resolving once per request."""
    if settings.auth == "header":
        return _once(_header_resolver(settings.auth_header))
    if settings.auth == "basic":
        assert settings.passwd_file is not None
        return _once(_basic_resolver(load_passwords(settings.passwd_file)))
    return _anonymous


def _once(resolve: OwnerResolver) -> OwnerResolver:
    """``resolve``, asked once per request: the owner middleware (for the logs)
    and the handler both ask, and refused credentials must not be hashed twice."""

    async def once(request: web.Request) -> str | None:
        resolved = request.get(_RESOLVED)
        if resolved is None:
            try:
                resolved = (await resolve(request), None)
            except UWSError as exc:
                resolved = (None, exc)
            request[_RESOLVED] = resolved
        owner, refused = resolved
        if refused is not None:
            raise refused
        return owner

    return once
