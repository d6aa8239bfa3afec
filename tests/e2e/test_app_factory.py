"""``aiouws serve --app MODULE:FACTORY`` (the generic command, no TAP) serves an
application of its own job kinds, runners included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from liveserver import free_port, http_get, run_job

REPO = Path(__file__).resolve().parents[2]
JOBKINDS = REPO / "tests" / "jobkinds"


def test_serve_app_runs_a_custom_job_kind(fresh_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(JOBKINDS)]),
        "AIOUWS_GRACE": "1",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "aiouws", "--dsn", fresh_dsn),
            *("--data-dir", str(tmp_path), "serve", "--port", str(port)),
            *("--app", "customapp:factory"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/jobs/shout"
    try:
        job_url, phase = run_job(
            base, {"word": "hello"}, server, tmp_path / "server.log"
        )
        assert phase == b"COMPLETED"
        assert http_get(job_url + "/results/result") == (200, b"HELLO")
        # The generic command serves no TAP.
        assert http_get(f"http://127.0.0.1:{port}/tap/availability")[0] == 404
    finally:
        server.terminate()
        server.wait(30)
        log.close()
