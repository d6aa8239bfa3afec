"""Helpers of the page tests: a browser's Accept, an HTML parser, jobs."""

from __future__ import annotations

from html.parser import HTMLParser

from testkit import Client

#: What Chromium sends for a page.
BROWSER = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
HTML = {"Accept": BROWSER}
#: Accept headers of API clients: pyvo (*/*), a plain XML client, none at all,
#: a client preferring XML, TOPCAT/STILTS.
API_ACCEPTS: list[dict[str, str]] = [
    {"Accept": "*/*"},
    {"Accept": "text/xml"},
    {},
    {"Accept": "text/html;q=0.5, text/xml"},
    # Java's default, which TOPCAT and STILTS send.
    {"Accept": "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"},
]
HOSTILE = "<script>alert('x')</script>"


class Elements(HTMLParser):
    """Elements by id and class, and every start tag (for structure checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def by_id(self, ident: str) -> dict[str, str] | None:
        return next((a for _, a in self.tags if a.get("id") == ident), None)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if "id" in a}


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def new_job(client: Client, *, run: bool = False, **params: str) -> str:
    data = {"LANG": "ADQL", **params}
    if run:
        data["PHASE"] = "RUN"
    response = await client.post("/tap/async", data=data, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"].rsplit("/", 1)[1]


async def finished(client: Client, job_id: str) -> str:
    for _ in range(60):
        response = await client.get(f"/tap/async/{job_id}/phase")
        phase = await response.text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        await client.get(f"/tap/async/{job_id}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job_id} did not finish")


def actions(text: str) -> set[str]:
    """The ids of a job page's action forms."""
    return {
        a["id"]
        for t, a in parse(text).tags
        if t == "form" and "job-action" in a.get("class", "")
    }
