"""Who a request's owner is beyond a name: groups, certificates, subjects.

- Groups come from the password file (``user:hash:group1,group2``) and from a
  trusted proxy's ``auth_groups_header``; a request names them once its owner
  is resolved (:func:`request_groups`). From a peer that is no trusted proxy
  the groups header is refused (403), as the user header is.
- ``auth = "x509"``: the owner is the subject DN of the client's certificate,
  which a trusted proxy that checked it passes in ``auth_dn_header`` (nginx:
  ``proxy_set_header X-SSL-Client-S-DN $ssl_client_s_dn;``).
- ``owner_pattern`` widens the names ``auth_header`` may carry (OIDC
  subjects); ``owner_hash`` stores owners as digests (:func:`stored_owner`).
- :func:`challenges`: the ``WWW-Authenticate`` values of a 401, the way the
  IVOA's AuthVO (SSO_next) work describes them, and :func:`security_methods`
  the capabilities' ``securityMethod`` standardIDs, for the methods enabled.
"""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

from aiouws.config import Settings
from aiouws.errors import PermissionDenied, UsageError
from aiouws.http.passwords import GROUP_NAME
from aiouws.trust import ProxyTrust

__all__ = [
    "DEFAULT_OWNER",
    "GROUPS",
    "challenges",
    "header_groups",
    "owner_matcher",
    "request_groups",
    "security_methods",
    "stored_owner",
    "x509_owner",
]

#: Owner names by default (user header, password file).
DEFAULT_OWNER = re.compile(r"^[\w.@+-]{1,128}$")
#: A subject DN as nginx writes it (RFC 2253): printable, no control characters.
_DN = re.compile(r"^[^\x00-\x1f\x7f]{3,1024}$")
#: The groups a request's owner belongs to (set with the owner, see auth.py).
GROUPS: web.RequestKey[frozenset[str]] = web.RequestKey("aiouws_groups", frozenset)

SSO = "ivo://ivoa.net/sso#"
#: securityMethod standardIDs (IVOA SSO) of each login.
METHOD_IDS = {
    "basic": SSO + "BasicAA",
    "x509": SSO + "tls-with-certificate",
    "bearer": SSO + "token",
    "cookie": SSO + "cookie",
}


def owner_matcher(settings: Settings) -> re.Pattern[str]:
    """What owner names ``auth_header`` may carry."""
    if settings.owner_pattern:
        return re.compile(settings.owner_pattern)
    return DEFAULT_OWNER


def stored_owner(settings: Settings, identity: str) -> str:
    """The owner the service stores for ``identity``: itself, or with
    ``owner_hash`` its ``sha256:`` digest (also what ``tap grant --user`` takes)."""
    if not settings.owner_hash:
        return identity
    return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()


def x509_owner(
    request: web.Request, settings: Settings, trust: ProxyTrust
) -> str | None:
    """The certificate's subject DN a trusted proxy passed, or None.

    Raises
    ------
    PermissionDenied
        The header came from a peer that is no trusted proxy.
    UsageError
        Not a DN (control characters, too long).
    """
    value = request.headers.get(settings.auth_dn_header, "").strip()
    if not value or value == "(null)":  # nginx without a client certificate
        return None
    if not trust.trusts(request.remote):
        raise PermissionDenied(
            f"{settings.auth_dn_header} is only believed from a trusted proxy"
        )
    if not _DN.match(value):
        raise UsageError(f"invalid subject DN in {settings.auth_dn_header}")
    return stored_owner(settings, value)


def header_groups(
    request: web.Request, settings: Settings, trust: ProxyTrust
) -> frozenset[str]:
    """The groups a trusted proxy names in ``auth_groups_header``.

    Raises
    ------
    PermissionDenied
        The header came from a peer that is no trusted proxy.
    UsageError
        A name that is not a group name.
    """
    name = settings.auth_groups_header
    value = request.headers.get(name, "").strip() if name else ""
    if not value:
        return frozenset()
    if not trust.trusts(request.remote):
        raise PermissionDenied(f"{name} is only believed from a trusted proxy")
    groups = frozenset(g.strip() for g in value.split(",") if g.strip())
    if not all(GROUP_NAME.match(g) for g in groups):
        raise UsageError(f"invalid group name in {name}")
    return groups


def request_groups(request: web.Request) -> frozenset[str]:
    """The groups of the request's owner (empty: anonymous, or no group);
    known once the owner is resolved (``request_owner``)."""
    groups: frozenset[str] = request.get(GROUPS, frozenset())
    return groups


def _login_methods(settings: Settings) -> list[str]:
    methods = {"basic": ["basic"], "x509": ["x509"]}.get(settings.auth, [])
    if settings.auth == "header":
        methods = [
            m.strip() for m in settings.auth_login_methods.split(",") if m.strip()
        ]
    return methods


def challenges(settings: Settings) -> list[str]:
    """``WWW-Authenticate`` challenges of a 401, as the IVOA's SSO_next /
    AuthVO work (and CADC's services) send them: ``Basic`` for basic
    authentication; ``ivoa_x509`` for a client certificate; for the logins a
    proxy offers, ``Bearer`` and ``ivoa_bearer``, or ``ivoa_cookie``, each with
    the login's ``standard_id`` and ``access_url`` (``auth_login_url``)."""
    values = []
    login = settings.auth_login_url.replace('"', "%22")
    where = f'standard_id="{settings.auth_login_standard_id}"'
    where += f', access_url="{login}"' if login else ""
    for method in _login_methods(settings):
        if method == "basic":
            values.append('Basic realm="aiouws", charset="UTF-8"')
        elif method == "x509":
            values.append("ivoa_x509")
        elif method == "bearer":
            values += ["Bearer", f"ivoa_bearer {where}"]
        else:
            values.append(f"ivoa_cookie {where}")
    return values


def security_methods(settings: Settings) -> list[str | None]:
    """The capabilities' ``securityMethod`` standardIDs: anonymous access
    (None) unless ``require_auth``, then one per login enabled."""
    methods: list[str | None] = [] if settings.require_auth else [None]
    methods += [METHOD_IDS[m] for m in _login_methods(settings)]
    return methods or [None]
