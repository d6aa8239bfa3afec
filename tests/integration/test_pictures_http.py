"""The pictures on a completed TAP job's page, over real HTTP: a sky plot with
one point per preview row (from RA/Dec UCDs or a POINT column), histograms of
the numeric columns (also of a CSV result), none where there is nothing to draw,
and nothing on the XML a client gets."""

from __future__ import annotations

import re

from testkit import Client

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def completed_page(client: Client, query: str, **params: str) -> str:
    data = {"LANG": "ADQL", "QUERY": query, "PHASE": "RUN", **params}
    response = await client.post("/tap/async", data=data, allow_redirects=False)
    assert response.status == 303, await response.text()
    job = "/tap/async/" + response.headers["Location"].rsplit("/", 1)[1]
    phase = ""
    for _ in range(60):
        phase = await (await client.get(job + "/phase")).text()
        if phase in ("COMPLETED", "ERROR"):
            break
        await client.get(f"{job}?WAIT=5&PHASE={phase}")
    assert phase == "COMPLETED"
    response = await client.get(job, headers=BROWSER)
    assert response.content_type == "text/html"
    return await response.text()


def sky_plot(page: str) -> str:
    found = re.search(r'<svg[^>]*class="sky-plot".*?</svg>', page, re.S)
    assert found, "no sky plot"
    return found.group(0)


HISTOGRAM = re.compile(
    r'<details class="histogram picture" data-column="([^"]+)"[^>]*>(.*?)</details>',
    re.S,
)


def histograms(page: str) -> dict[str, str]:
    return dict(HISTOGRAM.findall(page))


async def test_a_cone_gets_a_sky_plot_and_histograms(client: Client) -> None:
    page = await completed_page(
        client,
        "SELECT TOP 40 id, ra, dec, mag, name FROM demo.stars ORDER BY id",
    )
    svg = sky_plot(page)
    assert 'data-points="40"' in svg
    assert svg.count("<circle ") == 40
    assert ">ra (deg)</text>" in svg and ">dec (deg)</text>" in svg
    drawn = histograms(page)
    assert sorted(drawn) == ["dec", "id", "mag", "ra"]  # not the names
    assert all(h.count('class="bar"') >= 2 for h in drawn.values())
    # The magnitude's histogram is the one open.
    assert re.search(r'data-column="mag" open>', page)
    # The pictures come after the preview, inside the TAP block.
    assert page.index('id="preview"') < page.index('id="pictures"')


async def test_a_point_column_gets_a_sky_plot(client: Client) -> None:
    page = await completed_page(
        client,
        "SELECT TOP 12 POINT('ICRS', ra, dec) AS pos FROM demo.stars ORDER BY id",
    )
    assert sky_plot(page).count("<circle ") == 12


async def test_a_csv_result_gets_histograms_of_its_numbers(client: Client) -> None:
    page = await completed_page(
        client,
        "SELECT TOP 30 id, mag, name FROM demo.stars ORDER BY id",
        RESPONSEFORMAT="csv",
    )
    assert 'class="sky-plot"' not in page  # CSV says nothing of positions
    assert sorted(histograms(page)) == ["id", "mag"]


async def test_nothing_to_draw_draws_nothing(client: Client) -> None:
    page = await completed_page(client, "SELECT TOP 5 name FROM demo.stars")
    assert 'id="preview"' in page and 'id="pictures"' not in page
    one = await completed_page(client, "SELECT COUNT(*) AS n FROM demo.stars")
    assert 'id="pictures"' not in one  # one value makes no histogram


async def test_clients_get_the_job_document_without_pictures(client: Client) -> None:
    await completed_page(client, "SELECT TOP 3 id, ra, dec FROM demo.stars")
    listing = await client.get("/tap/async", headers={"Accept": "*/*"})
    assert listing.content_type.endswith("xml")
    assert "<svg" not in await listing.text()
