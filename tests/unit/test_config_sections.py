"""The configuration file's sections and types are checked: a key belongs to its
section (or the top of the file), unknown keys and wrong types are errors naming
the key and its section, and booleans take only the usual words."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from aiouws.config import SECTIONS, ConfigError, Settings
from taprunner.settings import PREFIX, TapSettings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aiouws.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    return Settings.load(write(tmp_path, text), env=env, reserved=[PREFIX])


def load_tap(tmp_path: Path, text: str, **env: str) -> TapSettings:
    path = write(tmp_path, text)
    return TapSettings.load(Settings.load(path, env=env, reserved=[PREFIX]), path, env)


def test_every_setting_belongs_to_exactly_one_section() -> None:
    placed = [name for names in SECTIONS.values() for name in names]
    assert sorted(placed) == sorted(f.name for f in fields(Settings))


def test_keys_in_their_section_or_at_the_top(tmp_path: Path) -> None:
    settings = load(
        tmp_path, 'port = 9000\n[limits]\ngrace = 3\n[auth]\nauth = "header"'
    )
    assert (settings.port, settings.grace, settings.auth) == (9000, 3.0, "header")


def test_a_tap_section_port_is_not_the_http_port(tmp_path: Path) -> None:
    text = "[http]\nport = 9000\n[tap]\nport = 9001\n"
    with pytest.raises(ConfigError, match=r"\[tap\] port"):
        load_tap(tmp_path, text)
    assert load(tmp_path, text).port == 9000  # the service leaves [tap] to TAP
    with pytest.raises(ConfigError, match=r"unknown section \[tap\] \(port\)"):
        Settings.load(write(tmp_path, text), env={})  # without TAP


def test_a_key_in_another_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"\[http\] grace: grace belongs in \[limits\]"
    ):
        load(tmp_path, "[http]\ngrace = 5\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nbogus = 1\n", r"unknown setting\(s\): \[limits\] bogus"),
        ("bogus = 1\n", r"unknown setting\(s\): bogus"),
        ("[server]\nport = 1\n", r"unknown section \[server\] \(port\)"),
        ("[http.extra]\nport = 1\n", r"unknown setting\(s\): \[http\] extra"),
    ],
)
def test_unknown_keys_and_sections_are_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[http]\nport = "abc"', r"\[http\] port: expected an integer, not 'abc'"),
        ("[http]\nport = 8080.5", r"\[http\] port: expected an integer, not 8080.5"),
        ("[http]\nport = true", r"\[http\] port: expected an integer, not True"),
        ("[http]\nhost = 127", r"\[http\] host: expected a string, not 127"),
        ('[limits]\ngrace = "soon"', r"\[limits\] grace: expected a number"),
        ("[database]\ndsn = 5", r"\[database\] dsn: expected a string"),
        ("[database]\ndata_dir = 5", r"\[database\] data_dir: expected a path"),
        ('[http]\nstylesheet = "ture"', r"\[http\] stylesheet: expected true or false"),
        ("[http]\nstylesheet = 2", r"\[http\] stylesheet: expected true or false"),
        ("stylesheet = 1.0", r"stylesheet: expected true or false"),
    ],
)
def test_values_of_the_wrong_type_are_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_variables_are_parsed_and_named_in_errors(tmp_path: Path) -> None:
    settings = load(tmp_path, "", AIOUWS_PORT=" 9000 ", AIOUWS_GRACE="1.5")
    assert (settings.port, settings.grace) == (9000, 1.5)
    with pytest.raises(ConfigError, match="AIOUWS_STYLESHEET: expected true or false"):
        load(tmp_path, "", AIOUWS_STYLESHEET="ture")
    with pytest.raises(ConfigError, match="AIOUWS_PORT: expected an integer"):
        load(tmp_path, "", AIOUWS_PORT="80.5")


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_booleans_take_the_usual_words(tmp_path: Path, word: str, value: bool) -> None:
    assert load(tmp_path, f'stylesheet = "{word}"').stylesheet is value
    assert load(tmp_path, "", AIOUWS_STYLESHEET=word).stylesheet is value


def test_booleans_from_toml(tmp_path: Path) -> None:
    assert load(tmp_path, "[http]\nstylesheet = false").stylesheet is False
    assert load(tmp_path, "[http]\nstylesheet = 1").stylesheet is True


def test_an_empty_string_unsets_an_optional_setting(tmp_path: Path) -> None:
    settings = load(tmp_path, '[database]\njobs_dir = ""\ndsn = ""')
    assert settings.jobs_dir is None and settings.dsn is None


def test_tap_keys_with_or_without_prefix(tmp_path: Path) -> None:
    tap = load_tap(
        tmp_path, "tap_maxrec_hard = 500\n[tap]\nslots = 4\ntap_inline_rows = 5"
    )
    assert (tap.maxrec_hard, tap.slots, tap.inline_rows) == (500, 4, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tap]\ncolumnar = "ture"', r"\[tap\] columnar: expected true or false"),
        ("[tap]\ntap_slots = 1.5", r"\[tap\] tap_slots: expected an integer"),
        ("[tap]\nbogus = 1", r"unknown setting\(s\): \[tap\] bogus"),
        ("tap = 1", r"tap must be a section"),
    ],
)
def test_tap_errors_name_the_key_and_section(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        TapSettings.load(Settings(), path, {})


@pytest.mark.parametrize("module", ["aiouws", "taprunner"])
def test_the_command_exits_2_naming_the_key(tmp_path: Path, module: str) -> None:
    path = write(tmp_path, '[http]\nstylesheet = "ture"\n')
    done = subprocess.run(
        [sys.executable, "-m", module, "--config", str(path), "passwd", "alice"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "configuration error: [http] stylesheet: expected true or false" in (
        done.stderr
    )
