"""A private PostgreSQL cluster in a data directory: initdb once, pg_ctl start/stop.

Used by ``aiouws serve`` when no DSN is configured and by the test fixtures. The
server listens on a Unix socket only. ``initdb`` and ``pg_ctl`` refuse to run as
root, so when we are root the cluster is owned by and run as an unprivileged user
(``postgres`` by default).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClusterError", "EmbeddedCluster", "find_bindir"]

_INSTALL_HINT = (
    "PostgreSQL server binaries not found. On Debian/Ubuntu install them with: "
    "apt-get install postgresql-15 postgresql-15-pgsphere"
)


class ClusterError(RuntimeError):
    """The embedded PostgreSQL cluster could not be created, started or stopped."""


def find_bindir(preferred: Path | None = None) -> Path:
    """Return the directory of ``initdb``/``pg_ctl``: ``preferred`` (the
    ``pg_bindir`` setting) if it holds them, else the newest installed server.

    Raises
    ------
    ClusterError
        If no PostgreSQL server installation is found.
    """
    candidates = [str(preferred)] if preferred else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise ClusterError(_INSTALL_HINT)


@dataclass
class EmbeddedCluster:
    """A PostgreSQL cluster living entirely below ``root``.

    ``root/data`` holds the cluster, ``root/run`` its socket and ``root/log`` the
    server log. ``fast_unsafe`` turns off fsync (for tests and benchmarks only).
    ``bindir``: where ``initdb``/``pg_ctl`` are (None: see :func:`find_bindir`).
    """

    root: Path
    port: int = 5432
    run_as: str = "postgres"
    fast_unsafe: bool = False
    database: str = "aiouws"
    bindir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "postgresql.log"

    @property
    def superuser(self) -> str:
        return self.run_as if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def dsn(self, database: str | None = None) -> str:
        """A libpq URI connecting through the cluster's socket as its superuser."""
        db = database or self.database
        return (
            f"postgresql://{self.superuser}@/{db}"
            f"?host={self.socket_dir}&port={self.port}"
        )

    # -- lifecycle ---------------------------------------------------------------

    def ensure_running(self) -> str:
        """Create the cluster if needed, start it if stopped; return the DSN."""
        bindir = find_bindir(self.bindir)
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bindir)
        if not self.is_running():
            self._start(bindir)
        self._create_database(bindir)
        return self.dsn()

    def is_running(self) -> bool:
        bindir = find_bindir(self.bindir)
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run(
            [str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
        )
        return result.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs (``mode``: smart, fast or immediate)."""
        if not self.is_running():
            return
        bindir = find_bindir(self.bindir)
        self._run(
            [
                str(bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
            ]
        )

    # -- internals ---------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        for directory in (self.root, self.socket_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(self.run_as)
            except KeyError as exc:
                raise ClusterError(
                    f"running as root, but user {self.run_as!r} to own the database "
                    f"cluster does not exist (create it or set AIOUWS_EMBEDDED_USER)"
                ) from exc
            for directory in (self.root, self.socket_dir, self.log_file.parent):
                os.chown(directory, user.pw_uid, user.pw_gid)
            if self.data_dir.exists():
                os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            self._check_traversable(user)

    def _check_traversable(self, user: pwd.struct_passwd) -> None:
        probe = self._run(["test", "-x", str(self.root)], check=False)
        if probe.returncode != 0:
            raise ClusterError(
                f"user {user.pw_name!r} cannot reach {self.root}; choose a data "
                f"directory outside private home directories (e.g. /var/lib/aiouws)"
            )

    def _initdb(self, bindir: Path) -> None:
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth=trust",
                "--no-instructions",
            ]
            + (["--no-sync"] if self.fast_unsafe else [])
        )
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(self.port),
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
        }
        if self.fast_unsafe:
            settings.update(
                fsync="off", synchronous_commit="off", full_page_writes="off"
            )
        lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
        conf = self.data_dir / "postgresql.auto.conf"
        self._run(["sh", "-c", f"cat >> '{conf}'"], input_text=lines)

    def _start(self, bindir: Path) -> None:
        result = self._run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.log_file),
            ],
            check=False,
        )
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(
                    self.log_file.read_text(errors="replace").splitlines()[-15:]
                )
            raise ClusterError(f"pg_ctl start failed: {result.stderr.strip()}\n{tail}")

    def _create_database(self, bindir: Path) -> None:
        psql = [
            str(bindir / "psql"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.superuser,
            "-d",
            "postgres",
            "-tAq",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        exists = self._run(
            psql
            + ["-c", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"]
        )
        if exists.stdout.strip() != "1":
            self._run(psql + ["-c", f'CREATE DATABASE "{self.database}"'])

    def _run(
        self, argv: list[str], *, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        user = self.run_as if os.geteuid() == 0 else None
        try:
            result = subprocess.run(
                argv,
                user=user,
                capture_output=True,
                text=True,
                input=input_text,
                cwd="/",
                env={**os.environ, "LC_ALL": "C.UTF-8"},
            )
        except FileNotFoundError as exc:
            raise ClusterError(_INSTALL_HINT) from exc
        if check and result.returncode != 0:
            raise ClusterError(
                f"{Path(argv[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result
