"""``aiouws jobs list|show`` as a subprocess on the database of a running app:
a header and a kind column, validated options, result links where the service
serves them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lxml import etree
from testkit import Client

from aiouws.config import Settings

REPO = Path(__file__).resolve().parents[2]
XLINK = "{http://www.w3.org/1999/xlink}href"


async def cli(
    settings: Settings, *args: str, module: str = "taprunner", **env: str
) -> tuple[int, str, str]:
    """Run ``python -m MODULE --dsn ... ARGS``; exit code, stdout, stderr."""
    assert settings.dsn is not None
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", module, "--dsn", settings.dsn),
        *("--data-dir", str(settings.data_dir), *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def finished_job(client: Client, path: str, **params: str) -> str:
    """Create and run a job at ``path``; its id once it is COMPLETED."""
    resp = await client.post(path, data={**params, "PHASE": "RUN"})
    job_id = resp.url.path.rsplit("/", 1)[1]
    text = ""
    for _ in range(30):
        text = await (await client.get(f"{path}/{job_id}?WAIT=5")).text()
        if "<uws:phase>COMPLETED" in text:
            return job_id
    raise AssertionError(text)


def result_hrefs(document: str) -> list[str]:
    root = etree.fromstring(document.encode())
    return [r.get(XLINK) for r in root.iter("{*}result")]


async def test_jobs_list_has_a_header_and_a_kind_column(
    client: Client, settings: Settings
) -> None:
    tap = await finished_job(
        client, "/tap/async", LANG="ADQL", QUERY="SELECT TOP 1 id FROM demo.stars"
    )
    demo = await finished_job(client, "/jobs/demo", seconds="0")

    code, out, err = await cli(settings, "jobs", "list")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == [
        "JOB",
        "ID",
        "KIND",
        "PHASE",
        "CREATED",
        "(UTC)",
        "OWNER",
        "RUN",
        "ID",
    ]
    cells = {row.split()[0]: row.split()[1:3] for row in rows}
    assert cells == {tap: ["tap", "COMPLETED"], demo: ["demo", "COMPLETED"]}
    # Columns line up under the header.
    kind_at = header.index("KIND")
    assert all(row[kind_at:].startswith(("tap ", "demo")) for row in rows)

    code, out, _ = await cli(
        settings, "jobs", "list", "--kind", "demo", "--phase", "completed"
    )
    assert code == 0 and [r.split()[0] for r in out.splitlines()[1:]] == [demo]


async def test_jobs_list_rejects_a_bad_phase_without_traceback(
    settings: Settings,
) -> None:
    code, out, err = await cli(settings, "jobs", "list", "--phase", "BOGUS")
    assert code == 2
    assert "unknown phase 'BOGUS'" in err and "EXECUTING" in err
    assert "Traceback" not in err and out == ""
    code, _, err = await cli(settings, "jobs", "list", "--last", "-1")
    assert code == 2 and "not a positive number" in err


async def test_jobs_show_links_results_where_the_service_serves_them(
    client: Client, settings: Settings
) -> None:
    tap = await finished_job(
        client, "/tap/async", LANG="ADQL", QUERY="SELECT TOP 1 id FROM demo.stars"
    )
    demo = await finished_job(client, "/jobs/demo", seconds="0")
    served = await (await client.get(f"/tap/async/{tap}")).text()
    origin = str(client.make_url("/")).rstrip("/")
    (served_href,) = result_hrefs(served)
    assert served_href.startswith(origin)

    code, out, err = await cli(settings, "jobs", "show", tap)
    assert code == 0, err
    assert result_hrefs(out) == [served_href.removeprefix(origin)]
    assert result_hrefs(out) == [f"/tap/async/{tap}/results/result"]
    assert "relative" in err and "base_url" in err
    # The result is really there, at that path.
    assert (await client.get(result_hrefs(out)[0])).status == 200

    code, out, err = await cli(settings, "jobs", "show", demo)
    assert code == 0, err
    assert result_hrefs(out) == [f"/jobs/demo/{demo}/results/result"]
    assert (await client.get(result_hrefs(out)[0])).status == 200

    base = "https://example.org/astro"
    code, out, err = await cli(
        settings, "jobs", "show", tap, AIOUWS_BASE_URL=base + "/"
    )
    assert code == 0, err
    assert result_hrefs(out) == [f"{base}/tap/async/{tap}/results/result"]
    assert "relative" not in err

    code, _, err = await cli(settings, "jobs", "show", "NoSuchJob0000000000000")
    assert code == 1 and "Traceback" not in err
