"""deploy/: Debian's nginx, configured from deploy/nginx.conf, in front of a live
server; and the systemd unit checked by systemd-analyze.

Through the proxy: Location headers point at the public base URL, results
download whole, and the user is whom nginx authenticated (a client's own
X-Remote-User header never gets through).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from liveserver import REPO_ROOT, LiveServer, free_port, start_server
from opskit import call, run_tap_job

DEPLOY = REPO_ROOT / "deploy"
USERS = {"alice": "wonderland", "bob": "builder"}


def _nginx() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


def render(template: str, **values: str) -> str:
    """deploy/nginx.conf with its ``{{NAME}}`` placeholders replaced."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    live = [line for line in template.splitlines() if not line.lstrip().startswith("#")]
    assert not any("{{" in line for line in live), "a placeholder is left"
    return template


@dataclass
class Proxied:
    server: LiveServer
    url: str  # the public base URL: nginx


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nginx not listening:\n{log.read_text()}")


@pytest.fixture(scope="module")
def proxied(
    e2e_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    nginx = _nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/test installs it as root)")
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    server = start_server(
        e2e_dsn,
        work / "data",
        env={"AIOUWS_AUTH": "header", "AIOUWS_BASE_URL": public},
    )
    htpasswd = work / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in USERS.items()))
    site = render(
        (DEPLOY / "nginx.conf").read_text(),
        SERVER_NAME="localhost",
        LISTEN=f"127.0.0.1:{port}",
        UPSTREAM=f"127.0.0.1:{server.port}",
        HTPASSWD=str(htpasswd),
    )
    (work / "site.conf").write_text(site)
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / temp).mkdir()
    (work / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/site.conf;
}}
"""
    )
    test = subprocess.run(
        [nginx, "-t", "-p", str(work), "-c", str(work / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(work / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_listening(port, process, work / "error.log")
        yield Proxied(server, public)
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        server.stop()


def _login(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_location_headers_point_at_the_public_url(proxied: Proxied) -> None:
    status, headers, body = call(
        proxied.url + "/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"},
        headers=_login("alice"),
    )
    assert status == 303, body
    assert headers["Location"].startswith(proxied.url + "/tap/async/")
    status, _, document = call(headers["Location"], headers=_login("alice"))
    assert status == 200
    assert proxied.url.encode() + b"/tap/async/" not in document  # no results yet
    job_id, phase = run_tap_job(
        proxied.url + "/tap", "SELECT TOP 1 id FROM demo.stars", headers=_login("alice")
    )
    assert phase == "COMPLETED"
    status, _, document = call(
        f"{proxied.url}/tap/async/{job_id}", headers=_login("alice")
    )
    assert status == 200  # the result's href
    assert proxied.url.encode() + f"/tap/async/{job_id}/results/".encode() in document


def test_result_download_through_the_proxy(proxied: Proxied) -> None:
    query = "SELECT TOP 30000 a.id, b.ra FROM demo.stars AS a, demo.stars AS b"
    job_id, phase = run_tap_job(
        proxied.url + "/tap", query, headers=_login("bob"), RESPONSEFORMAT="csv"
    )
    assert phase == "COMPLETED"
    path = f"/tap/async/{job_id}/results/result"
    status, _, through = call(proxied.url + path, headers=_login("bob"))
    assert status == 200
    status, _, direct = call(
        proxied.server.url + path, headers={"X-Remote-User": "bob"}
    )
    assert status == 200
    assert through == direct
    assert len(through) > 256 * 1024  # a file sent with sendfile, streamed by nginx
    assert through.count(b"\n") == 30001
    status, _, sync = call(
        proxied.url + "/tap/sync",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
        headers=_login("bob"),
    )
    assert status == 200
    assert sync == direct


def test_the_proxy_names_the_user_and_overrides_the_client(proxied: Proxied) -> None:
    # bob claims to be alice in the header the service trusts: nginx replaces it.
    job_id, _ = run_tap_job(
        proxied.url + "/tap",
        "SELECT TOP 1 id FROM demo.stars",
        headers={**_login("bob"), "X-Remote-User": "alice"},
    )
    status, _, document = call(
        proxied.url + f"/tap/async/{job_id}", headers=_login("bob")
    )
    assert status == 200
    assert b"<uws:ownerId>bob</uws:ownerId>" in document
    status, _, _ = call(
        proxied.url + f"/tap/async/{job_id}",
        headers={**_login("alice"), "X-Remote-User": "bob"},
    )
    assert status in (403, 404)  # alice (as nginx says) may not see bob's job
    status, _, _ = call(
        proxied.server.url + f"/tap/async/{job_id}", headers={"X-Remote-User": "bob"}
    )
    assert status == 200


def test_without_login_nginx_refuses(proxied: Proxied) -> None:
    status, _, _ = call(
        proxied.url + "/tap/availability", headers={"X-Remote-User": "alice"}
    )
    assert status == 401
    status, _, _ = call(proxied.url + "/tap/availability", headers=_login("alice"))
    assert status == 200
    status, _, _ = call(proxied.url + "/metrics", headers=_login("alice"))
    assert status == 404  # not for the world


def test_systemd_unit_verifies() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "aiouws.service").read_text()
    for key in ("User=aiouws", "EnvironmentFile=", "NoNewPrivileges=yes"):
        assert key in unit
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    copy = work / f"aiouws-{os.getpid()}.service"
    # The unit as installed, with this machine's Python in place of /opt/aiouws's.
    copy.write_text(unit.replace("/opt/aiouws/.venv/bin/python", sys.executable))
    try:
        result = subprocess.run(
            [analyze, "verify", str(copy)], capture_output=True, text=True
        )
    finally:
        copy.unlink()
    complaints = [line for line in result.stderr.splitlines() if copy.name in line]
    assert result.returncode == 0 and not complaints, result.stderr
