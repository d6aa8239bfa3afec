"""The [cluster] settings (global caps, catalogue replicas) and how a Database
spreads query connections over the replicas."""

from __future__ import annotations

import pytest

from aiouws.config import ConfigError, Settings, parse_kind_caps
from aiouws.storage.database import QUERY_ROLE, Database

PRIMARY = "postgresql://aiouws@primary/db"
REPLICAS = ("postgresql://aiouws@r1/db", "postgresql://aiouws:secret@r2/db")


def test_kind_caps_parse_and_override_the_default() -> None:
    assert parse_kind_caps(" tap=8, demo=2 ,") == {"tap": 8, "demo": 2}
    settings = Settings(cluster_slots_per_kind=4, cluster_slots="tap=8")
    assert settings.cluster_cap("tap") == 8
    assert settings.cluster_cap("demo") == 4
    assert Settings().cluster_cap("tap") is None  # 0: no global cap


@pytest.mark.parametrize(
    "values",
    [
        {"cluster_slots": "tap"},
        {"cluster_slots": "tap=0"},
        {"cluster_slots": "=3"},
        {"cluster_slots_per_kind": -1},
        {"cluster_inline_slots": -2},
        {"catalog_dsns": "host=replica dbname=db"},
    ],
)
def test_bad_cluster_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Settings(**values).validate()  # type: ignore[arg-type]


def test_catalog_dsns_come_from_the_environment_separated_by_spaces() -> None:
    settings = Settings.load(env={"AIOUWS_CATALOG_DSNS": " ".join(REPLICAS)})
    assert settings.catalog_servers == REPLICAS
    assert "secret" not in repr(settings)


def test_queries_go_to_the_replicas_in_turn_then_the_primary() -> None:
    service = Database(PRIMARY, catalogs=REPLICAS)
    assert service.servers == (PRIMARY,)  # the service's own: the primary only
    queries = service.for_queries()
    assert all(f"{QUERY_ROLE}@" in dsn for dsn in queries.replicas)
    assert "secret" not in " ".join(queries.replicas)
    firsts = {queries._in_turn()[0] for _ in range(4)}
    assert firsts == set(queries.replicas)  # spread over both
    assert all(queries._in_turn()[-1] == queries.dsn for _ in range(3))
    assert queries.writable().servers == (queries.dsn,)
    assert queries.for_queries() == queries
    assert [d.dsn for d in service.catalogue()] == list(REPLICAS)
