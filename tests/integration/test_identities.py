"""Identities as owners of proprietary access: groups from the password file and
a trusted proxy, X.509 subject DNs, OIDC subjects (pattern, hashed), and the
challenges and security methods a client is told about.

The database of test_proprietary.py (aclkit): ``secret.t`` for a group or a
user, the schema ``vault`` for another user.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from aclkit import SECRET, acl_database, sync, values
from lxml import etree
from testkit import MakeClient

from aiouws.config import ConfigError, Settings
from aiouws.http.auth import hash_password
from aiouws.http.identity import stored_owner
from taprunner.schema import access
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

TEAM = access.Principal("group", "team")
NOBODY = access.Principal("user", "nobody")
SSO = "ivo://ivoa.net/sso#"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": "Basic " + token}


def _security_methods(document: bytes) -> set[str | None]:
    root = etree.fromstring(document)
    methods: set[str | None] = set()
    for interface in root.iter("interface"):
        if "ParamHTTP" not in interface.get(XSI_TYPE, ""):
            continue  # the examples' browser page
        found = interface.find("securityMethod")
        methods.add(None if found is None else found.get("standardID"))
    return methods


async def test_password_file_groups(
    settings: Settings, db_dsn: str, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    await acl_database(db_dsn, TEAM, NOBODY)
    passwd = tmp_path / "passwd"
    cheap = 1000  # iterations: the test need not be slow
    passwd.write_text(
        f"alice:{hash_password('a', iterations=cheap)}:team,other\n"
        f"bob:{hash_password('b', iterations=cheap)}\n"
        "# eve's line keeps the old format\n"
        f"eve:{hash_password('e', iterations=cheap)}\n"
    )
    app_settings = replace(settings, auth="basic", passwd_file=passwd)
    client = await aiohttp_client(
        create_tap_app(app_settings, TapSettings.for_service(app_settings))
    )
    query = "SELECT hush FROM secret.t"
    status, body = await sync(client, _basic("alice", "a"), query)
    assert status == 200 and SECRET in values(body)
    for headers in (_basic("bob", "b"), _basic("eve", "e"), {}):
        status, body = await sync(client, headers, query)
        assert status == 400 and SECRET.encode() not in body
    wrong = await client.get("/tap/tables", headers=_basic("alice", "x"))
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="aiouws", charset="UTF-8"'
    caps = await (await client.get("/tap/capabilities")).read()
    assert _security_methods(caps) == {None, SSO + "BasicAA"}


async def test_groups_header_only_from_a_trusted_proxy(
    settings: Settings, db_dsn: str, aiohttp_client: MakeClient
) -> None:
    await acl_database(db_dsn, TEAM, NOBODY)
    base = replace(settings, auth="header", auth_groups_header="X-Remote-Groups")
    trusted = await aiohttp_client(create_tap_app(base, TapSettings.for_service(base)))
    headers = {"X-Remote-User": "dave", "X-Remote-Groups": "other, team"}
    status, body = await sync(trusted, headers, "SELECT hush FROM secret.t")
    assert status == 200 and SECRET in values(body)
    status, _ = await sync(
        trusted,
        headers | {"X-Remote-Groups": "bad group!"},
        "SELECT 1 AS x FROM pub.open",
    )
    assert status == 400
    await trusted.close()
    # Served to a peer that is no trusted proxy (the test client, on loopback):
    # the user header is refused, and so is the groups header with basic auth.
    elsewhere = replace(base, trusted_proxies="192.0.2.0/24")
    client = await aiohttp_client(
        create_tap_app(elsewhere, TapSettings.for_service(elsewhere))
    )
    status, body = await sync(client, headers, "SELECT hush FROM secret.t")
    assert status == 403 and SECRET.encode() not in body
    status, body = await sync(
        client, {"X-Remote-Groups": "team"}, "SELECT hush FROM secret.t"
    )
    assert status == 400 and SECRET.encode() not in body  # anonymous: ignored


async def test_x509_subject_dns_own_and_are_granted(
    settings: Settings, db_dsn: str, aiohttp_client: MakeClient
) -> None:
    dn = "CN=Alice Example,OU=Astro,O=Observatory,C=DE"
    await acl_database(db_dsn, access.Principal("user", dn), NOBODY)
    app_settings = replace(settings, auth="x509", require_auth=True)
    client = await aiohttp_client(
        create_tap_app(app_settings, TapSettings.for_service(app_settings))
    )
    header = "X-SSL-Client-S-DN"
    status, body = await sync(client, {header: dn}, "SELECT hush FROM secret.t")
    assert status == 200 and SECRET in values(body)
    other = "CN=Bob,O=Observatory,C=DE"
    status, body = await sync(client, {header: other}, "SELECT hush FROM secret.t")
    assert status == 400 and SECRET.encode() not in body
    # nginx passes "(null)" without a certificate: anonymous, refused here.
    for headers in ({header: "(null)"}, {}):
        resp = await client.get("/tap/tables", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "ivoa_x509"
    job = await client.post(
        "/tap/async",
        data={"QUERY": "SELECT 1 AS x FROM pub.open", "LANG": "ADQL"},
        headers={header: dn},
    )
    owner = await client.get(job.url.path + "/owner", headers={header: dn})
    assert await owner.text() == dn
    caps = await (await client.get("/tap/capabilities")).read()
    assert _security_methods(caps) == {SSO + "tls-with-certificate"}


async def test_oidc_subjects_stored_hashed(
    settings: Settings, db_dsn: str, aiohttp_client: MakeClient
) -> None:
    subject = "https://idp.example.org/|u-4711"
    app_settings = replace(
        settings,
        auth="header",
        auth_header="X-Auth-Request-User",
        owner_pattern=r"[\w.@|:/+-]{1,256}",
        owner_hash=True,
        require_auth=True,
        auth_login_methods="bearer,cookie",
        auth_login_url="https://sso.example.org/login",
        auth_login_standard_id=SSO + "OpenID",
    )
    owner = stored_owner(app_settings, subject)
    assert owner == "sha256:" + hashlib.sha256(subject.encode()).hexdigest()
    await acl_database(db_dsn, access.Principal("user", owner), NOBODY)
    client = await aiohttp_client(
        create_tap_app(app_settings, TapSettings.for_service(app_settings))
    )
    me = {"X-Auth-Request-User": subject}
    status, body = await sync(client, me, "SELECT hush FROM secret.t")
    assert status == 200 and SECRET in values(body)
    job = await client.post(
        "/tap/async", data={"QUERY": "SELECT 1 AS x FROM pub.open"}, headers=me
    )
    assert await (await client.get(job.url.path + "/owner", headers=me)).text() == owner
    status, _ = await sync(
        client,
        {"X-Auth-Request-User": "no spaces allowed"},
        "SELECT 1 AS x FROM pub.open",
    )
    assert status == 400
    resp = await client.get("/tap/tables")
    assert resp.status == 401
    where = f'standard_id="{SSO}OpenID", access_url="https://sso.example.org/login"'
    assert resp.headers["WWW-Authenticate"] == (
        f"Bearer, ivoa_bearer {where}, ivoa_cookie {where}"
    )
    caps = await (await client.get("/tap/capabilities")).read()
    assert _security_methods(caps) == {SSO + "token", SSO + "cookie"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner_pattern": "(unclosed"}, "owner_pattern"),
        ({"auth_login_methods": "bearer,kerberos"}, "auth_login_methods"),
        ({"auth": "x509 "}, "auth must be"),
    ],
)
def test_bad_identity_settings(
    settings: Settings, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(settings, **changes).validate()  # type: ignore[arg-type]
