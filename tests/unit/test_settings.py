"""Settings and TapSettings: one TOML file and AIOUWS_* variables, and the TAP
settings' round trip to a runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiouws.config import ConfigError, Settings
from aiouws.storage.database import Database
from taprunner.settings import PREFIX, RunnerConfig, TapSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "aiouws.example.toml"

TOML = """
[http]
port = 9000
max_upload_bytes = 1000
[limits]
max_execution_duration = 600
default_execution_duration = 60
[tap]
tap_maxrec_default = 50
tap_sync_timeout = 2.5
tap_columnar = false
tap_inline_slots = 3
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "aiouws.toml"
    path.write_text(TOML)
    return path


def test_settings_leave_the_tap_keys_to_tap_settings(config: Path) -> None:
    settings = Settings.load(config, env={}, reserved=[PREFIX])
    assert settings.port == 9000
    assert not any(name.startswith("tap") for name in Settings.__dataclass_fields__)
    with pytest.raises(ConfigError, match="tap_maxrec_default"):
        Settings.load(config, env={})  # without TAP they are unknown


def test_tap_settings_load_from_the_file_and_the_environment(config: Path) -> None:
    env = {"AIOUWS_TAP_MAXREC_HARD": "500", "AIOUWS_TAP_INLINE_SLOTS": "4"}
    settings = Settings.load(config, env=env, reserved=[PREFIX])
    tap = TapSettings.load(settings, config, env)
    assert tap == TapSettings(
        maxrec_default=50,
        maxrec_hard=500,
        sync_timeout=2.5,
        columnar=False,
        inline_slots=4,  # the environment wins
        upload_bytes=1000,  # the service's limits by default
        timeout=600.0,
    )


def test_tap_settings_come_from_aiouws_config_and_reject_unknown_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("tap_slots = 5\ntap_bogus = 1\n")
    with pytest.raises(ConfigError, match="tap_bogus"):
        TapSettings.load(Settings(), env={"AIOUWS_CONFIG": str(path)})
    with pytest.raises(ConfigError, match="AIOUWS_TAP_SLOTS"):
        TapSettings.load(Settings(), env={"AIOUWS_TAP_SLOTS": "many"})


def test_the_example_configuration_loads() -> None:
    settings = Settings.load(EXAMPLE, env={}, reserved=[PREFIX])
    tap = TapSettings.load(settings, EXAMPLE, {})
    assert tap == TapSettings.for_service(settings)


def test_tap_settings_round_trip_to_a_runner() -> None:
    tap = TapSettings(maxrec_default=7, columnar=False, sync_timeout=1.5, timeout=9.0)
    config = RunnerConfig(tap, Database("postgresql://u@/db?host=/tmp"))
    env = config.to_env()
    assert env["AIOUWS_TAP_MAXREC_DEFAULT"] == "7"
    assert env["AIOUWS_TAP_COLUMNAR"] == "0"
    assert env["AIOUWS_TAP_TIMEOUT"] == "9.0"
    assert RunnerConfig.from_env({"OTHER": "x", **env}) == config
    replica = "postgresql://u@replica/db"
    on_replicas = Database(
        "postgresql://u@/db", replicas=(replica,), catalogs=(replica,)
    )
    env = RunnerConfig(tap, on_replicas).to_env()
    assert RunnerConfig.from_env(env).database.replicas == (replica,)
    with pytest.raises(ConfigError):
        RunnerConfig.from_env({})


def test_the_pg_bindir_setting_comes_from_the_environment() -> None:
    settings = Settings.load(env={"AIOUWS_PG_BINDIR": "/opt/pg/bin"})
    assert settings.pg_bindir == Path("/opt/pg/bin")


def test_the_database_needs_a_resolved_dsn() -> None:
    with pytest.raises(ConfigError):
        Database.of(Settings())
    database = Database.of(Settings().with_dsn("postgresql://secret@/db"))
    assert database.dsn == "postgresql://secret@/db"
    assert "secret" not in repr(database)


def test_the_results_sweep_needs_a_grace() -> None:
    # Uploads are stored just before their job's row: a shorter grace would
    # sweep the files of a job being created.
    with pytest.raises(ConfigError, match="results_sweep_grace must be at least 1 s"):
        Settings(results_sweep_grace=0).validate()
    Settings(results_sweep_grace=1).validate()
    Settings(results_sweep_seconds=0, results_sweep_grace=0).validate()


def test_the_runner_memory_bound_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="runner_max_rss must not be negative"):
        Settings(runner_max_rss=-1).validate()
    path = tmp_path / "aiouws.toml"
    path.write_text("[runners]\nrunner_max_rss = 80\n")
    assert Settings.load(path, env={}).runner_max_rss == 80
    assert Settings.load(path, env={"AIOUWS_RUNNER_MAX_RSS": "0"}).runner_max_rss == 0
    with pytest.raises(ConfigError, match="runner_max_rss"):
        Settings.load(path, env={"AIOUWS_RUNNER_MAX_RSS": "-5"})
    with pytest.raises(ConfigError, match="AIOUWS_RUNNER_MAX_RSS: expected an int"):
        Settings.load(path, env={"AIOUWS_RUNNER_MAX_RSS": "lots"})
    path.write_text("[limits]\nrunner_max_rss = 80\n")  # its own section only
    with pytest.raises(ConfigError, match="runner_max_rss"):
        Settings.load(path, env={})
    assert Settings().runner_max_rss == 90
