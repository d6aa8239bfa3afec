"""HTML pages for people: the template environment, page responses, static assets.

Pages are rendered by the server from Jinja2 templates with autoescaping on
(every value is escaped unless a template marks it safe; no hand-made
escaping). Each page goes out with a Content-Security-Policy that allows
scripts, styles and connections from the service itself only: no inline
script or style, no CDN. Scripts live in static files served by the
application (:func:`install_assets`).

Templates and the structure scripts rely on (keep these stable):

``aiouws/templates/base.html`` (every page)
    ``<html data-page="NAME">`` (``jobs``, ``job``, ``error``, TAP's ``query``,
    ``tables``, ``table``, ``capabilities``, ``availability``, ``examples``);
    ``header.site`` with ``nav#site-nav``; ``main#main``; the page's scripts
    then :attr:`Pages.scripts`, loaded with ``defer``.
``jobs.html`` (a UWS job list)
    ``nav#phase-filter`` (links ``?PHASE=``); ``table#job-list``; each
    ``tr.job`` has ``data-job-id`` and ``data-phase``; ``a.job-link``;
    ``span.phase.phase-PHASE``; ``code.summary`` (the job's query).
``job.html`` (one UWS job), in this order
    ``section#job`` with ``data-job-id``, ``data-phase``, ``data-job-url`` (its
    UWS URL, a path) and ``data-final`` (``true`` in a final phase);
    ``span#job-phase`` (class ``phase phase-PHASE``); ``div#job-actions`` with a
    ``form.job-action`` per allowed action (``form#action-run``,
    ``#action-abort``, ``#action-delete``), each a plain POST with a submit
    ``button``; ``pre#job-query`` when the job has a QUERY;
    ``section#job-error`` with ``p#error-message`` in ERROR; ``ul#job-results``
    of ``a.result-link``; ``div#kind-block`` holding what the job kind's page
    hook adds (TAP: ``taprunner/web/templates/tapjob.html``); ``dl#job-times``
    (``dd#time-creation``, ``#time-start``, ``#time-end``, ``#time-quote``,
    ``#time-duration``, ``#time-destruction``; ISO 8601 with ``Z``);
    ``table#job-parameters``; ``dl#job-info``.
``error.html``
    ``section#error`` with ``data-status`` and ``data-code``; ``p#error-message``.

Scripts: ``/static/uws.js`` (job pages) and ``/static/tap.js`` (TAP pages) are
loaded where present; a page works without them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import jinja2
from aiohttp import hdrs, web
from markupsafe import Markup
from yarl import URL

from aiouws.http.keys import SETTINGS
from aiouws.http.urls import public_origin
from aiouws.models import Job

__all__ = [
    "CSP",
    "JOB_BLOCKS",
    "PAGES",
    "JobBlock",
    "Pages",
    "html_headers",
    "install_assets",
    "local",
    "make_public_assets",
    "page_root",
    "pages_of",
    "register_job_block",
    "render_fragment",
    "render_page",
    "script_urls",
    "site_nav",
    "static_url",
]

#: The policy of every HTML page: only the service's own scripts, styles,
#: images and connections; forms post to the service only; never framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: URL path of the static assets.
STATIC_PREFIX = "/static/"
_MEDIA = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Pages:
    """Templates and static assets of an application's pages.

    ``packages``: ``(package, folder)`` pairs searched in order for templates
    (a plug-in's own first, then aiouws's); ``assets``: the static files, by
    the name they are served under, as ``(package, path inside it)``.
    """

    packages: Sequence[tuple[str, str]] = (("aiouws", "templates"),)
    nav: Sequence[tuple[str, str]] = (("Home", "/"),)
    stylesheets: Sequence[str] = ("uws.css",)
    """Assets every page links as style sheets, in order."""
    scripts: Sequence[str] = ()
    """Assets every page loads as scripts (``defer``), after its own."""
    """Links of every page's header: (label, path below the public origin)."""
    assets: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "uws.css": ("aiouws", "static/uws.css"),
            "uws.js": ("aiouws", "static/uws.js"),
        }
    )

    @cached_property
    def environment(self) -> jinja2.Environment:
        loader = jinja2.ChoiceLoader(
            [jinja2.PackageLoader(package, folder) for package, folder in self.packages]
        )
        env = jinja2.Environment(
            loader=loader,
            autoescape=True,  # every template: these are all HTML
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        return env

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Template ``name`` rendered with ``context`` (values autoescaped)."""
        return self.environment.get_template(name).render(context)

    def asset(self, name: str) -> tuple[bytes, str, str] | None:
        """(body, media type, ETag) of the static asset ``name``; None if unknown."""
        where = self.assets.get(name)
        if where is None:
            return None
        package, path = where
        try:
            body = resources.files(package).joinpath(path).read_bytes()
        except FileNotFoundError:
            return None
        suffix = "." + name.rsplit(".", 1)[-1]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        return body, _MEDIA.get(suffix, "application/octet-stream"), etag


PAGES = web.AppKey("aiouws_pages", Pages)
_DEFAULT = Pages()

JobBlock = Callable[[web.Request, Job], Awaitable[Markup | None]]
"""A job kind's addition to its job page (TAP: the result's preview and its
downloads): an HTML fragment, rendered with :func:`render_fragment`'s escaping."""
#: Job page hooks by job kind name (see :func:`register_job_block`).
JOB_BLOCKS: web.AppKey[dict[str, JobBlock]] = web.AppKey("aiouws_job_blocks")


def register_job_block(app: web.Application, kind: str, hook: JobBlock) -> None:
    """Let ``hook`` add a block to the job pages of ``kind`` served by ``app``."""
    app.setdefault(JOB_BLOCKS, {})[kind] = hook


def pages_of(request: web.Request) -> Pages:
    """The application's pages (aiouws's own when it installed none)."""
    return request.config_dict.get(PAGES, _DEFAULT)


def page_root(request: web.Request) -> str:
    """The path the service's URLs start with (``""``, or a proxy's prefix).

    Pages link with paths, not absolute URLs: a browser stays on the host it
    came to (``localhost`` or an address), so that its forms post to the same
    origin (the cross-site check and CSP's ``form-action 'self'`` hold).
    """
    if SETTINGS not in request.config_dict:
        return ""
    return URL(public_origin(request)).path.rstrip("/")


def local(url: str) -> str:
    """An absolute URL of the service as a path (with query) for a page."""
    found = URL(url)
    return str(found.relative()) if found.is_absolute() else url


def site_nav(request: web.Request) -> tuple[tuple[str, str], ...]:
    """Links of every page's header, as paths."""
    root = page_root(request)
    return tuple((label, root + path) for label, path in pages_of(request).nav)


def script_urls(request: web.Request, *names: str) -> tuple[str, ...]:
    """URLs of those static scripts ``names`` the application serves."""
    assets = pages_of(request).assets
    return tuple(static_url(request, n) for n in names if n in assets)


def static_url(request: web.Request, name: str) -> str:
    """The URL of static asset ``name`` as the client reaches it."""
    return page_root(request) + STATIC_PREFIX + name


def html_headers() -> dict[str, str]:
    """Headers of every HTML page: CSP, no sniffing, no framing, no caching."""
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        hdrs.CACHE_CONTROL: "no-store",
        hdrs.VARY: hdrs.ACCEPT,
    }


def render_fragment(request: web.Request, name: str, **context: Any) -> Markup:
    """Template ``name`` as an HTML fragment to put into a page (escaped inside)."""
    return Markup(pages_of(request).render(name, context))  # noqa: S704  # autoescaped


def render_page(
    request: web.Request, name: str, *, status: int = 200, **context: Any
) -> web.Response:
    """The page ``name`` as a response with :func:`html_headers`.

    Every template gets ``root`` (:func:`page_root`), ``nav``,
    ``stylesheets`` and ``scripts`` (URLs: ``extra_scripts`` given here, then the
    application's own) and a ``title`` default.
    """
    root = page_root(request)
    pages = pages_of(request)
    own = tuple(context.pop("extra_scripts", ()))
    full = {
        "root": root,
        "title": "",
        "nav": site_nav(request),
        "stylesheets": [root + STATIC_PREFIX + s for s in pages.stylesheets],
        "scripts": own + script_urls(request, *pages.scripts),
        **context,
    }
    return web.Response(
        status=status,
        text=pages.render(name, full),
        content_type="text/html",
        charset="utf-8",
        headers=html_headers(),
    )


def install_assets(app: web.Application, pages: Pages) -> None:
    """Serve ``pages``' static assets at ``/static/NAME`` (public, with ETags)
    and render ``app``'s pages with them."""
    app[PAGES] = pages

    async def serve(request: web.Request) -> web.Response:
        found = pages.asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such file")
        body, media_type, etag = found
        headers = {
            hdrs.ETAG: etag,
            hdrs.CACHE_CONTROL: "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get(hdrs.IF_NONE_MATCH) == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=media_type, headers=headers)

    app.router.add_get(STATIC_PREFIX + "{name}", serve)


def make_public_assets(pages: Pages) -> tuple[str, ...]:
    """The URL paths of ``pages``' assets (to answer without credentials)."""
    return tuple(STATIC_PREFIX + name for name in pages.assets)
