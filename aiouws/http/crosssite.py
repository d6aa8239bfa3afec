"""Cross-site request forgery: state-changing requests from other sites' pages refused.

A browser attaches a user's credentials (basic authentication, cookies) to a
form another site makes it post; that form could create, run, abort or delete
the user's jobs. Browsers say where such a request comes from: ``Origin`` on
every POST and DELETE (and ``Sec-Fetch-Site``). A state-changing request is
refused (403, ``PermissionDenied``; an HTML page for a browser) when it comes
from an origin that is neither the service's own (its public origin, or the
origin the request was addressed to, or one naming the request's ``Host``: the
service reached under another of its names) nor one CORS lets in: ``cors_origins``
(credentialed), or with ``cors_any_origin`` a request carrying no credentials
and naming no user (a trusted proxy names one without either header: a client
certificate, an SSO cookie it keeps).
API clients (pyvo, TOPCAT, STILTS, curl) send no ``Origin`` and are unaffected.
"""

from __future__ import annotations

import functools

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from yarl import URL

from aiouws.errors import AuthenticationRequired, CrossSiteRequest, UWSError
from aiouws.http.cors import CorsPolicy
from aiouws.http.keys import RESOLVER, SETTINGS
from aiouws.http.proxies import request_origin
from aiouws.http.urls import public_origin

__all__ = ["cross_site_guard", "is_cross_site"]

_SAFE = frozenset({hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS})


@functools.lru_cache(maxsize=8)
def _policy(origins: str | None, any_origin: bool) -> CorsPolicy:
    return CorsPolicy(origins, any_origin)


def _origin_of(url: str) -> str:
    try:
        return str(URL(url).origin()).lower()
    except ValueError:
        return url.lower()


def _same_host(origin: str, request: web.Request) -> bool:
    """Whether ``origin`` names the host the browser sent this request to (its
    ``Host``): a page of this service, reached under any of its names. Another
    site's form carries that site's origin with this service's Host."""
    try:
        netloc = URL(origin).raw_authority.lower()
    except ValueError:
        return False
    host = request.headers.get(hdrs.HOST, "").lower()
    return bool(netloc) and netloc == host


def is_cross_site(request: web.Request, *, identified: bool = False) -> str | None:
    """Why ``request`` is a forbidden cross-site one (its origin), or None.

    ``identified``: the request names a user however it does (a trusted
    proxy's header for a client certificate or an SSO cookie it keeps: no
    ``Authorization`` or ``Cookie`` here), so it is not anonymous."""
    if request.method in _SAFE:
        return None
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        fetched = request.headers.get("Sec-Fetch-Site", "").lower()
        return "another site" if fetched == "cross-site" else None
    settings = request.config_dict.get(SETTINGS)
    if settings is None:
        return None
    own = {
        _origin_of(public_origin(request)),
        _origin_of(request_origin(request, settings)),
    }
    if origin.lower() in own or _same_host(origin, request):
        return None
    allowed = _policy(settings.cors_origins, settings.cors_any_origin).allow(origin)
    if allowed is not None:
        _, credentialed = allowed
        anonymous = (
            not identified
            and hdrs.AUTHORIZATION not in request.headers
            and hdrs.COOKIE not in request.headers
        )
        if credentialed or anonymous:
            return None
    shown = origin if origin.isascii() and origin.isprintable() else ascii(origin)
    return shown


async def _identified(request: web.Request) -> bool:
    """Whether a state-changing request from another page names a user (the
    resolver answers once per request; refused credentials count as named,
    none where they are required do not)."""
    resolver = request.config_dict.get(RESOLVER)
    if request.method in _SAFE or hdrs.ORIGIN not in request.headers or not resolver:
        return False
    try:
        return await resolver(request) is not None
    except AuthenticationRequired:  # none given, where required
        return False
    except UWSError:
        return True


@web.middleware
async def cross_site_guard(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Refuse a state-changing request from another site (see the module)."""
    origin = is_cross_site(request, identified=await _identified(request))
    if origin is not None:
        raise CrossSiteRequest(
            f"refused: this request was sent from a page of {origin}, not of this "
            "service. To change jobs, use the service's own pages (or an API "
            "client)."
        )
    return await handler(request)
