from __future__ import annotations

import pytest

from domain.settings import settings
from flows.store_health import UnhealthyStores, store_health
from stores import redis
from stores.registry import STORES


def test_reports_every_store_healthy(stores: None) -> None:
    reports = store_health()

    assert [r.store for r in reports] == [store.name for store in STORES]
    assert all(r.healthy and r.version for r in reports)


def test_fails_naming_the_store_that_is_down(stores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
    settings.cache_clear()
    redis.close()
    try:
        with pytest.raises(UnhealthyStores, match=r"redis \(127\.0\.0\.1:1\)"):
            store_health()
    finally:
        monkeypatch.undo()
        settings.cache_clear()
        redis.close()
