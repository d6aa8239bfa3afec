"""Configuration: one frozen ``Settings``, built from a TOML file and ``AIOUWS_*``.

Nothing below ``create_app`` reads the environment or files; this module (with
its loader, :mod:`aiouws.configload`, re-exported here) is the only place that
does. :func:`load_settings` loads any frozen settings dataclass the same way (an
application's own settings, e.g. TAP's, with a key prefix and a TOML section of
its own). Every key of the file belongs to one section (or
stands at the top); unknown keys, keys in the wrong section and values of the
wrong type are errors naming the key and its section.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiouws.configload import (
    ENV_PREFIX,
    ConfigError,
    config_path,
    load_settings,
    read_config_file,
)
from aiouws.trust import parse_trust

__all__ = [
    "ENV_PREFIX",
    "SECTIONS",
    "ConfigError",
    "Settings",
    "config_path",
    "default_data_dir",
    "load_settings",
    "read_config_file",
]


def default_data_dir() -> Path:
    """Where the embedded database and job directories live when not configured.

    As root the cluster runs as an unprivileged user who must reach the directory,
    so root uses ``/var/lib/aiouws`` instead of a private home directory.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/aiouws")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aiouws"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every tunable of the service. See ``config/aiouws.example.toml``."""

    #: PostgreSQL DSN; None starts the embedded cluster in ``data_dir``.
    dsn: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    #: Root of the per-job working directories (default: ``data_dir/jobs``).
    jobs_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    #: Public base URL of the service (e.g. https://example.org/tap) used in
    #: documents; None derives it from each request.
    base_url: str | None = None
    embedded_port: int = 54329
    embedded_user: str = "postgres"

    default_execution_duration: int = 3600
    max_execution_duration: int = 4 * 3600
    default_destruction_days: float = 7.0
    max_destruction_days: float = 30.0
    #: Upper bound of a blocking WAIT in seconds (pyvo waits at most 60 s).
    wait_cap: float = 50.0
    #: Largest urlencoded body, and the text fields of a multipart one together
    #: (files: max_upload_bytes). 4 MiB: a query of tap_max_query_bytes (1 MiB),
    #: percent-encoded at worst 3 bytes a byte, and the other parameters.
    max_request_bytes: int = 4 * 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    #: Longest request line (URL with query string) answered; longer gets 414.
    max_url_bytes: int = 32 * 1024
    max_list_jobs: int = 10_000

    #: "none" (everybody anonymous), "header" (trusted proxy header) or "basic".
    auth: str = "none"
    auth_header: str = "X-Remote-User"
    #: File of ``user:sha256-or-pbkdf2-hash`` lines for basic auth.
    passwd_file: Path | None = None

    # -- whom to believe (issue 10): see aiouws/trust.py, aiouws.example.toml --
    #: Refuse anonymous requests (401) except to the public paths.
    require_auth: bool = False
    #: Hosts generated URLs may name (else the listening address).
    allowed_hosts: str = ""
    #: Networks of reverse proxies whose X-Forwarded-* headers are believed.
    trusted_proxies: str = "127.0.0.0/8,::1/128"

    #: Prepend an xml-stylesheet instruction to job and job-list documents
    #: (opt-in: browsers are dropping XSLT; they get server-rendered HTML pages).
    stylesheet: bool = False

    #: Run-count goal: how many jobs of each kind may execute at once.
    slots_per_kind: int = 2
    max_queued_per_owner: int = 100
    max_executing_per_owner: int = 100
    #: Seconds a runner may take to stop after an abort or at shutdown.
    grace: float = 2.0
    #: Seconds a claimed job's lease lasts; a heartbeat renews it every third.
    #: After a server crash its EXECUTING jobs end in ERROR once this expires.
    lease_seconds: float = 30.0
    log_level: str = "INFO"
    #: "text" (``key=value`` context) or "json" (one object per line).
    log_format: str = "text"
    #: Serve Prometheus metrics at ``/metrics``.
    metrics: bool = True
    #: Comma-separated networks (CIDR) that may read ``/metrics``; "" any client.
    metrics_networks: str = ""
    #: Regular expression (matched in full) of browser origins that get CORS
    #: with credentials (cookies, Authorization); None: no such origin.
    cors_origins: str | None = None
    #: Let any other origin make anonymous cross-origin requests
    #: (``Access-Control-Allow-Origin: *``, no credentials).
    cors_any_origin: bool = False
    #: "auto" (uvloop when installed), "uvloop" or "asyncio".
    event_loop: str = "auto"
    #: Server processes sharing the port (SO_REUSEPORT); 0: one per CPU core.
    #: Each runs its own queue supervisor and runners (slots are per worker).
    workers: int = 1
    #: Directory of ``initdb``/``pg_ctl`` for the embedded cluster; None: the
    #: newest installed server.
    pg_bindir: Path | None = None

    # -- the query role's login (privilege boundary of user queries) ----------
    #: DSN user queries log in with (``aiouws_query`` or a member of it, no
    #: superuser). None: ``dsn`` with user ``aiouws_query`` and no password.
    query_dsn: str | None = field(default=None, repr=False)

    # -- slow and hostile clients ([clients]); see the README's Configuration --
    #: Seconds to send a request's line and headers (from the connection's
    #: opening or a next request's first byte); body pause limit; seconds a
    #: streamed response waits for a client that reads nothing.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    write_timeout: float = 10.0
    #: Open connections per client address; more are closed at once (0: no cap).
    max_connections_per_address: int = 64

    @property
    def resolved_jobs_dir(self) -> Path:
        return self.jobs_dir or (self.data_dir / "jobs")

    def with_dsn(self, dsn: str) -> Settings:
        """These settings with the DSN resolved (e.g. of the started embedded
        cluster)."""
        return replace(self, dsn=dsn)

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        env: dict[str, str] | None = None,
        *,
        reserved: Sequence[str] = (),
        **overrides: Any,
    ) -> Settings:
        """Build settings: defaults < TOML file < ``AIOUWS_*`` variables < overrides.

        ``path`` defaults to ``AIOUWS_CONFIG``. Keys are looked up in their
        section of :data:`SECTIONS` (or at the top of the file). Top-level keys
        starting with one of the ``reserved`` prefixes (e.g. ``tap_``), and the
        section named after it (``[tap]``), belong to other settings objects and
        are left alone.

        Raises
        ------
        ConfigError
            For unknown sections or keys, keys in the wrong section and values
            of the wrong type.
        """
        env = dict(os.environ if env is None else env)
        settings = load_settings(
            cls(),
            read_config_file(config_path(path, env)),
            env,
            sections=SECTIONS,
            reserved=reserved,
            overrides=overrides,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.auth not in ("none", "header", "basic"):
            raise ConfigError("auth must be one of none, header, basic")
        if self.auth == "basic" and self.passwd_file is None:
            raise ConfigError("auth = basic needs passwd_file")
        if self.require_auth and self.auth == "none":
            raise ConfigError("require_auth needs auth = header or basic")
        try:
            parse_trust(self.trusted_proxies, self.allowed_hosts)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.default_execution_duration > self.max_execution_duration:
            raise ConfigError(
                "default_execution_duration exceeds max_execution_duration"
            )
        if self.default_destruction_days > self.max_destruction_days:
            raise ConfigError("default_destruction_days exceeds max_destruction_days")
        if self.max_request_bytes < 1024:
            raise ConfigError("max_request_bytes must be at least 1024")
        if not 0 < self.wait_cap <= 600:
            raise ConfigError("wait_cap must be in (0, 600] seconds")
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            raise ConfigError("event_loop must be auto, uvloop or asyncio")
        if self.slots_per_kind < 1:
            raise ConfigError("slots_per_kind must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        _check_operations(self)
        if min(self.header_timeout, self.body_timeout, self.write_timeout) <= 0:
            raise ConfigError("header, body and write timeouts must be positive")
        if self.max_connections_per_address < 0:
            raise ConfigError("max_connections_per_address must not be negative")
        if self.workers < 0:
            raise ConfigError("workers must not be negative (0: one per CPU core)")


#: The TOML sections of the service's settings and the keys each holds (see
#: ``config/aiouws.example.toml``). A key may also stand at the top of the file,
#: before any section; in another section it is an error. A new field of
#: ``Settings`` goes in one section here (``test_config_sections`` checks).
SECTIONS: Mapping[str, frozenset[str]] = {
    "database": frozenset(
        {"dsn", "data_dir", "jobs_dir", "embedded_port", "embedded_user", "pg_bindir"}
    )
    # the query role's login (privilege boundary of user queries)
    | {"query_dsn"},
    "http": frozenset(
        {
            "host",
            "port",
            "base_url",
            "max_request_bytes",
            "max_upload_bytes",
            "max_url_bytes",
            "stylesheet",
            "workers",
            "event_loop",
        }
    ),
    "auth": frozenset(
        {"auth", "auth_header", "passwd_file"}
        | {"require_auth", "allowed_hosts", "trusted_proxies"}  # whom to believe
    ),
    "limits": frozenset(
        {
            "default_execution_duration",
            "max_execution_duration",
            "default_destruction_days",
            "max_destruction_days",
            "wait_cap",
            "max_list_jobs",
            "slots_per_kind",
            "max_queued_per_owner",
            "max_executing_per_owner",
            "grace",
            "lease_seconds",
        }
    ),
    "logging": frozenset({"log_level", "log_format"}),
    "clients": frozenset(
        {"header_timeout", "body_timeout", "write_timeout"}
        | {"max_connections_per_address"}
    ),
    "operations": frozenset(
        {"metrics", "metrics_networks", "cors_origins", "cors_any_origin"}
    ),
}


def _check_operations(settings: Settings) -> None:
    """The CORS pattern compiles and the metrics networks parse."""
    if settings.cors_origins is not None:
        try:
            re.compile(settings.cors_origins)
        except re.error as exc:
            raise ConfigError(
                f"cors_origins is not a regular expression: {exc}"
            ) from None
    for network in filter(None, settings.metrics_networks.split(",")):
        try:
            ipaddress.ip_network(network.strip(), strict=False)
        except ValueError as exc:
            raise ConfigError(f"metrics_networks: {exc}") from None
