from __future__ import annotations

from stores import redis


def test_product_cache_round_trip_with_ttl(tenant: str) -> None:
    redis.cache_products(tenant, {"SKU-1": {"name": "Kettle", "price": "19.99"}}, ttl=120)

    assert redis.cached_products(tenant, ["SKU-1", "SKU-2"]) == {
        "SKU-1": {"name": "Kettle", "price": "19.99"}
    }
    assert 0 < redis.client().ttl(redis.key(tenant, "product", "SKU-1")) <= 120


def test_keys_carry_the_tenant(tenant: str) -> None:
    redis.cache_products(tenant, {"SKU-1": {"name": "A"}})
    redis.cache_products(f"{tenant}-b", {"SKU-1": {"name": "B"}})

    assert redis.key(tenant, "product", "SKU-1") == f"pf:{tenant}:product:SKU-1"
    assert redis.cached_products(tenant, ["SKU-1"])["SKU-1"]["name"] == "A"
    assert redis.cached_products(f"{tenant}-b", ["SKU-1"])["SKU-1"]["name"] == "B"


def test_versioned_hashes_ignore_older_and_equal_versions(tenant: str) -> None:
    def order(version: int, status: str) -> redis.Versioned:
        return redis.Versioned(("order", "o-1"), version, {"status": status})

    redis.put_versioned(tenant, [order(2, "cancelled"), order(1, "placed")])
    redis.put_versioned(tenant, [order(2, "replayed")])

    assert redis.get_versioned(tenant, "order", "o-1") == {"version": "2", "status": "cancelled"}


def test_recent_orders_keep_one_entry_per_order_newest_first(tenant: str) -> None:
    redis.remember_orders(tenant, [("c-1", "o-1", 1.0), ("c-1", "o-2", 2.0), ("c-1", "o-1", 1.0)])
    assert redis.recent_orders(tenant, "c-1") == ["o-2", "o-1"]
