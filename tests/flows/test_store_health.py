from __future__ import annotations

import pytest

from domain.settings import settings
from flows.store_health import UnhealthyStores, store_health
from stores import clients, redis
from stores.registry import STORES


def test_reports_every_store_healthy(stores: None) -> None:
    reports = store_health()

    assert [r.store for r in reports] == [store.name for store in STORES]
    assert all(r.healthy and r.version for r in reports)


def test_fails_naming_the_store_that_is_down(stores: None) -> None:
    original = redis.client()

    with (
        clients.pointed_at(redis_url="redis://127.0.0.1:1/0"),
        pytest.raises(UnhealthyStores, match=r"redis \(127\.0\.0\.1:1\)"),
    ):
        store_health()

    assert settings().redis_url.public_address == "127.0.0.1:6379"
    assert redis.client() is original
    assert redis.client().ping()
    assert clients.open_stores().count("redis") == 1
