"""A private PostgreSQL cluster in a data directory: initdb once, pg_ctl start/stop.

Used by ``aiouws serve`` when no DSN is configured and by the test fixtures. The
server listens on a Unix socket only. ``initdb`` and ``pg_ctl`` refuse to run as
root, so when we are root the cluster is owned by and run as an unprivileged user
(``postgres`` by default), with that user's group and no supplementary groups.

Only that user and root may connect: the socket directory is 0700 and owned by
the cluster's user, the socket itself 0700, and ``pg_hba.conf`` admits nothing
but peer authentication on the socket, mapping root and the cluster's user to the
superuser (no password exists, so none can leak), and to the query role
(:data:`~aiouws.storage.database.QUERY_ROLE`): the same OS user logs in as that
unprivileged role for user queries, still without a password. A cluster made by an older
version (trust authentication, open socket, server in the root group) is brought
to this state, and its server restarted, by :meth:`EmbeddedCluster.ensure_running`.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiouws.storage.database import QUERY_ROLE

__all__ = ["ClusterError", "EmbeddedCluster", "find_bindir"]

log = logging.getLogger(__name__)

#: The only way in: the Unix socket, peer-authenticated through the map below.
_PG_HBA = """\
# Written by aiouws (do not edit: rewritten at every start). Only the cluster's
# own OS user and root may connect, through the Unix socket, identified by the
# kernel (peer); pg_ident.conf maps them to the database superuser and to the
# unprivileged role user queries log in as.
local all all peer map=aiouws
"""
#: Settings enforced at every start (a cluster of an older version is upgraded).
_LOCKED_SETTINGS = {
    "listen_addresses": "''",
    "unix_socket_permissions": "0700",
}

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
        changed = self._lock_down()
        if self.is_running() and (changed or self._server_in_root_group()):
            # Started by an older version: open socket, trust, or the root group.
            log.warning("restarting the embedded database to lock it down")
            self.stop()
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

    def _owner(self) -> pwd.struct_passwd:
        """The OS user the cluster belongs to and runs as."""
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam(self.run_as)
        except KeyError as exc:
            raise ClusterError(
                f"running as root, but user {self.run_as!r} to own the database "
                f"cluster does not exist (create it, e.g. by installing the "
                f"postgresql package, or set embedded_user / AIOUWS_EMBEDDED_USER)"
            ) from exc

    def _prepare_dirs(self) -> None:
        """Create root, socket and log directories: 0700, the cluster user's."""
        user = self._owner()
        for directory in (self.root, self.socket_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(directory, user.pw_uid, user.pw_gid)
            os.chmod(directory, 0o700)  # an older version made them 0755
        if os.geteuid() == 0:
            if self.data_dir.exists():
                os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            self._check_traversable(user)

    def _lock_down(self) -> bool:
        """Write pg_hba.conf, pg_ident.conf and the socket settings; whether any
        of them changed (a running server then needs a restart)."""
        user = self._owner().pw_name
        ident = (
            "# Written by aiouws: OS user -> database superuser and query role"
            " (peer auth).\n"
            f"aiouws root {self.superuser}\naiouws {user} {self.superuser}\n"
            f"aiouws root {QUERY_ROLE}\naiouws {user} {QUERY_ROLE}\n"
        )
        locked = {
            **_LOCKED_SETTINGS,
            "unix_socket_directories": _quote(str(self.socket_dir)),
            "port": str(self.port),
        }
        return any(
            [
                self._write_if_changed(self.data_dir / "pg_hba.conf", _PG_HBA),
                self._write_if_changed(self.data_dir / "pg_ident.conf", ident),
                self._set_settings(locked),
            ]
        )

    def _set_settings(self, settings: dict[str, str]) -> bool:
        """Set ``settings`` in postgresql.auto.conf, replacing earlier values."""
        conf = self.data_dir / "postgresql.auto.conf"
        old = conf.read_text() if conf.exists() else ""
        kept = [
            line
            for line in old.splitlines()
            if line.split("=", 1)[0].strip() not in settings
        ]
        kept += [f"{key} = {value}" for key, value in settings.items()]
        return self._write_if_changed(conf, "\n".join(kept) + "\n")

    def _write_if_changed(self, path: Path, text: str) -> bool:
        """Write ``path`` as the cluster's user (mode 0600) unless it holds ``text``."""
        if path.exists() and path.read_text() == text:
            return False
        self._run(
            ["sh", "-c", 'umask 077 && cat > "$1"', "sh", str(path)], input_text=text
        )
        return True

    def _server_in_root_group(self) -> bool:
        """Whether the running server has group 0 (started by an older version)."""
        pid_file = self.data_dir / "postmaster.pid"
        if os.geteuid() != 0 or not pid_file.exists():
            return False
        pid = pid_file.read_text().split("\n", 1)[0].strip()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        groups = set()
        for line in status.splitlines():
            if line.startswith(("Gid:", "Groups:")):
                groups.update(line.split(":", 1)[1].split())
        return "0" in groups

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
                "--auth-local=peer",
                "--auth-host=reject",
                "--no-instructions",
            ]
            + (["--no-sync"] if self.fast_unsafe else [])
        )
        settings = {
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
        }
        if self.fast_unsafe:
            settings.update(
                fsync="off", synchronous_commit="off", full_page_writes="off"
            )
        self._set_settings(settings)

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
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        uid: int | None = None
        gid: int | None = None
        groups: list[int] | None = None
        if os.geteuid() == 0:
            # The cluster's user with its own group only: neither root's group
            # nor any supplementary group reaches the server or its children.
            user = self._owner()
            uid, gid, groups = user.pw_uid, user.pw_gid, []
            env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        try:
            result = subprocess.run(
                argv,
                user=uid,
                group=gid,
                extra_groups=groups,
                capture_output=True,
                text=True,
                input=input_text,
                cwd="/",
                env=env,
            )
        except FileNotFoundError as exc:
            raise ClusterError(_INSTALL_HINT) from exc
        if check and result.returncode != 0:
            raise ClusterError(
                f"{Path(argv[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result


def _quote(value: str) -> str:
    """A PostgreSQL configuration string literal."""
    return "'" + value.replace("'", "''") + "'"
