"""TAP's settings: one frozen ``TapSettings`` and the one way it reaches a runner.

Loaded like aiouws's ``Settings`` (:func:`aiouws.config.load_settings`), from the
same TOML file (the keys of its ``[tap]`` section, ``tap_<name>`` or ``<name>``,
and top-level ``tap_<name>`` keys, e.g. ``tap_maxrec_default``) and from
``AIOUWS_TAP_<NAME>`` variables. The server hands the settings and the database to
its runner processes by environment with :meth:`RunnerConfig.to_env`; a runner
reads them back with :meth:`RunnerConfig.from_env`. Nothing else spells those
variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from aiouws.config import (
    ENV_PREFIX,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    read_config_file,
)
from aiouws.storage.database import Database
from taprunner.adql.limits import QueryLimits

__all__ = ["PREFIX", "RunnerConfig", "TapSettings"]

#: File keys ``tap_<name>`` (or ``<name>`` in ``[tap]``); variables
#: ``AIOUWS_TAP_<NAME>``.
PREFIX = "tap_"
_DSN_VARIABLE = f"{ENV_PREFIX}{PREFIX.upper()}DSN"
#: The catalogue replicas of the query role's login, separated by spaces.
_REPLICAS_VARIABLE = f"{ENV_PREFIX}{PREFIX.upper()}REPLICAS"
#: An IVOA identifier: ivo://, an authority of at least 3 characters, a path.
_IVOID = re.compile(r"^ivo://[\w\-.~*'()]{3,}(/[^\s?#]*)?$")
#: Size limits that must be positive.
_POSITIVE = (
    "value_bytes",
    "sync_bytes",
    "result_bytes",
    "upload_cells",
    "upload_data_bytes",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TapSettings:
    """Every tunable of the TAP service. See ``config/aiouws.example.toml``."""

    #: Rows returned when the client gives no MAXREC, and the hard limit.
    maxrec_default: int = 100_000
    maxrec_hard: int = 100_000_000
    #: Wall-clock limit of a synchronous query, seconds.
    sync_timeout: float = 60.0
    #: Runner processes kept warm for async queries (their run-count goal).
    slots: int = 2
    #: Fast lane: an async query bounded to this many rows (MAXREC or its own
    #: TOP) and without uploads runs at once in the server, in one of
    #: ``inline_slots``, instead of waiting for a runner; 0 turns it off.
    inline_rows: int = 1000
    inline_slots: int = 16
    #: Runners fetch BINARY/BINARY2 results of numbers, booleans and text as
    #: Arrow batches through the ADBC driver (taprunner/query/columnar.py)
    #: instead of asyncpg records; false keeps every query on asyncpg.
    columnar: bool = True
    #: Where the columnar path reads those results: "copy", PostgreSQL's binary
    #: COPY on the runner's asyncpg connection, decoded with numpy
    #: (taprunner/query/bincopy.py; less CPU per row), or "adbc", the ADBC
    #: driver's Arrow batches (taprunner/query/columnar.py).
    columnar_source: str = "copy"
    # No field may be called ``dsn`` or ``replicas``: AIOUWS_TAP_DSN and
    # AIOUWS_TAP_REPLICAS carry the database.
    #: Bytes an async job may upload (default: the service's max_upload_bytes).
    upload_bytes: int = Settings().max_upload_bytes
    #: Seconds an async query may run when its job has no execution duration
    #: (default: the service's max_execution_duration).
    timeout: float = float(Settings().max_execution_duration)
    # Sizes of results and uploads (bounded work per request, whatever the input;
    # taprunner/query/bytelimits.py and uploadlimits.py).
    #: Bytes of one value: a text's UTF-8 bytes, a bytea's bytes, 8 per array
    #: element. A result ends before the first row holding a larger value (marked
    #: as cut: QUERY_STATUS OVERFLOW); an upload declaring one is refused (400).
    value_bytes: int = 4 * 1024 * 1024
    #: Bytes of a /tap/sync response, and of an async job's result file: the
    #: result ends (marked as cut) after the batch that reaches it.
    sync_bytes: int = 2 * 1024**3
    result_bytes: int = 16 * 1024**3
    #: Values (rows x FIELDs) of one uploaded table, and the bytes its values take
    #: at their declared sizes (arrays expanded to their arraysize); checked
    #: before the upload is parsed, a larger one is refused (400).
    upload_cells: int = 10_000_000
    upload_data_bytes: int = 256 * 1024 * 1024

    # -- Service metadata (the home page, /tap/examples, the VOResource record
    # at /tap/resource that registries harvest).
    #: The service's name and what it offers (VOResource title, description).
    title: str = "aiouws TAP service"
    description: str = "A TAP 1.1 service answering ADQL queries."
    #: Who runs it: the publisher (organisation) and a contact person.
    publisher: str = ""
    contact_name: str = ""
    contact_email: str = ""
    #: The service's IVOA identifier (``ivo://authority/path``) once registered.
    ivoid: str = ""
    #: The DALI examples: a file of the operator's, either a DALI examples
    #: document (XHTML with RDFa, served as it is) or a TOML file of
    #: ``[[example]]`` tables (name, description, query); empty: examples
    #: generated from the published tables.
    examples: str = ""

    # -- Query-text limits: what one query may cost to translate (issue 10) --
    #: Longest query text accepted, in bytes (UTF-8), checked before parsing;
    #: 1 MiB holds an IN list of 100,000 ids.
    max_query_bytes: int = QueryLimits().max_bytes
    #: Deepest nesting of parentheses (subqueries, function calls, grouped
    #: expressions); the parser's recursion allows about 45.
    max_query_depth: int = QueryLimits().max_depth
    #: Most values in one IN (...) list.
    max_in_list: int = QueryLimits().max_in_list

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"tap_{name} must be positive")
        if self.columnar_source not in ("copy", "adbc"):
            raise ConfigError(
                f'tap_columnar_source {self.columnar_source!r}: "copy" or "adbc"'
            )
        for name in ("max_query_bytes", "max_query_depth", "max_in_list"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tap_{name} must be at least 1")
        if self.ivoid and not _IVOID.match(self.ivoid):
            raise ConfigError(
                f"tap_ivoid {self.ivoid!r} is not an IVOA identifier"
                " (ivo://authority/path)"
            )
        if self.contact_email and "@" not in self.contact_email:
            raise ConfigError(f"tap_contact_email {self.contact_email!r} has no @")
        if self.examples:
            path = Path(self.examples)
            if path.suffix.lower() not in (".toml", ".html", ".xhtml", ".xml"):
                raise ConfigError(
                    f"tap_examples {self.examples!r}: a .toml list or an XHTML"
                    " examples document (.html, .xhtml)"
                )

    def query_limits(self) -> QueryLimits:
        """The bounds of one query's text and tree (:mod:`taprunner.adql.limits`)."""
        return QueryLimits(
            max_bytes=self.max_query_bytes,
            max_depth=self.max_query_depth,
            max_in_list=self.max_in_list,
        )

    @classmethod
    def for_service(cls, service: Settings, **values: object) -> TapSettings:
        """Defaults, with the upload and time limits of ``service``, and ``values``."""
        base = cls(
            upload_bytes=service.max_upload_bytes,
            timeout=float(service.max_execution_duration),
        )
        return load_settings(base, {}, {}, overrides=values)

    @classmethod
    def load(
        cls,
        service: Settings,
        path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TapSettings:
        """Defaults (see :meth:`for_service`) < TOML file < ``AIOUWS_TAP_*``.

        ``path`` defaults to ``AIOUWS_CONFIG``, as for ``Settings.load``.

        Raises
        ------
        ConfigError
            For unknown ``tap_*`` or ``[tap]`` keys or values of the wrong type.
        """
        env = dict(os.environ if env is None else env)
        values = read_config_file(config_path(path, env))
        return load_settings(cls.for_service(service), values, env, prefix=PREFIX)


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """What a TAP runner process is given: the settings and the database."""

    tap: TapSettings
    database: Database

    def to_env(self) -> dict[str, str]:
        """The runner's environment variables (``JobKind.runner_env``)."""
        env = {
            _DSN_VARIABLE: self.database.dsn,
            _REPLICAS_VARIABLE: " ".join(self.database.replicas),
        }
        for name, value in asdict(self.tap).items():
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            env[f"{ENV_PREFIX}{PREFIX.upper()}{name.upper()}"] = text
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunnerConfig:
        """Read back what :meth:`to_env` gave (in the runner; never from files).

        Raises
        ------
        ConfigError
            The database variable is missing or a value is invalid.
        """
        env = os.environ if env is None else env
        if _DSN_VARIABLE not in env:
            raise ConfigError(f"{_DSN_VARIABLE} is not set (not started as a runner?)")
        values = {k: v for k, v in env.items() if k != _REPLICAS_VARIABLE}
        tap = load_settings(TapSettings(), {}, values, prefix=PREFIX)
        replicas = tuple(env.get(_REPLICAS_VARIABLE, "").split())
        database = Database(env[_DSN_VARIABLE], replicas=replicas, catalogs=replicas)
        return cls(tap=tap, database=database)
