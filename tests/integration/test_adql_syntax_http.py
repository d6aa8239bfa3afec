"""ADQL syntax errors reach /tap/sync clients as a 400 DALI error document that
says line, column and what was expected, without parser internals."""

from __future__ import annotations

from adqlsyntax import INTERNALS, MALFORMED
from lxml import etree
from testkit import Client


async def test_sync_syntax_errors_are_dali_error_documents(client: Client) -> None:
    for adql, line, column, says in MALFORMED:
        resp = await client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": adql})
        body = await resp.read()
        assert resp.status == 400, (adql, body)
        root = etree.fromstring(body)
        infos = root.iter("{*}INFO")
        status = next(i for i in infos if i.get("name") == "QUERY_STATUS")
        assert status.get("value") == "ERROR"
        message = status.text or ""
        if not adql.strip():  # a TAP parameter error before any parsing
            assert message == "QUERY parameter missing or empty"
            continue
        assert says in message, (adql, message)
        assert f"line {line}, column {column}" in message, (adql, message)
        for word in INTERNALS:
            assert word not in message, (adql, message)
