"""Configuration: one frozen ``Settings``, built from a TOML file and ``AIOUWS_*``.

Nothing below ``create_app`` reads the environment or files; this module is the
only place that does. :func:`load_settings` loads any frozen settings dataclass
the same way (an application's own settings, e.g. TAP's, with a key prefix).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ConfigError",
    "Settings",
    "config_path",
    "default_data_dir",
    "load_settings",
    "read_config_file",
]

#: The environment prefix of every setting: ``AIOUWS_<KEY>``.
ENV_PREFIX = "AIOUWS_"
T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """The configuration file or environment holds an invalid value."""


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
    max_request_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    #: Longest request line (URL with query string) answered; longer gets 414.
    max_url_bytes: int = 32 * 1024
    max_list_jobs: int = 10_000

    #: "none" (everybody anonymous), "header" (trusted proxy header) or "basic".
    auth: str = "none"
    auth_header: str = "X-Remote-User"
    #: File of ``user:sha256-or-pbkdf2-hash`` lines for basic auth.
    passwd_file: Path | None = None

    #: Prepend an xml-stylesheet instruction to job and job-list documents.
    stylesheet: bool = True

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

        ``path`` defaults to ``AIOUWS_CONFIG``. File keys starting with one of the
        ``reserved`` prefixes belong to other settings objects (e.g. ``tap_``) and
        are left alone.

        Raises
        ------
        ConfigError
            For unknown keys or values of the wrong type.
        """
        env = dict(os.environ if env is None else env)
        settings = load_settings(
            cls(),
            read_config_file(config_path(path, env)),
            env,
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
        if self.default_execution_duration > self.max_execution_duration:
            raise ConfigError(
                "default_execution_duration exceeds max_execution_duration"
            )
        if self.default_destruction_days > self.max_destruction_days:
            raise ConfigError("default_destruction_days exceeds max_destruction_days")
        if not 0 < self.wait_cap <= 600:
            raise ConfigError("wait_cap must be in (0, 600] seconds")
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            raise ConfigError("event_loop must be auto, uvloop or asyncio")
        if self.slots_per_kind < 1:
            raise ConfigError("slots_per_kind must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        _check_operations(self)
        if self.workers < 0:
            raise ConfigError("workers must not be negative (0: one per CPU core)")


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


def config_path(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The configuration file: ``path``, else ``AIOUWS_CONFIG``, else none."""
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    return path


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The flat keys of the TOML file ``path`` (none without a file).

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed.
    """
    if path is None:
        return {}
    try:
        return _flatten(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def load_settings(
    defaults: T,
    file_values: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    prefix: str = "",
    reserved: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """``defaults`` (a frozen settings dataclass) < file keys < env < overrides.

    A field ``name`` is the file key ``<prefix><name>`` and the variable
    ``AIOUWS_<PREFIX><NAME>``. With a prefix, file keys without it belong to
    others and are skipped; without one, every file key not starting with a
    ``reserved`` prefix must name a field. Values are coerced to the type of the
    field's default (``Path`` for ``Path`` fields; "" or None keeps an optional
    field unset). Overrides that are None are ignored.

    Raises
    ------
    ConfigError
        For unknown file keys or values of the wrong type.
    """
    known = {f.name for f in fields(defaults)}
    values: dict[str, Any] = {}
    for key, value in file_values.items():
        if prefix and key.startswith(prefix):
            values[key[len(prefix) :]] = value
        elif not prefix and not key.startswith(tuple(reserved)):
            values[key] = value
    env_prefix = ENV_PREFIX + prefix.upper()
    for key, raw in env.items():
        name = key[len(env_prefix) :].lower()
        if key.startswith(env_prefix) and name in known:
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - known)
    if unknown:
        names = ", ".join(prefix + name for name in unknown)
        raise ConfigError(f"unknown setting(s): {names}")
    hints = {f.name: f.type for f in fields(defaults)}
    coerced = {
        k: _coerce(prefix + k, v, getattr(defaults, k), str(hints[k]))
        for k, v in values.items()
    }
    return replace(defaults, **coerced)


def _flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """Turn TOML tables into flat keys: ``[limits] grace = 2`` -> ``grace``."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def _coerce(name: str, value: Any, current: Any, hint: str) -> Any:
    """``value`` as the type of a field whose default is ``current`` and whose
    annotation reads ``hint`` (annotations are strings here)."""
    try:
        if "Path" in hint:
            return Path(value).expanduser() if value not in ("", None) else None
        if "str" in hint and "None" in hint:
            return str(value) if value not in ("", None) else None
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {value!r}") from exc
