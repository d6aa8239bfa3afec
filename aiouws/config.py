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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiouws.configchecks import (
    check_cluster,
    check_identities,
    check_operations,
    check_results,
    parse_kind_caps,
)
from aiouws.configload import (
    ENV_PREFIX,
    ConfigError,
    config_path,
    load_settings,
    read_config_file,
)
from aiouws.results.store import StoreSpec
from aiouws.trust import parse_trust

__all__ = [
    "ENV_PREFIX",
    "SECTIONS",
    "ConfigError",
    "Settings",
    "config_path",
    "default_data_dir",
    "load_settings",
    "parse_kind_caps",
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

    # -- identities and groups (issue 14, proprietary tables): aiouws/http/identity.py
    #: Header in which a trusted proxy names the user's groups (comma-separated);
    #: "" none. Added to the password file's groups.
    auth_groups_header: str = ""
    #: Header in which a trusted proxy passes the subject DN of the client's
    #: X.509 certificate (nginx ``$ssl_client_s_dn``), for ``auth = "x509"``.
    auth_dn_header: str = "X-SSL-Client-S-DN"
    #: Regular expression (matched in full) of the owner names ``auth_header``
    #: may carry (e.g. OIDC subjects); "": letters, digits, ``._@+-``, 128 at most.
    owner_pattern: str = ""
    #: Store owners (job owners, grants' users) as ``sha256:`` digests of the
    #: identity (subjects, DNs kept out of the job table and the logs).
    owner_hash: bool = False
    #: Logins a proxy in front offers, announced in WWW-Authenticate challenges
    #: and capabilities: comma-separated ``bearer``, ``cookie`` (with auth = header).
    auth_login_methods: str = ""
    #: Where clients log in for those (the challenges' ``access_url``).
    auth_login_url: str = ""
    #: The IVOA SSO standardID of that login (the challenges' ``standard_id``).
    auth_login_standard_id: str = "ivo://ivoa.net/sso#tls-with-password"

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

    #: MiB of resident memory past which a runner process is replaced by a
    #: fresh one after its job (0: never); see ``[runners]`` in the example.
    runner_max_rss: int = 90
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

    # -- the results store ([results]; issue 15): see aiouws/results/ ----------
    #: "local": files below jobs_dir (one host, or a file system every host
    #: mounts); "s3": S3-compatible object storage (the ``s3`` extra).
    results_store: str = "local"
    results_bucket: str = ""
    #: The object store's URL (e.g. ``http://minio:9000``); "" for AWS S3.
    results_endpoint: str = ""
    results_region: str = ""
    #: Key prefix inside the bucket (objects are ``<prefix>/<job_id>/<name>``).
    results_prefix: str = ""
    #: TOML file with ``access_key_id``, ``secret_access_key`` (and optionally
    #: ``session_token``); None: the ``AWS_*`` environment variables.
    results_credentials_file: Path | None = None
    #: "redirect": result GETs answer 303 to a presigned URL; "stream": the
    #: server streams the object through (s3 only; local files are served).
    results_delivery: str = "redirect"
    #: Seconds a presigned URL stays valid.
    results_presign_seconds: float = 300.0
    #: Seconds between sweeps that remove stored files without a job row (0:
    #: none), and how old such files must be (files of a job being created).
    results_sweep_seconds: float = 3600.0
    results_sweep_grace: float = 3600.0

    @property
    def results_spec(self) -> StoreSpec:
        """The results store, as runners are told of it (no secrets)."""
        if self.results_store == "local":
            return StoreSpec()
        return StoreSpec(
            kind=self.results_store,
            bucket=self.results_bucket,
            endpoint=self.results_endpoint,
            region=self.results_region,
            prefix=self.results_prefix,
            credentials_file=str(self.results_credentials_file or ""),
        )

    # -- several hosts on one database ([cluster]); see the README's Deployment --
    #: Jobs of each kind executing in runner processes on all hosts together
    #: (0: no global cap, each host's slots only); ``cluster_slots`` gives
    #: kinds caps of their own, ``"tap=8,demo=2"``.
    cluster_slots_per_kind: int = 0
    cluster_slots: str = ""
    #: Fast-lane jobs of each kind executing on all hosts together (0: no
    #: global cap, each host's inline slots only).
    cluster_inline_slots: int = 0
    #: Catalogue servers (read replicas) that user queries run on, as the
    #: service's login, separated by spaces: each new query connection picks
    #: the next, passing over one that is down, and the primary (``dsn``)
    #: when all are. "" : queries run on the primary.
    catalog_dsns: str = field(default="", repr=False)

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
        if self.auth not in ("none", "header", "basic", "x509"):
            raise ConfigError("auth must be one of none, header, basic, x509")
        check_identities(self)
        if self.auth == "basic" and self.passwd_file is None:
            raise ConfigError("auth = basic needs passwd_file")
        if self.require_auth and self.auth == "none":
            raise ConfigError("require_auth needs auth = header, basic or x509")
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
        if self.runner_max_rss < 0:
            raise ConfigError("runner_max_rss must not be negative (0: no bound)")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        check_operations(self)
        if min(self.header_timeout, self.body_timeout, self.write_timeout) <= 0:
            raise ConfigError("header, body and write timeouts must be positive")
        if self.max_connections_per_address < 0:
            raise ConfigError("max_connections_per_address must not be negative")
        if self.workers < 0:
            raise ConfigError("workers must not be negative (0: one per CPU core)")
        check_results(self)
        check_cluster(self)

    def cluster_cap(self, kind: str) -> int | None:
        """The global cap of ``kind``'s runner-lane jobs (None: none)."""
        caps = parse_kind_caps(self.cluster_slots)
        cap = caps.get(kind, self.cluster_slots_per_kind)
        return cap or None

    @property
    def catalog_servers(self) -> tuple[str, ...]:
        """The ``catalog_dsns``, one by one."""
        return tuple(self.catalog_dsns.split())


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
        # identities and groups (proprietary tables)
        | {"auth_groups_header", "auth_dn_header", "owner_pattern", "owner_hash"}
        | {"auth_login_methods", "auth_login_url", "auth_login_standard_id"}
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
    # runner processes: when one is replaced by a fresh one
    "runners": frozenset({"runner_max_rss"}),
    "logging": frozenset({"log_level", "log_format"}),
    "clients": frozenset(
        {"header_timeout", "body_timeout", "write_timeout"}
        | {"max_connections_per_address"}
    ),
    "operations": frozenset(
        {"metrics", "metrics_networks", "cors_origins", "cors_any_origin"}
    ),
    # the results store (issue 15)
    "results": frozenset(
        {
            "results_store",
            "results_bucket",
            "results_endpoint",
            "results_region",
            "results_prefix",
            "results_credentials_file",
            "results_delivery",
            "results_presign_seconds",
            "results_sweep_seconds",
            "results_sweep_grace",
        }
    ),
    # several hosts on one database: global limits, catalogue replicas
    "cluster": frozenset(
        {"cluster_slots_per_kind", "cluster_slots", "cluster_inline_slots"}
        | {"catalog_dsns"}
    ),
}
