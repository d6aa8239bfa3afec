"""The README's "Your own job kind" example runs exactly as written.

The test takes the job module and the app from README.md's code blocks (their
first line names the file), writes them to a temporary directory, runs the app as
the README's shell lines say (``PYTHONPATH`` = that directory, ``AIOUWS_DSN`` = a
test database) on the port the settings give, and runs a job to COMPLETED.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from liveserver import free_port, http_get, run_job

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Your own job kind"


def readme_blocks() -> tuple[dict[str, str], str]:
    """The section's Python files (by the path their first line names) and its
    shell lines."""
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    files: dict[str, str] = {}
    shell = ""
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text[start:end], re.S):
        if lang == "python":
            match = re.match(r"# ([\w/]+\.py)\b", body)
            assert match, f"README block without a file name: {body[:60]!r}"
            files[match.group(1)] = body
        elif lang == "sh":
            shell += body
    return files, shell


def test_readme_embedding_example_runs_a_job(fresh_dsn: str, tmp_path: Path) -> None:
    files, shell = readme_blocks()
    assert set(files) == {"mypackage/jobs.py", "app.py"}
    # The shell lines say where the DSN comes from and put the job module on
    # PYTHONPATH; the test does the same with its own database.
    assert 'export AIOUWS_DSN="$(aiouws db dsn)"' in shell
    assert "PYTHONPATH=$PWD python app.py" in shell
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    port = free_port()
    env = {
        **os.environ,
        # $PWD as in the README; this repository after it, for its aiouws.
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "AIOUWS_DSN": fresh_dsn,
        "AIOUWS_PORT": str(port),
        "AIOUWS_DATA_DIR": str(tmp_path / "data"),
        "AIOUWS_GRACE": "1",
    }
    log_path = tmp_path / "app.log"
    with log_path.open("wb") as log:
        app = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}/render/jobs"
    try:
        # run_job waits until it listens where the settings say.
        job_url, phase = run_job(base, {"size": "8"}, app, log_path)
        assert phase == b"COMPLETED", log_path.read_text()
        status, image = http_get(job_url + "/results/image")
        assert status == 200
        assert image == b"P5 8 8 255\n" + bytes(range(8)) * 8
    finally:
        app.terminate()
        app.wait(30)
