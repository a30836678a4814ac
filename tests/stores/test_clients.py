"""The client registry against the real stores: one client per store and URL, overrides that
follow the settings and come back, closing in one place."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.settings import SettingsError, settings
from stores import cassandra, clients, elasticsearch, mongodb, neo4j, postgres, redis
from stores.registry import STORES, check_health, close_all


def test_each_store_builds_its_client_once_even_when_threads_ask_at_once(stores: None) -> None:
    close_all()
    with ThreadPoolExecutor(max_workers=8) as pool:
        built = list(pool.map(lambda _: redis.client(), range(32)))

    assert all(client is built[0] for client in built)
    assert clients.open_stores() == ["redis"]
    assert mongodb.client() is mongodb.client()
    assert postgres.engine() is postgres.engine()
    assert cassandra.session() is cassandra.session()
    assert elasticsearch.client() is elasticsearch.client()
    assert neo4j.driver() is neo4j.driver()


def test_a_store_pointed_elsewhere_is_down_by_name_and_comes_back(stores: None) -> None:
    before = neo4j.driver()

    with clients.pointed_at(neo4j_url="bolt://127.0.0.1:1", connect_timeout=1.0) as config:
        assert settings() is config
        reports = {report.store: report for report in check_health()}
        down = reports["neo4j"]
        assert (down.healthy, down.address) == (False, "127.0.0.1:1")
        assert down.error
        assert all(r.healthy for name, r in reports.items() if name != "neo4j")

    assert neo4j.driver() is before
    assert neo4j.health().healthy
    assert clients.open_stores().count("neo4j") == 1


def test_a_build_that_fails_is_not_kept_and_is_tried_again(stores: None) -> None:
    cassandra.session()
    open_before = clients.open_stores().count("cassandra")

    with clients.pointed_at(cassandra_url="cassandra://127.0.0.1:1/polyflow", connect_timeout=1.0):
        for _ in range(2):
            report = cassandra.health()
            assert (report.healthy, report.address) == (False, "127.0.0.1:1")
        assert clients.open_stores().count("cassandra") == open_before

    assert cassandra.health().healthy


def test_pointing_at_an_invalid_url_fails_before_anything_changes(stores: None) -> None:
    address = settings().redis_url.public_address
    with (
        pytest.raises(SettingsError, match="POLYFLOW_REDIS_URL"),
        clients.pointed_at(redis_url="mysql://127.0.0.1/0"),
    ):
        pass
    with (
        pytest.raises(TypeError, match="not a setting: redis_uri"),
        clients.pointed_at(redis_uri="redis://127.0.0.1:1/0"),
    ):
        pass

    assert settings().redis_url.public_address == address


def test_close_all_closes_every_store_and_the_next_call_reconnects(stores: None) -> None:
    for store in STORES:
        store.health()
    assert set(clients.open_stores()) == {store.name for store in STORES}

    close_all()

    assert clients.open_stores() == []
    assert all(report.healthy for report in check_health())


def test_cassandra_connects_through_any_of_several_contact_points(stores: None) -> None:
    host, port = settings().cassandra_url.hosts[0]
    url = f"cassandra://127.0.0.1:1,{host}:{port}/{settings().cassandra_url.keyspace}"

    with clients.pointed_at(cassandra_url=url, connect_timeout=1.0):
        report = cassandra.health()
        assert (report.healthy, report.address) == (True, f"127.0.0.1:1,{host}:{port}")


def test_a_wrong_password_is_reported_by_user_and_never_shown(stores: None) -> None:
    """The password has '@', '/', '#' and '%' (percent-encoded, as the settings require)."""
    config = settings().postgres_url
    (host, port), (user, _) = config.hosts[0], config.credentials or ("polyflow", "")
    pieces = ("Kq7", "Zx9", "Wm4", "Vt2", "Rb8")
    url = f"postgresql+psycopg://{user}:Kq7%40Zx9%2FWm4%23Vt2%25Rb8@{host}:{port}/{config.database}"

    with clients.pointed_at(postgres_url=url):
        report = postgres.health()

    assert not report.healthy
    assert "password authentication failed" in report.error
    assert [piece for piece in pieces if piece in f"{report!r}"] == []
