"""Property-based fuzzing of the whole HTTP surface: no 5xx, whatever is sent.

Hypothesis generates requests to every endpoint of the TAP/UWS service (sync,
async creation, the job list and its filters, every job resource and action,
uploads, the VOSI resources, odd methods and headers) with values that include
huge, unicode, NUL and malformed strings. Each answer must be below 500; after
them all the service still answers a normal query. The requests are sent from a
thread (plain ``http.client``, so any method and header can be sent) to the real
test server, whose event loop keeps serving meanwhile. Bounded in examples and
time for CI.
"""

from __future__ import annotations

import asyncio
import http.client
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from querywatch import final, submit
from testkit import Client

from aiouws.config import Settings

EXAMPLES = 300
#: Per request; a refused query is fast, and nothing here should run long.
TIMEOUT = 30.0

#: Values that have broken parsers before, beside what Hypothesis invents.
ODD = [
    "",
    " ",
    "0",
    "-0",
    "-1",
    "1",
    "3.5",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "9" * 40,
    "-" + "9" * 40,
    "0x10",
    "\x00",
    "a\x00b",
    "%00",
    "\ufeff",
    "\u202e",
    "😀" * 10,
    "é" * 1000,
    "x" * 100_000,
    "'",
    '"',
    "\\",
    "<",
    "]]>",
    "&amp;",
    "../../etc/passwd",
    "2024-01-01T00:00:00Z",
    "2024-01-01",
    "2024-02-30T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-01-01T00:00:00+99:00",
    "2024-01-01T25:61:61Z",
    "RUN",
    "ABORT",
    "SUSPEND",
    "ARCHIVED",
    "DELETE",
    "PENDING",
    "QUEUED",
    "EXECUTING",
    "COMPLETED",
    "ERROR",
    "HELD",
    "UNKNOWN",
    "ADQL",
    "ADQL-2.1",
    "PQL",
    "doQuery",
    "getCapabilities",
    "votable",
    "csv",
    "tsv",
    "fits",
    "text/xml",
    "application/x-votable+xml;serialization=binary2",
    "t,param:t",
    "t,http://127.0.0.1:1/x",
    "t,file:///etc/passwd",
    "1t,param:x",
    "t,param:t;t,param:t",
    "SELECT TOP 3 id FROM demo.stars",
    "SELECT TOP 1 * FROM tap_schema.tables",
    "SELECT TOP 1 id FROM demo.stars WHERE id IN (" + "1," * 60_000 + "1)",
    "SELECT " + "(" * 60 + "1" + ")" * 60 + " FROM demo.stars",
    "SELECT TOP 1 id FROM demo.stars WHERE " + "NOT " * 400 + "id = 1",
    "SELECT 1; DROP TABLE demo.stars",
    "SELECT pg_sleep(100)",
]
values = st.one_of(
    st.sampled_from(ODD),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=200),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.dates().map(lambda d: d.isoformat() + "T00:00:00Z"),
)

TAP_PARAMS = ["LANG", "QUERY", "MAXREC", "RESPONSEFORMAT", "FORMAT", "REQUEST"]
UWS_PARAMS = ["PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "UPLOAD"]
names = st.one_of(
    st.sampled_from(TAP_PARAMS + UWS_PARAMS + ["WAIT", "ACTION", "AFTER", "LAST"]),
    st.sampled_from(TAP_PARAMS + UWS_PARAMS).map(str.lower),
    st.text(min_size=1, max_size=20),
)
param_lists = st.lists(st.tuples(names, values), max_size=6)
JOB_RESOURCES = [
    "",
    "/phase",
    "/executionduration",
    "/destruction",
    "/quote",
    "/owner",
    "/error",
    "/parameters",
    "/parameters/query",
    "/results",
    "/results/result",
    "/results/nope",
    "/runId",
    "/uploads/t",
]
VOSI = [
    "/",
    "/tap",
    "/tap/capabilities",
    "/tap/availability",
    "/tap/tables",
    "/tap/tables/demo.stars",
    "/tap/examples",
    "/tap/async/stylesheet.xsl",
    "/metrics",
]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60
)
headers = st.dictionaries(
    st.sampled_from(
        ["Accept", "Accept-Encoding", "Accept-Language", "Origin", "X-Remote-User"]
        + ["Authorization", "If-None-Match", "Range", "X-Forwarded-Proto"]
    ),
    st.one_of(header_text, st.sampled_from(["*/*", "gzip", "text/xml", "bytes=5-1"])),
    max_size=3,
) | st.fixed_dictionaries(
    {"Host": st.sampled_from(["example.org", "evil.example.com:8", "127.0.0.1:1", ""])}
)


@dataclass(frozen=True)
class Call:
    """One generated HTTP request."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] | None = None
    files: list[tuple[str, bytes]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: Of a urlencoded body: "" (none), a usual one, or one that cannot be.
    charset: str = ""


def _urlencode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(
        [
            (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
            for k, v in pairs
        ]
    )


@st.composite
def calls(draw: st.DrawFn, jobs: list[str]) -> Call:
    kind = draw(st.sampled_from(["sync", "create", "list", "job", "vosi", "odd"]))
    extra = draw(headers)
    cs = draw(st.sampled_from(["", "", "utf-8", "latin-1", "utf-16", "nope"]))
    if kind == "sync":
        files = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["t", "u", "T", "x y"]), st.binary(max_size=300)
                ),
                max_size=2,
            )
        )
        method = "POST" if files else draw(st.sampled_from(["GET", "POST"]))
        pairs = [("LANG", "ADQL"), *draw(param_lists)]
        if method == "GET":
            return Call(method, "/tap/sync", query=pairs, headers=extra)
        return Call(
            method, "/tap/sync", form=pairs, files=files, headers=extra, charset=cs
        )
    if kind == "create":
        pairs = draw(param_lists)
        if draw(st.booleans()):
            pairs.append(("PHASE", "RUN"))
        return Call("POST", "/tap/async", form=pairs, headers=extra, charset=cs)
    if kind == "list":
        filters = draw(
            st.lists(st.tuples(st.sampled_from(["PHASE", "AFTER", "LAST"]), values))
        )
        return Call("GET", "/tap/async", query=filters, headers=extra)
    if kind == "job":
        job = draw(st.one_of(st.sampled_from(jobs), st.text(max_size=30).map(quote)))
        resource = draw(st.sampled_from(JOB_RESOURCES))
        method = draw(st.sampled_from(["GET", "GET", "POST", "DELETE"]))
        pairs = draw(param_lists)
        path = f"/tap/async/{job}{resource}"
        if method == "POST":
            return Call(method, path, form=pairs, headers=extra)
        return Call(method, path, query=pairs, headers=extra)
    if kind == "vosi":
        path = draw(st.sampled_from(VOSI))
        return Call("GET", path, query=draw(param_lists), headers=extra)
    method = draw(st.sampled_from(METHODS))
    path = draw(
        st.one_of(
            st.sampled_from(VOSI + ["/tap/sync", "/tap/async"]),
            st.text(max_size=30).map(lambda t: "/" + quote(t)),
        )
    )
    return Call(method, path, query=draw(param_lists), headers=extra)


def send(port: int, call: Call) -> tuple[int, bytes]:
    """Send ``call`` to the server; its status and (the start of its) body."""
    path = call.path
    if call.query:
        path += "?" + _urlencode(call.query)
    body: bytes | None = None
    headers = dict(call.headers)
    if call.files:
        boundary = "fuzzboundary7d1"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{{}}"\r\n\r\n'
        parts = [
            (head.format(k) + v).encode("utf-8", "surrogatepass") + b"\r\n"
            for k, v in call.form or []
        ]
        parts += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.xml"\r\nContent-Type: text/xml\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for name, data in call.files
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif call.form is not None:
        body = _urlencode(call.form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded" + (
            f"; charset={call.charset}" if call.charset else ""
        )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(call.method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(2000)
    finally:
        conn.close()


def fuzz(port: int, jobs: list[str], seen: list[tuple[Call, int]]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(calls(jobs))
    def one(call: Call) -> None:
        status, body = send(port, call)
        seen.append((call, status))
        assert status < 500, (call, status, body)

    one()


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Short WAITs: a fuzzed WAIT must not hold the test for the default 50 s."""
    from dataclasses import replace

    return replace(settings, wait_cap=1)


async def test_no_request_gets_a_5xx_and_the_service_still_answers(
    client: Client,
) -> None:
    pending = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 2 id FROM demo.stars"},
        allow_redirects=False,
    )
    jobs = [str(pending.headers["Location"]).rsplit("/", 1)[1]]
    jobs.append(await submit(client, QUERY="SELECT TOP 2 id FROM demo.stars"))
    jobs.append(await submit(client, QUERY="SELECT nope FROM nowhere"))
    for job in jobs[1:]:
        await final(client, job)
    port = client.server.port
    assert port is not None
    seen: list[tuple[Call, int]] = []
    start = time.monotonic()
    await asyncio.to_thread(fuzz, port, jobs, seen)
    took = time.monotonic() - start
    statuses = {status for _, status in seen}
    assert len(seen) >= EXAMPLES // 2 and len(statuses) > 3, statuses
    # Afterwards: a normal query, sync and async, and the VOSI resources.
    resp = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT TOP 3 id FROM demo.stars"},
    )
    assert resp.status == 200 and (await resp.text()).count("<TR>") in (0, 3)
    job = await submit(client, QUERY="SELECT TOP 3 id FROM demo.stars")
    assert await final(client, job) == "COMPLETED"
    assert (await client.get("/tap/availability")).status == 200
    assert took < 120, f"{len(seen)} requests took {took:.0f} s"


async def test_destruction_in_year_one_is_a_400(client: Client) -> None:
    """Found by this test: the job's GET was a 500 until the reaper ran."""
    resp = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT 1", "DESTRUCTION": "0001-01-01"},
        allow_redirects=False,
    )
    assert resp.status == 400, await resp.text()


async def test_a_malformed_multipart_part_header_is_a_400(client: Client) -> None:
    """Found by this test: aiohttp's InvalidHeader came out of read_params, a 500."""
    port = client.server.port
    assert port is not None
    call = Call("POST", "/tap/sync", form=[("\x1f", "x")], files=[("t", b"<VOTABLE/>")])
    status, body = await asyncio.to_thread(send, port, call)
    assert status == 400 and b"malformed multipart body" in body, body
    assert b"QUERY_STATUS" in body  # a DALI error document
    call = Call("POST", "/tap/async", form=[("a\x7fb", "x")], files=[("t", b"")])
    status, body = await asyncio.to_thread(send, port, call)
    assert status == 400, body


async def test_an_empty_host_header_is_no_5xx(client: Client) -> None:
    """An empty Host falls back to the listening address (aiouws/http/proxies.py);
    it used to make every generated URL raise 'URL should be absolute'."""
    port = client.server.port
    assert port is not None
    call = Call("POST", "/tap/async", form=[], headers={"Host": ""})
    status, _ = await asyncio.to_thread(send, port, call)
    assert status == 303
    # The capabilities' access URLs (the XML list of an anonymous client is
    # empty, and the stylesheet instruction is opt-in).
    call = Call("GET", "/tap/capabilities", headers={"Host": ""})
    status, body = await asyncio.to_thread(send, port, call)
    assert status == 200 and f"127.0.0.1:{port}".encode() in body, body
