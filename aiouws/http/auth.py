"""Owner resolution: a pluggable hook that turns a request into an owner or None.

Built in: ``none`` (everybody anonymous), ``header`` (a trusted reverse proxy, one
of ``trusted_proxies``, sets the user name in a header), ``x509`` (a trusted
proxy passes the client certificate's subject DN) and ``basic`` (HTTP basic
authentication against a file of ``user:pbkdf2_sha256$iterations$salt$hash``
lines, checked by :class:`~aiouws.http.passwords.PasswordChecker`). With
``require_auth`` an anonymous request is refused
(:class:`~aiouws.errors.AuthenticationRequired`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from aiouws.config import Settings
from aiouws.errors import (
    AuthenticationRequired,
    PermissionDenied,
    Unauthorized,
    UsageError,
    UWSError,
)
from aiouws.http.identity import (
    GROUPS,
    challenges,
    header_groups,
    owner_matcher,
    stored_owner,
    x509_owner,
)
from aiouws.http.passwords import PasswordChecker, hash_password, load_groups
from aiouws.http.passwords import load_passwords as _load_passwords
from aiouws.http.proxies import client_address, trust_of

__all__ = ["OwnerResolver", "hash_password", "load_passwords", "make_resolver"]

OwnerResolver = Callable[[web.Request], Awaitable[str | None]]
_OWNER = re.compile(r"^[\w.@+-]{1,128}$")
#: A request's owner, or why it has none, once resolved (see :func:`_once`).
_RESOLVED: web.RequestKey[tuple[str | None, UWSError | None]] = web.RequestKey(
    "aiouws_resolved", tuple
)


def load_passwords(path: Path) -> dict[str, str]:
    """Read ``user:hash`` lines (``#`` comments allowed)."""
    return _load_passwords(path, _OWNER.match)


async def _anonymous(_request: web.Request) -> str | None:
    return None


def _header_resolver(header: str, settings: Settings) -> OwnerResolver:
    """The user the proxy names in ``header``; believed only from a trusted
    proxy (``trusted_proxies``): from anyone else it is refused (403)."""
    trust = trust_of(settings)
    pattern = owner_matcher(settings)

    async def resolve(request: web.Request) -> str | None:
        value = request.headers.get(header, "").strip()
        if not value:
            return None
        if not trust.trusts(request.remote):
            raise PermissionDenied(
                f"{header} is only believed from a trusted proxy (trusted_proxies)"
            )
        if not pattern.fullmatch(value) or len(value) > 1024:
            raise UsageError(f"invalid user name in {header}")
        return stored_owner(settings, value)

    return resolve


def _x509_resolver(settings: Settings) -> OwnerResolver:
    """The certificate's subject DN a trusted proxy passes (auth = x509)."""
    trust = trust_of(settings)

    async def resolve(request: web.Request) -> str | None:
        return x509_owner(request, settings, trust)

    return resolve


def _basic_resolver(checker: PasswordChecker, settings: Settings) -> OwnerResolver:
    async def resolve(request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("only HTTP basic authentication is supported")
        try:
            user, _, password = (
                base64.b64decode(token, validate=True).decode().partition(":")
            )
        except ValueError:  # binascii.Error, UnicodeDecodeError, not ASCII
            raise Unauthorized("malformed basic credentials") from None
        return await checker.check(user, password, client_address(request, settings))

    return resolve


def _required(resolve: OwnerResolver) -> OwnerResolver:
    """``resolve``, refusing anonymous requests."""

    async def required(request: web.Request) -> str | None:
        owner = await resolve(request)
        if owner is None:
            raise AuthenticationRequired("this service requires authentication")
        return owner

    return required


def make_resolver(settings: Settings) -> OwnerResolver:
    """The resolver that ``settings.auth`` names, resolving once per request;
    with ``settings.require_auth`` it refuses anonymous requests."""
    resolve: OwnerResolver = _anonymous
    file_groups: dict[str, frozenset[str]] = {}
    if settings.auth == "header":
        resolve = _header_resolver(settings.auth_header, settings)
    elif settings.auth == "x509":
        resolve = _x509_resolver(settings)
    elif settings.auth == "basic":
        assert settings.passwd_file is not None
        checker = PasswordChecker(load_passwords(settings.passwd_file))
        file_groups = load_groups(settings.passwd_file, _OWNER.match)
        resolve = _basic_resolver(checker, settings)
    if settings.require_auth:
        resolve = _required(resolve)
    if resolve is _anonymous:
        return resolve
    return _once(_with_groups(resolve, settings, file_groups), challenges(settings))


def _with_groups(
    resolve: OwnerResolver, settings: Settings, file_groups: dict[str, frozenset[str]]
) -> OwnerResolver:
    """``resolve``, noting the owner's groups in the request (:data:`GROUPS`):
    the password file's and a trusted proxy's groups header's."""
    trust = trust_of(settings)

    async def grouped(request: web.Request) -> str | None:
        owner = await resolve(request)
        if owner is not None:
            groups = file_groups.get(owner, frozenset())
            request[GROUPS] = groups | header_groups(request, settings, trust)
        return owner

    return grouped


def _once(resolve: OwnerResolver, challenge: list[str]) -> OwnerResolver:
    """``resolve``, asked once per request: the owner middleware (for the logs)
    and the handler both ask, and refused credentials must not be hashed twice.
    A 401 carries ``challenge`` (the ``WWW-Authenticate`` challenges)."""

    async def once(request: web.Request) -> str | None:
        resolved = request.get(_RESOLVED)
        if resolved is None:
            try:
                resolved = (await resolve(request), None)
            except UWSError as exc:
                if isinstance(exc, Unauthorized) and challenge:
                    exc.challenge = ", ".join(challenge)
                resolved = (None, exc)
            request[_RESOLVED] = resolved
        owner, refused = resolved
        if refused is not None:
            raise refused
        return owner

    return once
