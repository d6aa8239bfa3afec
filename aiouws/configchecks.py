"""Checks of :class:`aiouws.config.Settings` that look at several settings
together or parse one (kept apart so that ``config.py`` stays the list of
settings)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from aiouws.configload import ConfigError

if TYPE_CHECKING:
    from aiouws.config import Settings

__all__ = [
    "check_cluster",
    "check_identities",
    "check_operations",
    "check_results",
    "parse_kind_caps",
]


def check_results(settings: Settings) -> None:
    """The results store's settings make sense together."""
    if settings.results_store not in ("local", "s3"):
        raise ConfigError("results_store must be local or s3")
    if settings.results_store == "s3" and not settings.results_bucket:
        raise ConfigError("results_store = s3 needs results_bucket")
    if settings.results_delivery not in ("redirect", "stream"):
        raise ConfigError("results_delivery must be redirect or stream")
    if not 1 <= settings.results_presign_seconds <= 7 * 86400:
        raise ConfigError("results_presign_seconds must be in [1, 604800]")
    if settings.results_sweep_seconds < 0 or settings.results_sweep_grace < 0:
        raise ConfigError("results_sweep_seconds and _grace must not be negative")
    if settings.results_sweep_seconds > 0 and settings.results_sweep_grace < 1:
        # A job's uploads are stored just before its row is written: a grace
        # shorter than that gap would sweep the files of a job being created.
        raise ConfigError(
            "results_sweep_grace must be at least 1 s while the sweep runs "
            "(files are stored just before their job's row)"
        )
    credentials = settings.results_credentials_file
    if credentials is not None and not credentials.is_file():
        raise ConfigError(f"results_credentials_file {credentials} is not a file")
    if settings.results_endpoint and not settings.results_endpoint.startswith(
        ("http://", "https://")
    ):
        raise ConfigError("results_endpoint must be an http:// or https:// URL")


def check_identities(settings: Settings) -> None:
    """The owner pattern compiles; the login methods are known ones."""
    if settings.owner_pattern:
        try:
            re.compile(settings.owner_pattern)
        except re.error as exc:
            raise ConfigError(
                f"owner_pattern is not a regular expression: {exc}"
            ) from None
    for method in filter(None, settings.auth_login_methods.split(",")):
        if method.strip() not in ("bearer", "cookie"):
            raise ConfigError(
                f"auth_login_methods: {method.strip()!r} is not bearer or cookie"
            )


def parse_kind_caps(text: str) -> dict[str, int]:
    """``"tap=8,demo=2"`` as ``{"tap": 8, "demo": 2}``.

    Raises
    ------
    ConfigError
        An item is not ``kind=N`` with N a positive integer.
    """
    caps: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, number = item.partition("=")
        if not kind.strip() or not number.strip().isdigit() or int(number) < 1:
            raise ConfigError(
                f"cluster_slots: {item!r} is not kind=N with N at least 1"
            )
        caps[kind.strip()] = int(number)
    return caps


def check_cluster(settings: Settings) -> None:
    """The global caps are not negative and parse; the catalogue DSNs are URIs."""
    if settings.cluster_slots_per_kind < 0 or settings.cluster_inline_slots < 0:
        raise ConfigError("cluster slots must not be negative (0: no global cap)")
    parse_kind_caps(settings.cluster_slots)
    for dsn in settings.catalog_servers:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "catalog_dsns: each must be a postgresql:// URI (separated by spaces)"
            )


def check_operations(settings: Settings) -> None:
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
