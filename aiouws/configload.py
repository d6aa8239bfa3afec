"""Reading settings: a frozen settings dataclass from TOML and ``AIOUWS_*``.

The generic loader behind :mod:`aiouws.config` (the service's own settings) and
the settings of job kinds and applications (e.g. TAP's, with a key prefix and a
TOML section of its own): where a key may stand, how variables are named, and
how file and environment values become typed fields. What the settings *are*
lives in :mod:`aiouws.config`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "config_path",
    "load_settings",
    "read_config_file",
]

#: The environment prefix of every setting: ``AIOUWS_<KEY>``.
ENV_PREFIX = "AIOUWS_"
T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """The configuration file or environment holds an invalid value."""


def config_path(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The configuration file: ``path``, else ``AIOUWS_CONFIG``, else none."""
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    return path


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The TOML document ``path``, its tables kept (empty without a file).

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed.
    """
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def load_settings(
    defaults: T,
    document: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    prefix: str = "",
    sections: Mapping[str, Collection[str]] | None = None,
    reserved: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """``defaults`` (a frozen settings dataclass) < file < env < overrides.

    ``document`` is a TOML document (:func:`read_config_file`). Without a
    ``prefix`` its keys are the fields, at the top or in their section of
    ``sections``; a top-level key starting with a ``reserved`` prefix, and the
    section named after that prefix, are left to others. With a ``prefix``
    (e.g. ``tap_``) the settings are the top-level keys ``<prefix><name>`` and
    every key of the section ``[<prefix without _>]``, with or without the
    prefix; the rest belongs to others. The variable of a field is
    ``AIOUWS_<PREFIX><NAME>``. Values are converted to the field's type (see
    :func:`_coerce`); overrides that are None are ignored.

    Raises
    ------
    ConfigError
        For unknown keys or sections, keys in the wrong section or values of
        the wrong type, naming the key and its section (or variable).
    """
    known = {f.name: str(f.type) for f in fields(defaults)}
    if prefix:
        values = _plugin_values(document, prefix)
    else:
        values = _file_values(document, known, sections or {}, reserved)
    env_prefix = ENV_PREFIX + prefix.upper()
    for key, raw in env.items():
        name = key[len(env_prefix) :].lower()
        if key.startswith(env_prefix) and name in known:
            values[name] = (key, raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = (name, value)
    unknown = sorted(where for name, (where, _) in values.items() if name not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    coerced = {
        name: _coerce(where, value, known[name], getattr(defaults, name))
        for name, (where, value) in values.items()
    }
    return replace(defaults, **coerced)


def _file_values(
    document: Mapping[str, Any],
    known: Collection[str],
    sections: Mapping[str, Collection[str]],
    reserved: Sequence[str],
) -> dict[str, tuple[str, Any]]:
    """Field name -> (where, value) of the keys of the service's own sections."""
    others = tuple(reserved)
    values: dict[str, tuple[str, Any]] = {}
    for key, value in document.items():
        if not isinstance(value, dict):
            if not key.startswith(others):  # others' top-level keys
                values[key] = (key, value)
            continue
        if any(key == p.rstrip("_") for p in others):
            continue  # another settings object's section
        if key not in sections:
            names = ", ".join(value) or "no keys"
            raise ConfigError(f"unknown section [{key}] ({names})")
        for name, item in value.items():
            where = f"[{key}] {name}"
            if name not in sections[key] and name in known:
                home = next((s for s, names in sections.items() if name in names), "")
                place = f"[{home}]" if home else "the top of the file"
                raise ConfigError(f"{where}: {name} belongs in {place}")
            values[name] = (where, item)
    return values


def _plugin_values(
    document: Mapping[str, Any], prefix: str
) -> dict[str, tuple[str, Any]]:
    """Field name -> (where, value) of a prefixed plug-in's keys."""
    values = {
        key[len(prefix) :]: (key, value)
        for key, value in document.items()
        if key.startswith(prefix) and not isinstance(value, dict)
    }
    section = prefix.rstrip("_")
    table = document.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{section} must be a section ([{section}])")
    for key, value in table.items():
        name = key[len(prefix) :] if key.startswith(prefix) else key
        values[name] = (f"[{section}] {key}", value)
    return values


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_EXPECTED = {
    "bool": "true or false (also 1/0, yes/no, on/off)",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "Path": "a path (a string)",
}


def _coerce(where: str, value: Any, hint: str, current: Any) -> Any:
    """``value`` (from the file, a variable or an override) as a field of type
    ``hint`` (annotations are strings here) whose default is ``current``.

    TOML values must have the field's type (an int is a float too); strings, as
    variables give them, are parsed. An optional field is unset by "".

    Raises
    ------
    ConfigError
        Naming ``where`` and the expected type.
    """
    base = hint.replace("| None", "").replace("None |", "").strip()
    if "None" in hint and value in ("", None):
        return None
    text = value.strip() if isinstance(value, str) else None
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            word = text.lower() if text is not None else str(value)
            if isinstance(value, int | str) and word in _TRUE | _FALSE:
                return word in _TRUE
        elif base == "int" and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if text is not None:
                return int(text)
        elif base == "float" and not isinstance(value, bool):
            if isinstance(value, int | float):
                return float(value)
            if text is not None:
                return float(text)
        elif base == "str" and isinstance(value, str):
            return value
        elif base == "Path" and isinstance(value, str | os.PathLike):
            return Path(value).expanduser()
        elif base not in _EXPECTED and isinstance(value, type(current)):
            return value  # a type this loader does not parse: taken as given
    except ValueError:
        pass
    expected = _EXPECTED.get(base, base)
    raise ConfigError(f"{where}: expected {expected}, not {value!r}")
